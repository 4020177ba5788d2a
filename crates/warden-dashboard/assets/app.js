// The Warden dashboard: a single page, views by hash route (see API.md).

import {h, replace, note} from './js/dom.js';
import {api, onUnauthorized, qs} from './js/api.js';
import * as overview from './js/overview.js';
import * as traces from './js/traces.js';
import * as trace from './js/trace.js';
import * as db from './js/db.js';
import * as sql from './js/sql.js';
import * as outbox from './js/outbox.js';
import * as users from './js/users.js';
import * as link from './js/link.js';
import * as signin from './js/signin.js';

const main = document.getElementById('main');
let me = null; // the answer of GET /api/me
let current = null; // {name, view}
let returnTo = null; // where to go after signing in

const VIEWS = {
  overview: {render: overview.render, nav: 'overview', title: 'Overview'},
  traces: {render: traces.render, nav: 'traces', title: 'Traces'},
  trace: {render: trace.render, nav: 'traces', title: 'Trace'},
  db: {render: db.render, nav: 'db', title: 'Database'},
  sql: {render: sql.render, nav: 'sql', title: 'SQL console'},
  outbox: {render: outbox.render, nav: 'outbox', title: 'Outbox'},
  users: {render: users.renderList, nav: 'users', title: 'Users'},
  user: {render: users.renderUser, nav: 'users', title: 'User'},
  link: {render: link.render, nav: null, title: 'Link landing'},
  signin: {render: signin.render, nav: null, title: 'Sign in'},
  notfound: {render: renderNotFound, nav: null, title: 'Not found'},
};

