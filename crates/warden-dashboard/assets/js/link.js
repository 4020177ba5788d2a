// #/link?token=...: a stand-in for the app's own pages that mail links
// lead to (password reset, email verification), in development.

import {h, replace, note} from './dom.js';

let spec = null;

/** The API's OpenAPI document (once), or null. */
function openapi() {
  if (!spec) {
    spec = fetch('/openapi.json', {credentials: 'same-origin'})
      .then((r) => (r.ok ? r.json() : null))
      .catch(() => null);
  }
  return spec;
}

function schemaProps(doc, op) {
  let s = op?.requestBody?.content?.['application/json']?.schema;
  if (s && s.$ref && doc) {
    const name = s.$ref.split('/').pop();
    s = doc.components?.schemas?.[name];
  }
  return s?.properties ? Object.keys(s.properties) : [];
}

/** How to call an operation: its method, and the body field names. */
async function shape(path) {
  const doc = await openapi();
  const item = doc?.paths?.[path] || null;
  return {doc, item};
}

async function send(method, url, body) {
  const init = {method, credentials: 'same-origin', headers: {Accept: 'application/json'}};
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const t0 = performance.now();
  const res = await fetch(url, init);
  const text = await res.text();
  return {res, text, ms: performance.now() - t0};
}

export function render(ctx) {
  const token = ctx.query.get('token') || '';
  const result = h('div', {id: 'link-result', class: 'link-result', 'aria-live': 'polite'},
    h('span', {class: 'muted small'}, 'The API\u2019s answer shows here.'));
  const password = h('input', {id: 'link-new-password', type: 'password', autocomplete: 'new-password', placeholder: 'new password (8 to 128 characters)', class: 'w-lg'});
  const reset = h('button', {type: 'submit', id: 'link-reset', class: 'btn btn-primary', disabled: !token}, 'Reset password');
  const verify = h('button', {type: 'button', id: 'link-verify', class: 'btn btn-primary', disabled: !token}, 'Verify email');
  const other = h('input', {id: 'link-token-input', type: 'text', placeholder: 'paste a token', class: 'w-lg mono', spellcheck: 'false'});
  const useOther = h('form', {class: 'toolbar'}, other, h('button', {type: 'submit', class: 'btn'}, 'Use this token'));
  useOther.addEventListener('submit', (e) => {
    e.preventDefault();
    if (other.value.trim()) location.hash = `#/link?token=${encodeURIComponent(other.value.trim())}`;
  });

  async function run(label, fn) {
    replace(result, h('span', {class: 'muted'}, `${label}…`));
    reset.disabled = verify.disabled = true;
    try {
      const {res, text, ms, method, url} = await fn();
      let pretty = text;
      try { pretty = JSON.stringify(JSON.parse(text), null, 2); } catch { /* not JSON */ }
      const traceId = res.headers.get('x-trace-id');
      replace(result,
        h('div', {class: 'link-status'},
          h('span', {class: `st st-${Math.floor(res.status / 100)}xx`}, String(res.status)),
          h('span', {class: 'mono'}, ` ${method} ${url}`),
          h('span', {class: 'muted'}, ` · ${Math.round(ms)} ms`),
          traceId ? [' · ', h('a', {href: `#/traces/${encodeURIComponent(traceId)}`}, 'View trace')] : null),
        h('pre', {class: 'mono link-body'}, pretty || '(empty body)'));
    } catch (e) {
      replace(result, note('error', e.message));
    } finally {
      reset.disabled = verify.disabled = !token;
    }
  }

  const resetForm = h('form', {class: 'toolbar', autocomplete: 'off'}, password, reset);
  resetForm.addEventListener('submit', (e) => {
    e.preventDefault();
    run('Resetting', async () => {
      const path = '/auth/reset-password';
      const {doc, item} = await shape(path);
      const props = schemaProps(doc, item?.post);
      // Field names from the OpenAPI document; the tutorial API's are token + newPassword.
      const pwField = props.includes('newPassword') ? 'newPassword'
        : (props.find((p) => /password/i.test(p)) || 'newPassword');
      const tokenField = props.includes('token') || !props.length ? 'token' : (props.find((p) => /token/i.test(p)) || 'token');
      const url = `/proxy${path}`;
      const r = await send('POST', url, {[tokenField]: token, [pwField]: password.value});
      return {...r, method: 'POST', url};
    });
  });

  verify.addEventListener('click', () => run('Verifying', async () => {
    const path = '/auth/verify-email';
    const {doc, item} = await shape(path);
    // The API answers the mailed link itself: GET ?token=...; use POST only
    // if the document has nothing but a POST for it.
    if (item && !item.get && item.post) {
      const props = schemaProps(doc, item.post);
      const field = props.includes('token') || !props.length ? 'token' : props.find((p) => /token/i.test(p)) || 'token';
      const url = `/proxy${path}`;
      const r = await send('POST', url, {[field]: token});
      return {...r, method: 'POST', url};
    }
    const url = `/proxy${path}?token=${encodeURIComponent(token)}`;
    const r = await send('GET', url);
    return {...r, method: 'GET', url: `/proxy${path}?token=…`};
  }));

  replace(ctx.root, h('div', {id: 'link', class: 'view'},
    h('header', {class: 'view-head'}, h('h1', null, 'Link landing')),
    h('p', {class: 'muted'},
      'This page stands in for your app\u2019s own pages in development: mail links with a ',
      h('code', null, '?token='), ' can point here. It sends the token to the API through the dashboard\u2019s proxy, ',
      'as your app would: set a new password with it, or verify an email address with it.'),
    h('section', {class: 'panel'},
      h('h2', null, 'Token'),
      token ? h('code', {id: 'link-token', class: 'token'}, token)
        : [h('code', {id: 'link-token', class: 'token muted'}, ''), note('empty', 'No token in the address. Open a link from the outbox, or paste one:')],
      token ? h('details', {class: 'small'}, h('summary', null, 'Use another token'), useOther) : useOther),
    h('div', {class: 'two-col'},
      h('section', {class: 'panel'}, h('h2', null, 'Password reset'),
        h('p', {class: 'muted small'}, 'POST /auth/reset-password with the token and a new password. Every session of the user ends.'),
        resetForm),
      h('section', {class: 'panel'}, h('h2', null, 'Email verification'),
        h('p', {class: 'muted small'}, 'GET /auth/verify-email?token=… as the mailed link does.'),
        h('div', {class: 'toolbar'}, verify))),
    h('section', {class: 'panel'}, h('h2', null, 'Result'), result)));
}
