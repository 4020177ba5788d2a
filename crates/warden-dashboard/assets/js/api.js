// The one way the page talks to the dashboard's API (same origin).

let unauthorized = () => {};

/** Called on any 401 (except where a call asks not to be). */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || null;
    this.body = body;
  }
}

/**
 * api('GET', '/api/overview') → parsed JSON.
 * Throws ApiError with the API's `message` on any non-2xx answer.
 * opts.noRedirect: do not go to the sign-in page on a 401.
 */
export async function api(method, path, body, opts = {}) {
  const init = {method, credentials: 'same-origin', headers: {Accept: 'application/json'}};
  if (method !== 'GET' && method !== 'HEAD') {
    init.headers['Content-Type'] = 'application/json';
    if (body !== undefined) init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network', `The dashboard did not answer (${e.message})`);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!res.ok) {
    const code = data && typeof data === 'object' ? data.code : null;
    const message = data && typeof data === 'object' ? data.message : (typeof data === 'string' ? data : null);
    if (res.status === 401 && !opts.noRedirect) unauthorized(code);
    throw new ApiError(res.status, code, message || code || `${res.status} ${res.statusText}`, data);
  }
  return data;
}

/** Query string from an object, skipping empty values. */
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === '') continue;
    p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}
