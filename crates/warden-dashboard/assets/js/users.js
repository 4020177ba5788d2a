// #/users (search) and #/users/<id> (one user, with the admin actions).

import {h, replace, note, fmtTime, yesNo, valueText} from './dom.js';
import {api, qs} from './api.js';

const LIMIT = 20;
export const EXPLORER_TOKEN_KEY = 'warden.explorer.token';

function flag(on, yes, no, cls) {
  return h('span', {class: on ? `badge ${cls}` : 'muted'}, on ? yes : no);
}

export function renderList(ctx) {
  const st = {
    search: ctx.query.get('search') || '',
    field: ctx.query.get('field') === 'name' ? 'name' : 'email',
    offset: Math.max(0, parseInt(ctx.query.get('offset') || '0', 10) || 0),
  };
  const input = h('input', {id: 'user-search', type: 'search', value: st.search, placeholder: 'search…', class: 'w-lg', autocomplete: 'off', spellcheck: 'false'});
  const field = h('select', {id: 'user-search-field'},
    h('option', {value: 'email', selected: st.field === 'email'}, 'email'),
    h('option', {value: 'name', selected: st.field === 'name'}, 'name'));
  const go = h('button', {type: 'submit', id: 'user-search-go', class: 'btn btn-primary'}, 'Search');
  const form = h('form', {class: 'toolbar'}, field, input, go);
  const results = h('div', null, note('info', 'Loading…'));
  const prev = h('button', {type: 'button', class: 'btn', id: 'users-prev', disabled: true}, '← Prev');
  const next = h('button', {type: 'button', class: 'btn', id: 'users-next', disabled: true}, 'Next →');
  const info = h('span', {class: 'muted', id: 'users-info'});
  let gen = 0;

  replace(ctx.root, h('div', {id: 'users-view', class: 'view'},
    h('header', {class: 'view-head'}, h('h1', null, 'Users'),
      h('span', {class: 'muted small'}, 'Through the admin API: every action is in the audit trail.')),
    h('section', {class: 'panel'},
      h('div', {class: 'panel-head'}, form, h('div', {class: 'pager'}, prev, info, next)),
      results)));

  async function load() {
    const my = ++gen;
    ctx.setQuery({search: st.search, field: st.search ? st.field : '', offset: st.offset || ''});
    try {
      const params = {limit: LIMIT, offset: st.offset};
      if (st.search) { params.search = st.search; params.searchField = st.field; }
      const data = await api('GET', `/admin-api/users${qs(params)}`);
      if (my !== gen) return;
      const users = data.users || [];
      const total = Number(data.total ?? users.length);
      const offset = Number(data.offset ?? st.offset);
      info.textContent = total ? `${offset + 1}–${offset + users.length} of ${total}` : '0 users';
      prev.disabled = offset <= 0;
      next.disabled = offset + LIMIT >= total;
      const rows = users.map((u) => {
        const href = `#/users/${encodeURIComponent(u.id)}`;
        const tr = h('tr', {class: 'clickable', dataset: {userId: u.id}},
          h('td', {class: 'mono'}, h('a', {href}, u.email ?? '')),
          h('td', null, u.name ?? ''),
          h('td', null, h('span', {class: u.role === 'admin' ? 'badge badge-info' : ''}, u.role ?? '')),
          h('td', null, flag(u.emailVerified, 'verified', 'no', 'badge-ok')),
          h('td', null, flag(u.banned, 'banned', 'no', 'badge-err')),
          h('td', null, flag(u.twoFactorEnabled, '2FA', 'no', 'badge-ok')),
          h('td', {class: 'mono nowrap', title: u.createdAt ?? ''}, fmtTime(u.createdAt)));
        tr.addEventListener('click', (e) => { if (!e.target.closest('a')) location.hash = href; });
        return tr;
      });
      replace(results, h('div', {class: 'table-wrap table-tall'}, h('table', {id: 'users', class: 'grid'},
        h('thead', null, h('tr', null, ['Email', 'Name', 'Role', 'Verified', 'Banned', '2FA', 'Created'].map((c) => h('th', null, c)))),
        h('tbody', null, rows))),
      rows.length ? null : note('empty', st.search ? 'No user matches.' : 'No users yet.'));
    } catch (e) {
      if (my === gen) replace(results, note('error', e.message));
    }
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    st.search = input.value.trim();
    st.field = field.value;
    st.offset = 0;
    load();
  });
  prev.addEventListener('click', () => { st.offset = Math.max(0, st.offset - LIMIT); load(); });
  next.addEventListener('click', () => { st.offset += LIMIT; load(); });
  load();
  input.focus();
}

