// #/overview: counters, migrations, configuration.

import {h, replace, note, table, fmtTime, fmtBytes} from './dom.js';
import {api} from './api.js';

function card(label, value, sub, id) {
  return h('div', {class: 'card', id},
    h('div', {class: 'card-label'}, label),
    h('div', {class: 'card-value'}, value === null || value === undefined ? '–' : String(value)),
    sub ? h('div', {class: 'card-sub'}, sub) : null);
}

/** A collapsible tree of a JSON value: objects and arrays are <details>. */
export function jsonTree(value, key, depth = 0) {
  const keyNode = key !== undefined ? h('span', {class: 'jt-key'}, `${key}: `) : null;
  if (value !== null && typeof value === 'object') {
    const isArray = Array.isArray(value);
    const entries = isArray ? value.map((v, i) => [i, v]) : Object.entries(value);
    const summary = h('summary', null, keyNode,
      h('span', {class: 'jt-brace'}, isArray ? `[${entries.length}]` : `{${entries.length}}`));
    const details = h('details', {class: 'jt-node', open: depth < 1},
      summary,
      h('div', {class: 'jt-children'}, entries.map(([k, v]) => jsonTree(v, k, depth + 1))));
    return details;
  }
  let cls = 'jt-val';
  let text;
  if (value === null) { cls += ' v-null'; text = 'null'; }
  else if (typeof value === 'string') {
    text = JSON.stringify(value);
    if (value === '[masked]') cls += ' masked';
    else cls += ' v-str';
  } else if (typeof value === 'number') { cls += ' v-num'; text = String(value); }
  else if (typeof value === 'boolean') { cls += ' v-bool'; text = String(value); }
  else text = String(value);
  return h('div', {class: 'jt-leaf'}, keyNode, h('span', {class: cls}, text));
}

export function render(ctx) {
  const root = ctx.root;
  const body = h('div', null, note('info', 'Loading…'));
  replace(root, h('div', {id: 'overview', class: 'view'},
    h('header', {class: 'view-head'}, h('h1', null, 'Overview'), h('span', {class: 'muted', id: 'version'})),
    body));

  api('GET', '/api/overview').then((o) => {
    const version = root.querySelector('#version');
    if (version) version.textContent = `Warden ${o.version || ''} · ${o.mode || ''}`;
    const signIns = o.signIns || {};
    const traces = o.traces || {};
    const cards = h('div', {class: 'cards'},
      card('Users', o.users, null, 'card-users'),
      card('Active sessions', o.activeSessions, null, 'card-sessions'),
      card('Sign-ins, last hour', signIns.lastHour, null, 'card-signins'),
      card('Failed sign-ins, last hour', signIns.failuresLastHour, null, 'card-failures'),
      card('Traces kept', traces.kept,
        `${fmtBytes(traces.bytes)}${traces.evicted ? ` · ${traces.evicted} evicted` : ''}`, 'card-traces'));
    cards.querySelector('#card-failures').classList.toggle('card-warn', Number(signIns.failuresLastHour) > 0);

    const migrations = (o.migrations || []).map((m) => h('tr', null,
      h('td', {class: 'mono num'}, String(m.version)),
      h('td', null, m.description || ''),
      h('td', {class: 'mono', title: m.appliedAt || ''}, fmtTime(m.appliedAt))));
    replace(body,
      cards,
      h('div', {class: 'two-col'},
        h('section', {class: 'panel'},
          h('h2', null, 'Migrations'),
          migrations.length
            ? table({id: 'migrations', class: 'grid'}, ['Version', 'Description', 'Applied'], migrations)
            : note('empty', 'No migrations applied.')),
        h('section', {class: 'panel'},
          h('h2', null, 'Configuration'),
          h('p', {class: 'muted small'}, 'The server\u2019s configuration in force; secrets are masked.'),
          h('div', {id: 'config', class: 'json-tree mono'}, jsonTree(o.config ?? {})))));
  }).catch((e) => {
    replace(body, note('error', e.message));
  });
}
