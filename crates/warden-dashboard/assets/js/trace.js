// #/traces/<id>: one trace as a waterfall of its spans, and its events.

import {h, replace, note, fmtMs, fmtTime, statusClass, valueText} from './dom.js';
import {api} from './api.js';

function oneLine(text, max = 160) {
  const s = String(text ?? '').replace(/\s+/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

function isErrorSpan(s) {
  return s.level === 'ERROR' || (s.fields && s.fields['error.type'] !== undefined && s.fields['error.type'] !== '') ||
    (s.name === 'request' && Number(s.fields?.['http.response.status_code']) >= 500);
}

/** What a span's row shows beside its name. */
function inlineInfo(s) {
  const f = s.fields || {};
  switch (s.name) {
    case 'db.query':
      return f['db.query.text'] !== undefined
        ? h('code', {class: 'span-sql', title: f['db.query.text']}, oneLine(f['db.query.text']))
        : null;
    case 'auth': {
      const parts = [];
      if (f.user_id !== undefined) parts.push(`user=${f.user_id}`);
      if (f.session_id !== undefined) parts.push(`session=${f.session_id}`);
      if (f.cached !== undefined) parts.push(`cached=${f.cached}`);
      if (f.outcome !== undefined) parts.push(`outcome=${f.outcome}`);
      return parts.length ? h('span', {class: 'span-info mono'}, parts.join(' ')) : null;
    }
    case 'request': {
      const parts = [f['http.request.method'], f['http.route'], f['http.response.status_code']].filter((x) => x !== undefined);
      return parts.length ? h('span', {class: 'span-info mono'}, parts.join(' ')) : null;
    }
    case 'http.client': {
      const url = f['url.full'] ?? f['http.url'] ?? f['server.address'];
      const st = f['http.response.status_code'];
      const parts = [f['http.request.method'], url, st].filter((x) => x !== undefined);
      return parts.length ? h('span', {class: 'span-info mono'}, oneLine(parts.join(' '), 120)) : null;
    }
    default:
      if (f['error.type'] !== undefined) return h('span', {class: 'span-info mono'}, `error=${f['error.type']}`);
      return null;
  }
}

function fieldsTable(fields) {
  const entries = Object.entries(fields || {});
  if (!entries.length) return h('p', {class: 'muted small'}, 'No fields.');
  return h('table', {class: 'kv'}, h('tbody', null, entries.map(([k, v]) => {
    const text = valueText(v);
    const long = k === 'db.query.text' || text.length > 60 || text.includes('\n');
    return h('tr', null,
      h('th', {class: 'mono'}, k),
      h('td', null, long ? h('pre', {class: k === 'db.query.text' ? 'sql' : 'mono'}, text)
        : h('span', {class: `mono${text === '[masked]' ? ' masked' : ''}`}, text)));
  })));
}

function eventLine(ev, spanName, withFields) {
  const lvl = (ev.level || '').toUpperCase();
  return h('li', {class: `event lvl-${lvl.toLowerCase()}`},
    h('span', {class: 'ev-offset mono'}, `+${fmtMs(ev.offsetMs)}`),
    h('span', {class: `ev-level mono lvl lvl-${lvl.toLowerCase()}`}, lvl),
    spanName ? h('span', {class: 'ev-span mono muted'}, spanName) : null,
    h('span', {class: 'ev-message'}, ev.message ?? h('span', {class: 'muted'}, ev.target || '')),
    withFields && ev.fields && Object.keys(ev.fields).length
      ? h('span', {class: 'ev-fields mono'}, Object.entries(ev.fields).map(([k, v]) =>
        h('span', {class: 'ev-field'}, h('span', {class: 'muted'}, `${k}=`), valueText(v))))
      : null);
}

export function render(ctx) {
  const id = ctx.params.id;
  const body = h('div', null, note('info', 'Loading…'));
  const title = h('h1', {id: 'trace-title'}, 'Trace');
  replace(ctx.root, h('div', {id: 'trace', class: 'view'},
    h('header', {class: 'view-head'},
      h('a', {href: '#/traces', class: 'back'}, '← Traces'),
      title,
      h('code', {class: 'muted small', id: 'trace-id'}, id)),
    body));

  api('GET', `/api/traces/${encodeURIComponent(id)}`).then((t) => draw(t)).catch((e) => {
    if (e.status === 404) {
      replace(body, note('empty', 'This trace is no longer kept. ', h('a', {href: '#/traces'}, 'Back to the traces')));
    } else replace(body, note('error', e.message));
  });

  function draw(t) {
    const spans = (t.spans || []).map((s) => ({...s, name: s.name || '(span)'}));
    const root = spans[0];
    const total = Number(t.durationMs ?? root?.durationMs) || 0;
    const byId = new Map(spans.map((s) => [s.id, s]));
    const depth = new Map();
    const depthOf = (s) => {
      if (depth.has(s.id)) return depth.get(s.id);
      depth.set(s.id, 0); // guards against cycles
      const p = s.parent ? byId.get(s.parent) : null;
      const d = p ? depthOf(p) + 1 : 0;
      depth.set(s.id, d);
      return d;
    };

    // Title: method route status duration, from the root span.
    const rf = root?.fields || {};
    const method = rf['http.request.method'];
    const route = rf['http.route'];
    const status = rf['http.response.status_code'];
    replace(title,
      method !== undefined ? h('span', {class: 'mono'}, `${method} `) : null,
      h('span', {class: 'mono'}, route ?? root?.name ?? 'trace'),
      status !== undefined ? h('span', {class: `${statusClass(status)} title-status`}, String(status)) : null,
      h('span', {class: 'title-dur muted'}, fmtMs(total)));

    const detail = h('aside', {id: 'span-detail', class: 'panel span-detail'},
      h('p', {class: 'muted'}, 'Click a span to see its fields.'));

    let selected = null;
    function select(s, row) {
      if (selected) selected.classList.remove('selected');
      selected = row;
      row.classList.add('selected');
      replace(detail,
        h('h2', {class: 'mono'}, s.name),
        h('table', {class: 'kv'}, h('tbody', null,
          h('tr', null, h('th', null, 'target'), h('td', {class: 'mono'}, s.target || '')),
          h('tr', null, h('th', null, 'level'), h('td', {class: 'mono'}, s.level || '')),
          h('tr', null, h('th', null, 'start'), h('td', {class: 'mono'}, `+${fmtMs(s.offsetMs)}`)),
          h('tr', null, h('th', null, 'duration'), h('td', {class: 'mono'}, fmtMs(s.durationMs))),
          h('tr', null, h('th', null, 'span id'), h('td', {class: 'mono'}, s.id)),
          h('tr', null, h('th', null, 'parent'), h('td', {class: 'mono'}, s.parent || '–')))),
        h('h3', null, 'Fields'),
        fieldsTable(s.fields),
        (s.events || []).length
          ? [h('h3', null, 'Events'), h('ul', {class: 'events'}, s.events.map((ev) => eventLine(ev, null, true)))]
          : null);
    }

    const rows = [];
    for (const s of spans) {
      const d = depthOf(s);
      const off = Number(s.offsetMs) || 0;
      const dur = Number(s.durationMs) || 0;
      const left = total > 0 ? Math.min(100, Math.max(0, (off / total) * 100)) : 0;
      const width = total > 0 ? Math.min(100 - left, Math.max(0, (dur / total) * 100)) : 100;
      const bar = h('div', {class: `bar bar-${s.name.split('.')[0].replace(/[^a-z0-9_-]/gi, '')}${isErrorSpan(s) ? ' bar-error' : ''}`});
      bar.style.left = `${left}%`;
      bar.style.width = `${width}%`;
      const label = h('div', {class: 'span-label'},
        h('span', {class: 'span-name mono'}, s.name),
        inlineInfo(s));
      label.style.paddingLeft = `${6 + d * 16}px`;
      const row = h('div', {class: `span${isErrorSpan(s) ? ' span-error' : ''}`, dataset: {name: s.name, spanId: s.id, depth: d}, tabindex: '0'},
        label,
        h('div', {class: 'span-track'}, bar),
        h('div', {class: 'span-dur mono'}, fmtMs(dur)));
      row.addEventListener('click', () => select(s, row));
      row.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); select(s, row); } });
      rows.push(row);
      if ((s.events || []).length) {
        const evs = h('ul', {class: 'span-events'}, s.events.map((ev) => eventLine(ev, null, false)));
        evs.style.paddingLeft = `${22 + d * 16}px`;
        rows.push(evs);
      }
    }

    const allEvents = [];
    for (const s of spans) for (const ev of s.events || []) allEvents.push([ev, s]);
    allEvents.sort((a, b) => (Number(a[0].offsetMs) || 0) - (Number(b[0].offsetMs) || 0));

    replace(body,
      h('div', {class: 'trace-meta muted small'},
        `${fmtTime(t.time)} · ${spans.length} span${spans.length === 1 ? '' : 's'}`,
        t.truncated ? h('span', {class: 'badge badge-warn'}, 'truncated: spans beyond the limit were dropped') : null),
      h('div', {class: 'trace-layout'},
        h('section', {class: 'panel waterfall-panel'},
          h('div', {class: 'waterfall-head'},
            h('span', null, 'Span'), h('span', {class: 'scale'}, h('span', null, '0'), h('span', null, fmtMs(total / 2)), h('span', null, fmtMs(total))), h('span', {class: 'num'}, 'Duration')),
          h('div', {id: 'waterfall'}, rows)),
        detail),
      h('section', {class: 'panel'},
        h('h2', null, `Events (${allEvents.length})`),
        allEvents.length
          ? h('ul', {id: 'events', class: 'events'}, allEvents.map(([ev, s]) => eventLine(ev, s.name, true)))
          : h('ul', {id: 'events', class: 'events'}, h('li', {class: 'muted'}, 'No events.'))));
    if (root && rows[0]) select(root, rows[0]);
  }
}