function actorText(e) {
  const a = e.actor;
  if (a && typeof a === 'object') return a.email || a.name || a.id || e.actorId || '';
  return a || e.actorId || '';
}

function detailText(d) {
  if (d === null || d === undefined || d === '') return '';
  if (typeof d === 'object') return Object.entries(d).map(([k, v]) => `${k}=${valueText(v)}`).join(' ');
  return String(d);
}

export function renderUser(ctx) {
  const id = ctx.params.id;
  const error = h('div', {id: 'user-error', class: 'note note-error', hidden: true, role: 'alert'});
  const body = h('div', null, note('info', 'Loading…'));
  const title = h('h1', null, 'User');
  let impersonation = null; // the last token from "impersonate"
  const drafts = {}; // what was typed, kept across the re-fetches
  let closed = false;

  replace(ctx.root, h('div', {id: 'user', class: 'view'},
    h('header', {class: 'view-head'}, h('a', {href: '#/users', class: 'back'}, '← Users'), title,
      h('code', {class: 'muted small'}, id)),
    error,
    body));

  function showError(msg) {
    error.textContent = msg;
    error.hidden = !msg;
  }

  async function act(label, fn, done) {
    showError('');
    for (const b of body.querySelectorAll('button')) b.disabled = true;
    try {
      await fn();
      if (done) done();
    } catch (e) {
      showError(`${label}: ${e.message}`);
    }
    await reload();
  }

  const base = `/admin-api/users/${encodeURIComponent(id)}`;

  async function reload() {
    let u;
    try {
      u = await api('GET', base);
      if (u && u.user && !u.id) u = u.user; // tolerate {"user": {...}}
    } catch (e) {
      if (closed) return;
      replace(body, note(e.status === 404 ? 'empty' : 'error', e.status === 404 ? 'No such user (deleted?). ' : e.message,
        h('a', {href: '#/users'}, 'Back to the users')));
      return;
    }
    const [sessions, accounts, audit] = await Promise.all([
      api('GET', `${base}/sessions`).then((d) => d.sessions || []).catch((e) => e),
      api('GET', `/api/db/tables/account${qs({filter_column: 'userId', op: 'eq', filter_value: id, limit: 100})}`).catch((e) => e),
      api('GET', `/admin-api/audit${qs({targetId: id, limit: 100})}`).then((d) => d.entries || []).catch((e) => e),
    ]);
    if (closed) return;
    draw(u, sessions, accounts, audit);
  }

  function draw(u, sessions, accounts, audit) {
    replace(title, h('span', {class: 'mono'}, u.email ?? id),
      u.role === 'admin' ? h('span', {class: 'badge badge-info'}, 'admin') : null,
      u.banned ? h('span', {class: 'badge badge-err'}, 'banned') : null);

    const kv = (k, v, cls) => h('tr', null, h('th', null, k), h('td', {class: cls || null}, v));
    const details = h('table', {class: 'kv', id: 'user-details'}, h('tbody', null,
      kv('id', u.id, 'mono'),
      kv('email', u.email ?? '', 'mono'),
      kv('name', u.name ?? ''),
      kv('role', u.role ?? ''),
      kv('email verified', flag(u.emailVerified, 'verified', 'no', 'badge-ok')),
      kv('two-factor', flag(u.twoFactorEnabled, 'on', 'off', 'badge-ok')),
      kv('banned', u.banned
        ? [h('span', {class: 'badge badge-err'}, 'banned'), u.banReason ? ` ${u.banReason}` : '',
          u.banExpires ? h('span', {class: 'muted'}, ` until ${fmtTime(u.banExpires)}`) : h('span', {class: 'muted'}, ' (no end)')]
        : h('span', {class: 'muted'}, 'no')),
      u.image ? kv('image', u.image, 'mono') : null,
      kv('created', fmtTime(u.createdAt), 'mono'),
      kv('updated', fmtTime(u.updatedAt), 'mono')));

    // --- actions ---
    const verify = h('button', {type: 'button', id: 'verify-email', class: 'btn', hidden: Boolean(u.emailVerified)}, 'Mark email verified');
    verify.addEventListener('click', () => act('Verify email', () => api('PATCH', base, {emailVerified: true})));
    const reset2fa = h('button', {type: 'button', id: 'reset-2fa', class: 'btn', hidden: !u.twoFactorEnabled}, 'Turn two-factor off');
    reset2fa.addEventListener('click', () => act('Reset two-factor', () => api('DELETE', `${base}/two-factor`)));

    const roleInput = h('input', {id: 'role-input', type: 'text', value: drafts.role ?? u.role ?? '', list: 'role-options', class: 'w-sm', spellcheck: 'false'});
    roleInput.addEventListener('input', () => { drafts.role = roleInput.value; });
    const setRole = h('button', {type: 'button', id: 'set-role', class: 'btn'}, 'Set role');
    setRole.addEventListener('click', () => act('Set role', () => api('PUT', `${base}/role`, {role: roleInput.value.trim()}),
      () => { delete drafts.role; }));

    const banReason = h('input', {id: 'ban-reason', type: 'text', placeholder: 'reason (optional)', class: 'w-md', value: drafts.banReason ?? ''});
    banReason.addEventListener('input', () => { drafts.banReason = banReason.value; });
    const banExpires = h('select', {id: 'ban-expires', title: 'How long the ban lasts'},
      h('option', {value: ''}, 'no end'),
      h('option', {value: '3600'}, '1 hour'),
      h('option', {value: '86400'}, '1 day'),
      h('option', {value: '604800'}, '7 days'),
      h('option', {value: '2592000'}, '30 days'));
    banExpires.value = drafts.banExpires ?? '';
    banExpires.addEventListener('change', () => { drafts.banExpires = banExpires.value; });
    const ban = h('button', {type: 'button', id: 'ban', class: 'btn btn-danger', hidden: Boolean(u.banned)}, 'Ban');
    ban.addEventListener('click', () => act('Ban', () => {
      const b = {};
      if (banReason.value.trim()) b.banReason = banReason.value.trim();
      if (banExpires.value) b.banExpiresIn = Number(banExpires.value);
      return api('POST', `${base}/ban`, b);
    }, () => { delete drafts.banReason; delete drafts.banExpires; }));
    const unban = h('button', {type: 'button', id: 'unban', class: 'btn', hidden: !u.banned}, 'Unban');
    unban.addEventListener('click', () => act('Unban', () => api('POST', `${base}/unban`, {})));

    const impersonate = h('button', {type: 'button', id: 'impersonate', class: 'btn'}, 'Impersonate');
    impersonate.addEventListener('click', () => act('Impersonate', async () => {
      const r = await api('POST', `${base}/impersonate`, {});
      impersonation = r.token ?? r.session?.token ?? null;
      if (!impersonation) throw new Error('the answer had no token');
    }));
    const impBox = h('div', {class: 'impersonation', hidden: !impersonation});
    if (impersonation) {
      const use = h('button', {type: 'button', id: 'use-in-explorer', class: 'btn btn-primary'}, 'Use in the API explorer');
      use.addEventListener('click', () => {
        try { localStorage.setItem(EXPLORER_TOKEN_KEY, impersonation); } catch { /* storage off */ }
        location.href = '/explorer';
      });
      replace(impBox,
        h('div', {class: 'small muted'}, 'A session as this user (bearer token):'),
        h('code', {id: 'impersonation-token', class: 'token'}, impersonation),
        use);
    }

    const del = h('button', {type: 'button', id: 'delete-user', class: 'btn btn-danger'}, 'Delete user');
    del.addEventListener('click', async () => {
      if (!window.confirm(`Delete ${u.email ?? id}? Their sessions, accounts and data go with them. This cannot be undone.`)) return;
      showError('');
      try {
        await api('DELETE', base);
        location.hash = '#/users';
      } catch (e) {
        showError(`Delete: ${e.message}`);
        await reload();
      }
    });

    const actions = h('section', {class: 'panel actions'},
      h('h2', null, 'Actions'),
      h('div', {class: 'action-row'}, verify, reset2fa,
        u.emailVerified && !u.twoFactorEnabled ? h('span', {class: 'muted small'}, 'Email verified; two-factor off.') : null),
      h('div', {class: 'action-row'}, h('label', {for: 'role-input'}, 'Role'), roleInput,
        h('datalist', {id: 'role-options'}, h('option', {value: 'user'}), h('option', {value: 'admin'})), setRole),
      h('div', {class: 'action-row'}, banReason, banExpires, ban, unban),
      h('div', {class: 'action-row'}, impersonate, h('span', {class: 'muted small'}, 'Creates a session as this user.')),
      impBox,
      h('div', {class: 'action-row danger-zone'}, del));
    banReason.hidden = Boolean(u.banned);
    banExpires.hidden = Boolean(u.banned);

    // --- sessions ---
    let sessionsNode;
    if (sessions instanceof Error) sessionsNode = note('error', sessions.message);
    else {
      const rows = sessions.map((s) => {
        const revoke = h('button', {type: 'button', class: 'btn btn-small revoke'}, 'Revoke');
        revoke.addEventListener('click', () => act('Revoke session', () => api('DELETE', `/admin-api/sessions/${encodeURIComponent(s.id)}`)));
        return h('tr', {dataset: {sessionId: s.id}},
          h('td', {class: 'mono ellipsis', title: s.id}, s.id),
          h('td', {class: 'mono nowrap'}, fmtTime(s.createdAt)),
          h('td', {class: 'mono nowrap'}, fmtTime(s.expiresAt)),
          h('td', {class: 'mono'}, s.ipAddress ?? ''),
          h('td', {class: 'wrap small', title: s.userAgent ?? ''}, s.userAgent ?? ''),
          h('td', {class: 'mono'}, s.impersonatedBy ? h('span', {class: 'badge badge-warn', title: `impersonated by ${s.impersonatedBy}`}, 'impersonated') : ''),
          h('td', null, revoke));
      });
      sessionsNode = [
        h('div', {class: 'table-wrap'}, h('table', {id: 'sessions', class: 'grid'},
          h('thead', null, h('tr', null, ['Session', 'Created', 'Expires', 'IP', 'User agent', '', ''].map((c) => h('th', null, c)))),
          h('tbody', null, rows))),
        rows.length ? null : note('empty', 'No active session.')];
    }
    const revokeAll = h('button', {type: 'button', id: 'revoke-all', class: 'btn btn-danger btn-small', disabled: !(Array.isArray(sessions) && sessions.length)}, 'Revoke all');
    revokeAll.addEventListener('click', () => act('Revoke all sessions', () => api('DELETE', `${base}/sessions`)));

    // --- accounts (through the DB explorer; tokens are masked there) ---
    let accountsNode;
    if (accounts instanceof Error) accountsNode = note('error', accounts.message);
    else {
      const cols = accounts.columns || [];
      const get = (row, c) => { const i = cols.indexOf(c); return i < 0 ? null : row[i]; };
      const rows = (accounts.rows || []).map((r) => h('tr', null,
        h('td', {class: 'mono'}, valueText(get(r, 'providerId') ?? '')),
        h('td', {class: 'mono ellipsis', title: valueText(get(r, 'accountId') ?? '')}, valueText(get(r, 'accountId') ?? '')),
        h('td', {class: 'mono nowrap'}, fmtTime(get(r, 'createdAt')))));
      accountsNode = [
        h('div', {class: 'table-wrap'}, h('table', {id: 'accounts', class: 'grid'},
          h('thead', null, h('tr', null, ['Provider', 'Account id', 'Created'].map((c) => h('th', null, c)))),
          h('tbody', null, rows))),
        rows.length ? null : note('empty', 'No linked account.')];
    }

    // --- audit trail ---
    let auditNode;
    if (audit instanceof Error) auditNode = note('error', audit.message);
    else {
      const rows = audit.map((e) => h('tr', null,
        h('td', {class: 'mono nowrap', title: e.at ?? ''}, fmtTime(e.at)),
        h('td', {class: 'mono'}, actorText(e)),
        h('td', {class: 'mono'}, e.action ?? ''),
        h('td', {class: 'mono small wrap'}, detailText(e.detail))));
      auditNode = [
        h('div', {class: 'table-wrap'}, h('table', {id: 'audit', class: 'grid'},
          h('thead', null, h('tr', null, ['Time', 'Actor', 'Action', 'Detail'].map((c) => h('th', null, c)))),
          h('tbody', null, rows))),
        rows.length ? null : note('empty', 'No administrative action on this user yet.')];
    }

    replace(body,
      h('div', {class: 'two-col'},
        h('section', {class: 'panel'}, h('h2', null, 'Details'), details),
        actions),
      h('section', {class: 'panel'},
        h('div', {class: 'panel-head'}, h('h2', null, `Sessions${Array.isArray(sessions) ? ` (${sessions.length})` : ''}`), revokeAll),
        sessionsNode),
      h('section', {class: 'panel'}, h('h2', null, 'Linked accounts'), accountsNode),
      h('section', {class: 'panel'}, h('h2', null, 'Audit trail'), auditNode));
  }

  reload();
  return {destroy() { closed = true; }};
}
