// #/db and #/db/<table>?filter_column=&filter_value=&op=&sort=&order=&offset=

import {h, replace, note, valueNode, valueText} from './dom.js';
import {api, qs} from './api.js';

const LIMIT = 50;

function stateFrom(query) {
  const offset = Math.max(0, parseInt(query.get('offset') || '0', 10) || 0);
  const limit = Math.min(500, Math.max(1, parseInt(query.get('limit') || String(LIMIT), 10) || LIMIT));
  return {
    filter_column: query.get('filter_column') || '',
    filter_value: query.get('filter_value') || '',
    op: query.get('op') === 'eq' ? 'eq' : (query.get('op') || ''),
    sort: query.get('sort') || '',
    order: query.get('order') === 'desc' ? 'desc' : (query.get('sort') ? 'asc' : ''),
    offset,
    limit,
  };
}

function hashFor(table, st) {
  return `#/db/${encodeURIComponent(table)}${qs({
    filter_column: st.filter_value !== '' ? st.filter_column : '',
    op: st.filter_value !== '' ? (st.op || 'contains') : '',
    filter_value: st.filter_value,
    sort: st.sort,
    order: st.sort ? st.order : '',
    offset: st.offset || '',
    limit: st.limit !== LIMIT ? st.limit : '',
  })}`;
}

export function linkHref(link, value) {
  return `#/db/${encodeURIComponent(link.table)}${qs({filter_column: link.foreignColumn, op: 'eq', filter_value: valueText(value)})}`;
}

