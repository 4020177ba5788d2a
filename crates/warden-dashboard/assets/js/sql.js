// #/sql: the read-only SQL console (development only).

import {h, replace, note, fmtMs, valueNode} from './dom.js';
import {api} from './api.js';

const KEY = 'warden.sql';

export function render(ctx) {
  if (!ctx.me.sqlConsole) {
    replace(ctx.root, h('div', {id: 'sql', class: 'view'},
      h('header', {class: 'view-head'}, h('h1', null, 'SQL console')),
      note('info', 'The SQL console is off: it is available in development mode only.')));
    return;
  }
  let saved = '';
  try { saved = localStorage.getItem(KEY) || ''; } catch { /* storage off */ }
  const input = h('textarea', {id: 'sql-input', class: 'mono', rows: '7', spellcheck: 'false', autocomplete: 'off',
    placeholder: 'select id, email, "createdAt" from "user" order by "createdAt" desc'});
  input.value = saved || 'select * from "user" limit 20';
  const run = h('button', {type: 'button', id: 'sql-run', class: 'btn btn-primary'}, 'Run');
  const info = h('span', {id: 'sql-info', class: 'muted'});
  const error = h('div', {id: 'sql-error', class: 'note note-error', hidden: true});
  const result = h('div', {class: 'sql-result-wrap'});
  let running = false;

  async function go() {
    const sql = input.value.trim();
    if (!sql || running) return;
    running = true;
    run.disabled = true;
    info.textContent = 'Running…';
    error.hidden = true;
    try { localStorage.setItem(KEY, input.value); } catch { /* storage off */ }
    try {
      const r = await api('POST', '/api/db/sql', {sql});
      const cols = r.columns || [];
      const rows = r.rows || [];
      replace(result, h('div', {class: 'table-wrap table-tall'}, h('table', {id: 'sql-result', class: 'grid'},
        h('thead', null, h('tr', null, cols.map((c) => h('th', null, c)))),
        h('tbody', null, rows.map((row) => h('tr', null, row.map((v, i) => h('td', {class: 'mono', dataset: {column: cols[i] ?? ''}}, valueNode(v)))))))));
      info.textContent = `${rows.length} row${rows.length === 1 ? '' : 's'}` +
        (r.truncated ? ` · truncated at ${r.rowLimit ?? rows.length} rows` : '') +
        (r.durationMs !== undefined ? ` · ${fmtMs(r.durationMs)}` : '');
      info.classList.toggle('warn', Boolean(r.truncated));
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
      info.textContent = '';
      replace(result);
    } finally {
      running = false;
      run.disabled = false;
    }
  }

  run.addEventListener('click', go);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      go();
    }
  });

  replace(ctx.root, h('div', {id: 'sql', class: 'view'},
    h('header', {class: 'view-head'}, h('h1', null, 'SQL console'),
      h('span', {class: 'badge'}, 'development only')),
    h('p', {class: 'muted small'},
      'One statement, read-only, with a statement timeout and a row limit. ',
      'Secret columns (password hashes, tokens, two-factor secrets) are not readable: they come back as [masked] or null.'),
    h('section', {class: 'panel'},
      input,
      h('div', {class: 'toolbar'}, run, h('span', {class: 'muted small'}, 'Ctrl+Enter runs'), info)),
    error,
    result));
  input.focus();
}
