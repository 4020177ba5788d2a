// #/outbox: mail the development server "sent", newest first, live.

import {h, replace, note, fmtTime} from './dom.js';
import {api} from './api.js';

const URL_RE = /https?:\/\/[^\s<>"'`]+/g;
const TRAILING = /[.,;:!?)\]}'"]+$/;

/** The text with its http(s) URLs as <a class="mail-link"> (DOM only). */
export function linkify(text) {
  const out = [];
  let last = 0;
  const s = String(text ?? '');
  for (const m of s.matchAll(URL_RE)) {
    let url = m[0];
    const trail = TRAILING.exec(url);
    if (trail) url = url.slice(0, url.length - trail[0].length);
    if (!url) continue;
    if (m.index > last) out.push(document.createTextNode(s.slice(last, m.index)));
    const a = document.createElement('a');
    a.className = 'mail-link';
    if (url.startsWith('http://') || url.startsWith('https://')) a.href = url;
    a.textContent = url;
    out.push(a);
    last = m.index + url.length;
  }
  if (last < s.length) out.push(document.createTextNode(s.slice(last)));
  return out;
}

function tokenOf(url) {
  try {
    return new URL(url).searchParams.get('token');
  } catch {
    return null;
  }
}

export function mailNode(m, fresh = false) {
  const links = Array.isArray(m.links) && m.links.length
    ? m.links
    : [...String(m.text ?? '').matchAll(URL_RE)].map((x) => x[0].replace(TRAILING, ''));
  const tokens = [...new Set(links.map(tokenOf).filter(Boolean))];
  let frame = null;
  const toggle = m.html
    ? h('button', {type: 'button', class: 'btn btn-small mail-html-toggle'}, 'Show HTML')
    : null;
  const htmlBox = h('div', {class: 'mail-html-box'});
  if (toggle) {
    toggle.addEventListener('click', () => {
      if (frame) {
        frame.remove();
        frame = null;
        toggle.textContent = 'Show HTML';
      } else {
        frame = document.createElement('iframe');
        frame.setAttribute('sandbox', ''); // no scripts, no same-origin, no forms, no navigation
        frame.className = 'mail-html';
        frame.setAttribute('title', `HTML body of: ${m.subject ?? ''}`);
        frame.srcdoc = String(m.html);
        htmlBox.appendChild(frame);
        toggle.textContent = 'Hide HTML';
      }
    });
  }
  return h('div', {class: `mail${fresh ? ' fresh' : ''}`, dataset: {mailId: m.id}},
    h('div', {class: 'mail-head'},
      h('div', {class: 'mail-subject'}, m.subject ?? '(no subject)'),
      h('div', {class: 'mail-time mono muted', title: m.at ?? ''}, fmtTime(m.at))),
    h('div', {class: 'mail-meta small'}, h('span', {class: 'muted'}, 'To '), h('span', {class: 'mail-to mono'}, m.to ?? '')),
    m.code ? h('div', {class: 'mail-meta small'}, h('span', {class: 'muted'}, 'Code '), h('span', {class: 'mail-code mono'}, String(m.code))) : null,
    h('pre', {class: 'mail-text'}, linkify(m.text ?? '')),
    h('div', {class: 'mail-actions'},
      toggle,
      tokens.map((t) => h('a', {class: 'btn btn-small mail-token-link', href: `#/link?token=${encodeURIComponent(t)}`,
        title: 'Open the link page with this token'}, 'Open on the link page'))),
    htmlBox);
}

export function render(ctx) {
  if (!ctx.me.outbox) {
    replace(ctx.root, h('div', {id: 'outbox', class: 'view'},
      h('header', {class: 'view-head'}, h('h1', null, 'Outbox')),
      note('info', 'The outbox is off: mail is captured here in development mode only.')));
    return;
  }
  let es = null;
  let closed = false;
  const seen = new Set();
  const live = h('span', {id: 'outbox-live', class: 'live off'}, 'connecting…');
  const list = h('div', {id: 'mails', class: 'mails'});
  const message = h('div', {class: 'msg'}, note('info', 'Loading…'));
  replace(ctx.root, h('div', {id: 'outbox', class: 'view'},
    h('header', {class: 'view-head'}, h('h1', null, 'Outbox'), live,
      h('span', {class: 'muted small'}, 'Mail the server sent in development, newest first. Links open in this tab.')),
    message,
    list));

  function add(m, fresh) {
    if (!m) return;
    const key = m.id ?? `${m.at}|${m.to}|${m.subject}`;
    if (seen.has(key)) return;
    seen.add(key);
    replace(message);
    if (fresh) list.insertBefore(mailNode(m, true), list.firstChild);
    else list.appendChild(mailNode(m));
  }

  es = new EventSource('/api/outbox/stream');
  es.addEventListener('open', () => { live.textContent = 'live'; live.className = 'live on'; });
  es.addEventListener('error', () => { live.textContent = 'disconnected'; live.className = 'live off'; });
  es.addEventListener('mail', (ev) => {
    try { add(JSON.parse(ev.data), true); } catch { /* ignore a bad event */ }
  });

  api('GET', '/api/outbox').then((data) => {
    if (closed) return;
    const msgs = data.messages || [];
    // Those already shown arrived live and are newer; the rest go below.
    for (const m of msgs) add(m, false);
    if (!list.firstChild) replace(message, note('empty', 'No mail yet. Sign up, or ask for a password reset, to see one here.'));
  }).catch((e) => { if (!closed) replace(message, note('error', e.message)); });

  return {
    destroy() {
      closed = true;
      if (es) es.close();
    },
  };
}
