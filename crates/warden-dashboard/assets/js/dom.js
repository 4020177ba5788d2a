// DOM helpers. Server data only ever goes in through textContent and
// attributes set one by one: never through innerHTML.

/**
 * h('a', {href: '#/x', class: 'mono', dataset: {id: 1}, onclick: fn}, 'text', child)
 * Attribute values null/undefined/false are skipped; `true` sets an empty
 * attribute. Children: strings/numbers become text nodes; null/false are
 * skipped; arrays are flattened.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on')) { if (typeof v === 'function') el.addEventListener(k.slice(2), v); }
      else if (k === 'value') el.value = v;
      else if (k === 'checked' || k === 'selected' || k === 'disabled') el[k] = Boolean(v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

export function show(el, visible) {
  el.hidden = !visible;
}

// ---- formatting ---------------------------------------------------------

export function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(Number(ms))) return '';
  const n = Number(ms);
  if (n < 1) return `${n.toFixed(2)} ms`;
  if (n < 100) return `${n.toFixed(1)} ms`;
  if (n < 1000) return `${Math.round(n)} ms`;
  return `${(n / 1000).toFixed(2)} s`;
}

function pad(n, w = 2) {
  return String(n).padStart(w, '0');
}

/** Local date and time, "2026-05-09 14:03:07". */
export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Local time of day with milliseconds, "14:03:07.123". */
export function fmtClock(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function yesNo(v) {
  return v ? 'yes' : 'no';
}

/** A cell's text for any JSON value. */
export function valueText(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** A span showing a JSON value, styled by kind ("[masked]" is grey italic). */
export function valueNode(v, secret = false) {
  const text = valueText(v);
  let cls = 'v';
  if (v === null || v === undefined) cls += ' v-null';
  else if (secret || v === '[masked]') cls += ' masked';
  else if (typeof v === 'number') cls += ' v-num';
  else if (typeof v === 'boolean') cls += ' v-bool';
  return h('span', {class: cls, title: text.length > 40 ? text : null}, text);
}

export function statusClass(status) {
  if (status === null || status === undefined) return 'st st-none';
  const c = Math.floor(Number(status) / 100);
  return `st st-${c}xx`;
}

/** A message box. kind: 'error' | 'info' | 'empty' */
export function note(kind, ...children) {
  return h('div', {class: `note note-${kind}`}, ...children);
}

/** Table with a sticky header. cols: [{label, cls}] or strings. */
export function table(attrs, cols, rows) {
  const head = h('thead', null, h('tr', null, cols.map((c) =>
    typeof c === 'string' ? h('th', null, c) : h('th', {class: c.cls || null}, c.label))));
  return h('div', {class: 'table-wrap'}, h('table', attrs, head, h('tbody', null, rows)));
}