export function render(ctx) {
  let tables = null; // [{name, rows, columns, links}]
  let current = null; // name of the table shown
  let gen = 0;

  const list = h('nav', {id: 'tables', class: 'table-list'}, h('p', {class: 'muted small'}, 'Loading…'));
  const main = h('div', {class: 'db-main'});
  const rowView = h('aside', {id: 'row-view', class: 'drawer', hidden: true});
  replace(ctx.root, h('div', {id: 'db', class: 'view'},
    h('header', {class: 'view-head'}, h('h1', null, 'Database'),
      h('span', {class: 'muted small'}, 'Read-only. Secret columns are masked.')),
    h('div', {class: 'db-layout'}, h('section', {class: 'panel tables-panel'}, h('h2', null, 'Tables'), list), main),
    rowView));

  const onKey = (e) => { if (e.key === 'Escape') closeRow(); };
  document.addEventListener('keydown', onKey);

  function closeRow() {
    rowView.hidden = true;
    replace(rowView);
    for (const tr of main.querySelectorAll('tr.selected')) tr.classList.remove('selected');
  }

  function drawList() {
    replace(list, (tables || []).map((t) => h('a', {
      href: `#/db/${encodeURIComponent(t.name)}`,
      dataset: {table: t.name},
      class: t.name === current ? 'active' : null,
    }, h('span', {class: 'mono'}, t.name), h('span', {class: 'count'}, String(t.rows ?? '')))));
    if (tables && !tables.length) replace(list, h('p', {class: 'muted small'}, 'No tables.'));
  }

  async function loadTables() {
    const data = await api('GET', '/api/db/tables');
    tables = data.tables || [];
    drawList();
  }

  function showRow(meta, columns, row, tr) {
    for (const x of main.querySelectorAll('tr.selected')) x.classList.remove('selected');
    tr.classList.add('selected');
    const secret = new Set((meta?.columns || []).filter((c) => c.secret).map((c) => c.name));
    const value = (col) => row[columns.indexOf(col)];
    // A user's own rows (…Id = its id) before the others (impersonatedBy, actorId…).
    const rank = (l) => (/^(user|owner)?id$/i.test(l.foreignColumn) || /Id$/.test(l.foreignColumn) ? 0 : 1);
    const links = (meta?.links || [])
      .filter((l) => columns.includes(l.column) && value(l.column) !== null && value(l.column) !== undefined)
      .map((l, i) => ({l, i}))
      .sort((a, b) => rank(a.l) - rank(b.l) || a.i - b.i)
      .map((x) => x.l);
    const extra = [];
    if (meta?.name === 'user' && columns.includes('id') && value('id') !== null) {
      extra.push(h('a', {href: `#/users/${encodeURIComponent(value('id'))}`, class: 'btn btn-small'}, 'Open user page'));
    }
    replace(rowView,
      h('div', {class: 'drawer-head'},
        h('h2', null, h('span', {class: 'mono'}, meta?.name || current), ' row'),
        h('button', {type: 'button', class: 'btn btn-small', id: 'row-close', onclick: closeRow, title: 'Close (Esc)'}, '×')),
      h('table', {class: 'kv'}, h('tbody', null, columns.map((c, i) => h('tr', null,
        h('th', {class: 'mono'}, c),
        h('td', {dataset: {column: c}, class: `mono${secret.has(c) ? ' secret' : ''}`},
          typeof row[i] === 'string' && row[i].length > 80
            ? h('pre', {class: 'cell-pre'}, row[i])
            : valueNode(row[i], secret.has(c) && row[i] !== null)))))),
      h('h3', null, 'Related'),
      links.length || extra.length
        ? h('ul', {class: 'links'},
          links.map((l) => h('li', null, h('a', {href: linkHref(l, value(l.column)), dataset: {linkTable: l.table, linkColumn: l.foreignColumn}},
            h('span', {class: 'mono'}, l.table),
            h('span', {class: 'muted mono'}, ` (${l.foreignColumn} = ${l.column})`)))),
          extra.map((a) => h('li', null, a)))
        : h('p', {class: 'muted small'}, 'No related rows.'));
    rowView.hidden = false;
  }

  async function loadTable(name, st) {
    const my = ++gen;
    closeRow();
    const meta = (tables || []).find((t) => t.name === name) || null;
    const params = {limit: st.limit, offset: st.offset, sort: st.sort, order: st.sort ? st.order : ''};
    if (st.filter_value !== '' && st.filter_column) {
      params.filter_column = st.filter_column;
      params.filter_value = st.filter_value;
      params.op = st.op || 'contains';
    }
    let data;
    try {
      data = await api('GET', `/api/db/tables/${encodeURIComponent(name)}${qs(params)}`);
    } catch (e) {
      if (my === gen) replace(main, h('section', {class: 'panel'}, h('h2', {class: 'mono'}, name), note('error', e.message)));
      return;
    }
    if (my !== gen) return;
    const columns = data.columns || meta?.columns?.map((c) => c.name) || [];
    const colMeta = new Map((meta?.columns || []).map((c) => [c.name, c]));
    const total = Number(data.total ?? 0);
    const offset = Number(data.offset ?? st.offset);
    const limit = Number(data.limit ?? st.limit);

    const header = h('tr', null, columns.map((c) => {
      const m = colMeta.get(c);
      const sorted = st.sort === c;
      const next = {...st, sort: c, order: sorted && st.order === 'asc' ? 'desc' : 'asc', offset: 0};
      return h('th', {
        class: `sortable${sorted ? ` sorted-${st.order}` : ''}${m?.secret ? ' secret' : ''}`,
        title: `${m?.type || m?.sqlType || ''}${m?.primaryKey ? ' · primary key' : ''}${m?.secret ? ' · secret (masked)' : ''} · click to sort`,
        dataset: {column: c},
        tabindex: '0',
        onclick: () => { location.hash = hashFor(name, next); },
        onkeydown: (e) => { if (e.key === 'Enter') location.hash = hashFor(name, next); },
      }, c, m?.primaryKey ? h('span', {class: 'pk', title: 'primary key'}, 'PK') : null,
      h('span', {class: 'sort-arrow'}, sorted ? (st.order === 'desc' ? ' ▼' : ' ▲') : ''));
    }));
    const body = h('tbody', null, (data.rows || []).map((row) => {
      const tr = h('tr', {class: 'clickable'}, columns.map((c, i) => {
        const secret = Boolean(colMeta.get(c)?.secret);
        return h('td', {dataset: {column: c}, class: `mono${secret ? ' secret' : ''}`}, valueNode(row[i], secret && row[i] !== null));
      }));
      tr.addEventListener('click', () => showRow(meta, columns, row, tr));
      return tr;
    }));

    const colSelect = h('select', {id: 'filter-column'}, columns.map((c) =>
      h('option', {value: c, selected: c === st.filter_column}, c)));
    const opSelect = h('select', {id: 'filter-op'},
      h('option', {value: 'contains', selected: st.op !== 'eq'}, 'contains'),
      h('option', {value: 'eq', selected: st.op === 'eq'}, 'equals (eq)'));
    const valueInput = h('input', {id: 'filter-value', type: 'text', value: st.filter_value, placeholder: 'value', class: 'w-md', spellcheck: 'false'});
    const form = h('form', {class: 'toolbar', id: 'filter-form'},
      h('label', null, 'Filter ', colSelect), opSelect, valueInput,
      h('button', {type: 'submit', id: 'filter-apply', class: 'btn btn-primary'}, 'Apply'),
      st.filter_value !== ''
        ? h('a', {href: hashFor(name, {...st, filter_value: '', filter_column: '', op: '', offset: 0}), class: 'btn', id: 'filter-reset'}, 'Clear filter')
        : null);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      location.hash = hashFor(name, {...st, filter_column: colSelect.value, op: opSelect.value, filter_value: valueInput.value, offset: 0});
    });

    const from = total === 0 ? 0 : offset + 1;
    const to = Math.min(offset + (data.rows || []).length, total);
    const prev = h('button', {type: 'button', id: 'prev', class: 'btn', disabled: offset <= 0}, '← Prev');
    const next = h('button', {type: 'button', id: 'next', class: 'btn', disabled: offset + limit >= total}, 'Next →');
    prev.addEventListener('click', () => { location.hash = hashFor(name, {...st, offset: Math.max(0, offset - limit)}); });
    next.addEventListener('click', () => { location.hash = hashFor(name, {...st, offset: offset + limit}); });

    replace(main, h('section', {class: 'panel'},
      h('div', {class: 'panel-head'},
        h('h2', {class: 'mono'}, name),
        h('div', {class: 'pager'}, prev, h('span', {id: 'page-info', class: 'muted'}, `${from}–${to} of ${total}`), next)),
      form,
      h('div', {class: 'table-wrap table-tall'}, h('table', {id: 'rows', class: 'grid'}, h('thead', null, header), body)),
      (data.rows || []).length ? null : note('empty', st.filter_value !== '' ? 'No row matches the filter.' : 'The table is empty.')));
  }

  async function show(c) {
    const name = c.params.table || null;
    current = name;
    drawList();
    if (!name) {
      gen++;
      closeRow();
      replace(main, h('section', {class: 'panel'}, note('info', 'Pick a table on the left. Rows open in a side view with links to related rows.')));
      return;
    }
    replace(main, h('section', {class: 'panel'}, h('h2', {class: 'mono'}, name), note('info', 'Loading…')));
    await loadTable(name, stateFrom(c.query));
  }

  loadTables().then(() => show(ctx)).catch((e) => replace(list, note('error', e.message)));

  return {
    update(c) {
      if (!tables) return false;
      show(c);
      return true;
    },
    destroy() {
      gen++;
      document.removeEventListener('keydown', onKey);
    },
  };
}
