// #/traces: the kept traces, newest first, with live arrivals.

import {h, replace, note, fmtMs, fmtClock, statusClass} from './dom.js';
import {api, qs} from './api.js';

const MAX_ROWS = 500;

/** Does a trace summary pass the filters? (the same rules as the API's) */
export function matches(t, f) {
  if (f.route) {
    const hay = (t.route ?? t.name ?? '').toLowerCase();
    if (!hay.includes(f.route.toLowerCase())) return false;
  }
  if (f.status) {
    const want = f.status.trim().toLowerCase();
    if (t.status === null || t.status === undefined) return false;
    const m = /^([1-5])(xx)?$/.exec(want);
    if (m && (m[2] || want.length === 1)) {
      if (Math.floor(t.status / 100) !== Number(m[1])) return false;
    } else if (String(t.status) !== want) return false;
  }
  if (f.user) {
    if (!t.user || !String(t.user).toLowerCase().includes(f.user.toLowerCase())) return false;
  }
  return true;
}

function timeOf(t) {
  const n = Date.parse(t.time);
  return Number.isNaN(n) ? 0 : n;
}

export function traceRow(t, fresh = false) {
  const href = `#/traces/${encodeURIComponent(t.id)}`;
  const http = t.method !== null && t.method !== undefined;
  const tr = h('tr', {dataset: {traceId: t.id}, class: `clickable${fresh ? ' fresh' : ''}${t.hasError ? ' has-error' : ''}`},
    h('td', {class: 'mono nowrap', title: t.time}, fmtClock(t.time)),
    h('td', {class: 'mono'}, http ? t.method : ''),
    h('td', {class: 'mono route'},
      h('a', {href}, http ? (t.route ?? '') : h('span', {class: 'muted'}, t.name || '(trace)')),
      t.hasError ? h('span', {class: 'badge badge-err', title: 'A span recorded an error'}, 'error') : null),
    h('td', null, http ? h('span', {class: statusClass(t.status)}, String(t.status ?? '')) : ''),
    h('td', {class: 'num mono nowrap'}, fmtMs(t.durationMs)),
    h('td', {class: 'mono user-cell', title: t.user || ''}, t.user ? h('a', {href: `#/users/${encodeURIComponent(t.user)}`}, t.user) : ''));
  tr.addEventListener('click', (ev) => {
    if (ev.target.closest('a')) return;
    location.hash = href;
  });
  return tr;
}

export function render(ctx) {
  const f = {
    route: ctx.query.get('route') || '',
    status: ctx.query.get('status') || '',
    user: ctx.query.get('user') || '',
  };
  let items = []; // all summaries known, newest first (at most MAX_ROWS)
  let es = null;
  let closed = false;
  let refetchTimer = null;

  const live = h('span', {id: 'live', class: 'live off', title: 'Live updates from /api/traces/stream'}, 'connecting…');
  const count = h('span', {class: 'muted small', id: 'traces-count'});
  const input = (id, placeholder, value, width) => h('input', {id, type: 'search', placeholder, value, class: width, autocomplete: 'off', spellcheck: 'false'});
  const fRoute = input('filter-route', 'route contains…', f.route, 'w-md');
  const fStatus = input('filter-status', '200, 4xx…', f.status, 'w-sm');
  const fUser = input('filter-user', 'user id contains…', f.user, 'w-md');
  const tbody = h('tbody');
  const tableEl = h('table', {id: 'traces', class: 'grid'},
    h('thead', null, h('tr', null,
      h('th', null, 'Time'), h('th', null, 'Method'), h('th', null, 'Route'),
      h('th', null, 'Status'), h('th', {class: 'num'}, 'Duration'), h('th', null, 'User'))),
    tbody);
  const message = h('div', {class: 'msg'}, note('info', 'Loading…'));

  replace(ctx.root, h('div', {id: 'traces-view', class: 'view'},
    h('header', {class: 'view-head'}, h('h1', null, 'Traces'), live, count),
    h('form', {class: 'toolbar', onsubmit: (e) => e.preventDefault()},
      h('label', null, 'Route ', fRoute),
      h('label', null, 'Status ', fStatus),
      h('label', null, 'User ', fUser),
      h('button', {type: 'button', class: 'btn', id: 'filter-clear', onclick: () => {
        fRoute.value = fStatus.value = fUser.value = '';
        onFilter();
      }}, 'Clear')),
    message,
    h('div', {class: 'table-wrap table-tall'}, tableEl)));

  const shownRows = new Map(); // trace id → its <tr>, for the rows on screen

  function updateCount() {
    const n = shownRows.size;
    count.textContent = `${n} shown${n !== items.length ? ` of ${items.length}` : ''}`;
  }

  function redraw() {
    shownRows.clear();
    const rows = items.filter((t) => matches(t, f)).map((t) => {
      const tr = traceRow(t);
      shownRows.set(t.id, tr);
      return tr;
    });
    replace(tbody, rows);
    updateCount();
    replace(message, rows.length ? null : note('empty', items.length ? 'No trace matches the filters.' : 'No traces yet. Send a request to the API.'));
  }

  function merge(list) {
    const byId = new Map(items.map((t) => [t.id, t]));
    for (const t of list) byId.set(t.id, t);
    items = [...byId.values()].sort((a, b) => timeOf(b) - timeOf(a)).slice(0, MAX_ROWS);
  }

  async function load() {
    try {
      const data = await api('GET', `/api/traces${qs({route: f.route, status: f.status, user: f.user, limit: 200})}`);
      if (closed) return;
      merge(data.traces || []);
      redraw();
    } catch (e) {
      if (!closed) replace(message, note('error', e.message));
    }
  }

  function onFilter() {
    f.route = fRoute.value.trim();
    f.status = fStatus.value.trim();
    f.user = fUser.value.trim();
    ctx.setQuery({route: f.route, status: f.status, user: f.user});
    redraw();
    clearTimeout(refetchTimer);
    refetchTimer = setTimeout(load, 300); // what the server has beyond what we hold
  }
  for (const el of [fRoute, fStatus, fUser]) el.addEventListener('input', onFilter);

  function connect() {
    es = new EventSource('/api/traces/stream');
    let wasDown = false;
    es.addEventListener('open', () => {
      live.textContent = 'live';
      live.className = 'live on';
      if (wasDown) load(); // catch up on what arrived while disconnected
      wasDown = false;
    });
    es.addEventListener('error', () => {
      live.textContent = 'disconnected';
      live.className = 'live off';
      wasDown = true;
    });
    es.addEventListener('trace', (ev) => {
      let t;
      try { t = JSON.parse(ev.data); } catch { return; }
      if (!t || !t.id) return;
      if (items.some((x) => x.id === t.id)) return;
      items.unshift(t);
      for (const old of items.splice(MAX_ROWS)) { // the oldest go, on screen too
        const tr = shownRows.get(old.id);
        if (tr) { tr.remove(); shownRows.delete(old.id); }
      }
      if (matches(t, f)) {
        if (!shownRows.size) replace(message);
        const tr = traceRow(t, true);
        shownRows.set(t.id, tr);
        tbody.insertBefore(tr, tbody.firstChild);
      }
      updateCount();
    });
  }

  connect();
  load();

  return {
    destroy() {
      closed = true;
      clearTimeout(refetchTimer);
      if (es) es.close();
    },
  };
}