function decode(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** '#/db/user?sort=email' → {name: 'db', params: {table: 'user'}, query, path} */
export function parseHash(hash) {
  let raw = (hash || '').replace(/^#/, '');
  if (!raw.startsWith('/')) raw = `/${raw}`;
  const qi = raw.indexOf('?');
  const path = qi < 0 ? raw : raw.slice(0, qi);
  const query = new URLSearchParams(qi < 0 ? '' : raw.slice(qi + 1));
  const parts = path.split('/').filter(Boolean).map(decode);
  const [a, b] = parts;
  let r;
  if (parts.length === 0 || (a === 'overview' && !b)) r = {name: 'overview', params: {}};
  else if (a === 'traces' && !b) r = {name: 'traces', params: {}};
  else if (a === 'traces' && parts.length === 2) r = {name: 'trace', params: {id: b}};
  else if (a === 'db' && parts.length <= 2) r = {name: 'db', params: {table: b || null}};
  else if (a === 'users' && !b) r = {name: 'users', params: {}};
  else if (a === 'users' && parts.length === 2) r = {name: 'user', params: {id: b}};
  else if (['sql', 'outbox', 'link', 'signin'].includes(a) && !b) r = {name: a, params: {}};
  else r = {name: 'notfound', params: {}};
  return {...r, query, path};
}

function renderNotFound(ctx) {
  replace(ctx.root, h('div', {class: 'view'},
    h('header', {class: 'view-head'}, h('h1', null, 'Not found')),
    note('empty', 'No such page. ', h('a', {href: '#/overview'}, 'Go to the overview'))));
}

function production() {
  return !me || me.mode !== 'development';
}

function go(hash) {
  // Replaces the entry (no extra history step); hashchange renders.
  location.replace(`${location.pathname}${location.search}${hash}`);
}

function updateChrome() {
  const dev = me && me.mode === 'development';
  document.getElementById('dev-banner').hidden = !dev;
  document.body.classList.toggle('signed-out', Boolean(me) && production() && !me.user);
  for (const [key, on] of [['sql', me && me.sqlConsole], ['outbox', me && me.outbox]]) {
    const a = document.querySelector(`a[data-nav="${key}"]`);
    if (a) a.hidden = !on;
  }
  const foot = document.getElementById('nav-foot');
  const parts = [];
  if (me) {
    parts.push(h('div', {class: 'nav-mode'},
      h('span', {class: `badge ${dev ? 'badge-warn' : 'badge-info'}`}, me.mode || ''),
      me.version ? h('span', {class: 'muted small mono'}, ` v${me.version}`) : null));
    if (me.apiUrl) parts.push(h('div', {class: 'muted small mono nav-api', title: 'The API this dashboard watches'}, me.apiUrl));
    if (me.user) {
      const out = h('button', {type: 'button', id: 'signout', class: 'btn btn-small'}, 'Sign out');
      out.addEventListener('click', signOut);
      parts.push(h('div', {class: 'nav-user'},
        h('div', {id: 'nav-user-email', class: 'mono small', title: me.user.name || ''}, me.user.email || ''),
        out));
    }
  }
  replace(foot, parts);
}

async function signOut() {
  try {
    await api('DELETE', '/api/session', undefined, {noRedirect: true});
  } catch { /* signed out anyway, or was already */ }
  if (me) me.user = null;
  updateChrome();
  returnTo = null;
  go('#/signin');
}

async function loadMe() {
  me = await api('GET', '/api/me', undefined, {noRedirect: true});
  updateChrome();
}

function setActiveNav(key) {
  for (const a of document.querySelectorAll('a[data-nav]')) {
    a.classList.toggle('active', a.dataset.nav === key);
    if (a.dataset.nav === key) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function route() {
  const r = parseHash(location.hash);

  // A mail link's token (?token=... in the hash query) goes to the link page.
  if (r.name !== 'link' && r.query.get('token')) {
    go(`#/link${qs({token: r.query.get('token')})}`);
    return;
  }
  // Production without a signed-in admin: only the sign-in page.
  if (production() && !me.user && r.name !== 'signin') {
    returnTo = location.hash || '#/overview';
    go('#/signin');
    return;
  }
  if (r.name === 'signin' && me.user) {
    go(returnTo || '#/overview');
    return;
  }

  const def = VIEWS[r.name];
  const ctx = {
    root: main,
    params: r.params,
    query: r.query,
    me,
    setQuery(obj) {
      history.replaceState(null, '', `${location.pathname}${location.search}#${r.path}${qs(obj)}`);
    },
    async signedIn() {
      await loadMe();
      const to = returnTo && !returnTo.startsWith('#/signin') ? returnTo : '#/overview';
      returnTo = null;
      go(to);
    },
  };

  // Same view, new state (e.g. the database explorer's sort): update in place.
  if (current && current.name === r.name && current.view && typeof current.view.update === 'function') {
    try {
      if (current.view.update(ctx)) return;
    } catch (e) {
      console.error(e);
    }
  }
  if (current && current.view && typeof current.view.destroy === 'function') {
    try { current.view.destroy(); } catch (e) { console.error(e); }
  }
  current = null;
  setActiveNav(def.nav);
  document.title = `${def.title} · Warden dashboard`;
  replace(main);
  main.scrollTop = 0;
  let view;
  try {
    view = def.render(ctx);
  } catch (e) {
    console.error(e);
    replace(main, note('error', `This view failed: ${e.message}`));
  }
  current = {name: r.name, view: view || null};
}

onUnauthorized(() => {
  if (me) me.user = null;
  updateChrome();
  if (parseHash(location.hash).name !== 'signin') {
    returnTo = location.hash;
    go('#/signin');
  }
});

async function start() {
  // Opened as /?token=... (a mail link to the dashboard): the link page.
  const search = new URLSearchParams(location.search);
  if (search.get('token')) {
    history.replaceState(null, '', `${location.pathname}#/link${qs({token: search.get('token')})}`);
  }
  try {
    await loadMe();
  } catch (e) {
    const retry = h('button', {type: 'button', class: 'btn'}, 'Retry');
    retry.addEventListener('click', start);
    replace(main, note('error', `The dashboard's API did not answer: ${e.message} `, retry));
    return;
  }
  window.addEventListener('hashchange', route);
  route();
}

start();
