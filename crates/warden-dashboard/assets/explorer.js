// The API explorer: Swagger UI on the API's OpenAPI document, sending
// through the dashboard's /proxy, with the bearer token kept in a bar above.

const TOKEN_KEY = 'warden.explorer.token';
const SCHEME = 'bearerAuth';

const tokenInput = document.getElementById('explorer-token');
const clearButton = document.getElementById('clear-token');
const lastResponse = document.getElementById('last-response');
const status = document.getElementById('swagger-status');
let ui = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === 'class') e.className = v;
    else e.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function storedToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

/** Keep the token in storage, in the bar, and in Swagger UI's Authorize. */
function setToken(token) {
  const t = (token || '').trim();
  try {
    if (t) localStorage.setItem(TOKEN_KEY, t);
    else localStorage.removeItem(TOKEN_KEY);
  } catch { /* storage off: the bar still shows it */ }
  if (tokenInput.value !== t) tokenInput.value = t;
  tokenInput.classList.toggle('has-token', Boolean(t));
  authorize(t);
}

function authorize(t) {
  if (!ui) return;
  try {
    if (t) ui.preauthorizeApiKey(SCHEME, t);
    else if (ui.authActions && ui.authActions.logout) ui.authActions.logout([SCHEME]);
  } catch (e) {
    console.warn('explorer: could not set the Authorize dialog', e);
  }
}

function isSpec(url) {
  try {
    return new URL(url, location.href).pathname === '/openapi.json';
  } catch {
    return false;
  }
}

function shortUrl(url) {
  try {
    const u = new URL(url, location.href);
    return u.origin === location.origin ? `${u.pathname}${u.search}` : u.href;
  } catch {
    return String(url);
  }
}

function header(headers, name) {
  if (!headers) return null;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  if (key === undefined) return null;
  const v = headers[key];
  return Array.isArray(v) ? v[0] : v;
}

// Requests in flight, for their durations: [{url, method, t0}]
const pending = [];

function requestInterceptor(req) {
  if (isSpec(req.url)) return req;
  req.headers = req.headers || {};
  const token = storedToken();
  const has = Object.keys(req.headers).some((k) => k.toLowerCase() === 'authorization');
  if (!has && token) req.headers.Authorization = `Bearer ${token}`;
  pending.push({url: req.url, method: (req.method || 'GET').toUpperCase(), t0: performance.now()});
  if (pending.length > 50) pending.shift();
  return req;
}

function showLast(method, url, res, ms) {
  const traceId = header(res.headers, 'x-trace-id');
  const st = Number(res.status) || 0;
  const parts = [
    el('span', {class: 'mono'}, `${method} ${shortUrl(url)}`),
    ' → ',
    el('span', {class: `st st-${Math.floor(st / 100)}xx`}, `${st}${res.statusText ? ` ${res.statusText}` : ''}`),
    ms !== null ? ` · ${Math.round(ms)} ms` : '',
    ' · ',
    traceId
      ? el('a', {id: 'trace-link', href: `/#/traces/${encodeURIComponent(traceId)}`, title: traceId}, 'View trace')
      : el('span', {class: 'muted'}, 'no trace id'),
  ];
  lastResponse.replaceChildren(...parts.map((p) => (p instanceof Node ? p : document.createTextNode(p))));
  lastResponse.classList.remove('muted');
}

function tokenFrom(body) {
  let b = body;
  if (typeof b === 'string') {
    try { b = JSON.parse(b); } catch { return null; }
  }
  if (!b || typeof b !== 'object') return null;
  if (typeof b.token === 'string' && b.token) return b.token;
  if (b.session && typeof b.session.token === 'string' && b.session.token) return b.session.token;
  return null;
}

function responseInterceptor(res) {
  if (isSpec(res.url)) return res;
  const i = pending.findIndex((p) => p.url === res.url || shortUrl(p.url) === shortUrl(res.url));
  const p = i >= 0 ? pending.splice(i, 1)[0] : null;
  try {
    showLast(p ? p.method : '', res.url, res, p ? performance.now() - p.t0 : null);
    const token = res.ok ? tokenFrom(res.body ?? res.text) : null;
    if (token) setToken(token);
  } catch (e) {
    console.warn('explorer: response hook failed', e);
  }
  return res;
}

/** Appends "View trace" under each response shown by Swagger UI. */
function TraceLinkPlugin() {
  return {
    wrapComponents: {
      liveResponse: (Original, system) => (props) => {
        const React = system.React;
        const inner = React.createElement(Original, props);
        let id = null;
        try {
          const r = props.response;
          id = r && r.getIn ? r.getIn(['headers', 'x-trace-id']) : null;
          if (id && typeof id !== 'string' && id.get) id = id.get(0);
        } catch {
          id = null;
        }
        if (!id) return inner;
        return React.createElement('div', {className: 'trace-link-wrap'}, inner,
          React.createElement('a', {className: 'trace-link', href: `/#/traces/${encodeURIComponent(String(id))}`}, 'View trace'));
      },
    },
  };
}

function start() {
  tokenInput.value = storedToken();
  tokenInput.classList.toggle('has-token', Boolean(tokenInput.value));
  tokenInput.addEventListener('change', () => setToken(tokenInput.value));
  document.getElementById('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    setToken(tokenInput.value);
  });
  clearButton.addEventListener('click', () => setToken(''));
  // The dashboard (another tab) may hand over a token: "Use in the API explorer".
  window.addEventListener('storage', (e) => {
    if (e.key === TOKEN_KEY) setToken(e.newValue || '');
  });

  // In production the proxy answers 401 to anyone not signed in to the dashboard.
  fetch('/api/me', {credentials: 'same-origin'}).then((r) => (r.ok ? r.json() : null)).then((me) => {
    if (me && me.mode !== 'development' && !me.user) {
      status.replaceChildren('You are not signed in to the dashboard: requests through /proxy will be refused (401). ',
        el('a', {href: '/#/signin'}, 'Sign in'));
    }
  }).catch(() => {});

  if (typeof window.SwaggerUIBundle !== 'function') {
    status.textContent = 'Swagger UI did not load (/assets/vendor/swagger-ui/swagger-ui-bundle.js).';
    status.className = 'explorer-status';
    return;
  }
  const SwaggerUIBundle = window.SwaggerUIBundle;
  ui = SwaggerUIBundle({
    url: '/openapi.json',
    dom_id: '#swagger',
    deepLinking: true,
    displayRequestDuration: true,
    tryItOutEnabled: true,
    persistAuthorization: true,
    filter: true,
    docExpansion: 'list',
    defaultModelsExpandDepth: 0,
    validatorUrl: null, // never ask another host to validate the document
    withCredentials: true,
    presets: [SwaggerUIBundle.presets.apis],
    plugins: [TraceLinkPlugin],
    requestInterceptor,
    responseInterceptor,
    onComplete: () => {
      const t = storedToken();
      if (t) authorize(t);
    },
  });
  window.ui = ui; // for the console
}

start();
