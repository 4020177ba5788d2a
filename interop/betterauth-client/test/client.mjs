// A BetterAuth client (the real one, from the `better-auth` package) wired to
// a browser-like fetch: cookies are kept in a jar and sent back, and every
// request carries the Origin header a page on `origin` would send.
//
//   const { client, jar } = makeClient("http://127.0.0.1:1234");
//   await client.signUp.email({ email, password, name });
//
// How the client takes the fetch (better-auth 1.7.25,
// node_modules/better-auth/dist/client/config.mjs): `fetchOptions` minus its
// hooks is spread into better-fetch's `createFetch({... customFetchImpl:
// fetch, ...restOfFetchOptions})`, so `fetchOptions.customFetchImpl` replaces
// the global fetch. better-fetch calls it as `customFetchImpl(url, context)`
// with `url` a URL object and `context.headers` a Headers object.
//
// `baseURL` is the server root: `getBaseURL` (dist/utils/url.mjs) appends the
// default base path "/api/auth" when the URL has no path of its own.

import { createAuthClient } from "better-auth/client";

/** How long one request may take before it fails (rather than hangs). */
export const REQUEST_TIMEOUT_MS = 15_000;

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;

/** RFC 6265 §5.1.4 default-path of a request URL. */
function defaultPath(url) {
  const p = url.pathname;
  if (!p.startsWith("/")) return "/";
  const last = p.lastIndexOf("/");
  return last <= 0 ? "/" : p.slice(0, last);
}

function pathMatches(requestPath, cookiePath) {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith("/") || requestPath[cookiePath.length] === "/";
}

function domainMatches(host, cookie) {
  if (cookie.hostOnly) return host === cookie.domain;
  return host === cookie.domain || host.endsWith(`.${cookie.domain}`);
}

/** Parses one Set-Cookie header value; returns null if it is malformed. */
export function parseSetCookie(header, requestURL, now = Date.now()) {
  const [pair, ...attrs] = header.split(";");
  const eq = pair.indexOf("=");
  if (eq <= 0) return null;
  const cookie = {
    name: pair.slice(0, eq).trim(),
    value: pair.slice(eq + 1).trim(),
    domain: requestURL.hostname.toLowerCase(),
    hostOnly: true,
    path: defaultPath(requestURL),
    secure: false,
    httpOnly: false,
    sameSite: undefined,
    expires: Infinity, // ms since epoch; Infinity = session cookie
    raw: header,
  };
  let maxAge;
  let expires;
  for (const attr of attrs) {
    const i = attr.indexOf("=");
    const key = (i === -1 ? attr : attr.slice(0, i)).trim().toLowerCase();
    const val = i === -1 ? "" : attr.slice(i + 1).trim();
    switch (key) {
      case "max-age":
        if (/^-?\d+$/.test(val)) maxAge = Number(val);
        break;
      case "expires": {
        const t = Date.parse(val);
        if (!Number.isNaN(t)) expires = t;
        break;
      }
      case "domain":
        if (val) {
          cookie.domain = val.replace(/^\./, "").toLowerCase();
          cookie.hostOnly = false;
        }
        break;
      case "path":
        cookie.path = val.startsWith("/") ? val : defaultPath(requestURL);
        break;
      case "secure":
        cookie.secure = true;
        break;
      case "httponly":
        cookie.httpOnly = true;
        break;
      case "samesite":
        cookie.sameSite = val;
        break;
      default:
        break;
    }
  }
  // Max-Age wins over Expires (RFC 6265 §5.3 step 3).
  if (maxAge !== undefined) cookie.expires = maxAge <= 0 ? -Infinity : now + maxAge * 1000;
  else if (expires !== undefined) cookie.expires = expires;
  return cookie;
}

/** A small browser-like cookie jar. */
export class CookieJar {
  constructor() {
    /** @type {Map<string, ReturnType<typeof parseSetCookie>>} */
    this.cookies = new Map();
  }

  static key(c) {
    return `${c.domain};${c.path};${c.name}`;
  }

  /** Stores (or, for Max-Age<=0 / past Expires, deletes) the cookies of a response. */
  store(url, setCookieHeaders) {
    const u = new URL(url);
    const now = Date.now();
    for (const header of setCookieHeaders) {
      const cookie = parseSetCookie(header, u, now);
      if (!cookie) continue;
      if (!cookie.hostOnly && !domainMatches(u.hostname.toLowerCase(), { ...cookie, hostOnly: false })) {
        continue; // a browser rejects a Domain that does not cover the host
      }
      const key = CookieJar.key(cookie);
      if (cookie.expires <= now) this.cookies.delete(key);
      else this.cookies.set(key, cookie);
    }
  }

  /** Live cookies that a browser would send to `url`, longest path first. */
  matching(url) {
    const u = new URL(url);
    const host = u.hostname.toLowerCase();
    const secureOK = u.protocol === "https:" || LOOPBACK.test(host);
    const now = Date.now();
    const out = [];
    for (const [key, c] of this.cookies) {
      if (c.expires <= now) {
        this.cookies.delete(key);
        continue;
      }
      if (!domainMatches(host, c) || !pathMatches(u.pathname || "/", c.path)) continue;
      if (c.secure && !secureOK) continue;
      out.push(c);
    }
    return out.sort((a, b) => b.path.length - a.path.length);
  }

  /** The `cookie` request header for `url`, or "" if no cookie applies. */
  cookieHeader(url) {
    return this.matching(url)
      .map((c) => `${c.name}=${c.value}`)
      .join("; ");
  }

  /** All live cookies. */
  all() {
    const now = Date.now();
    return [...this.cookies.values()].filter((c) => c.expires > now);
  }

  /** Names of all live cookies. */
  names() {
    return this.all().map((c) => c.name);
  }

  /** The live cookie whose name ends in `.session_token`, if any. */
  sessionCookie() {
    return this.all().find((c) => c.name.endsWith(".session_token"));
  }

  clear() {
    this.cookies.clear();
  }
}

/**
 * A fetch that behaves like a browser page on `origin` talking to the server:
 * sends the jar's cookies, stores Set-Cookie answers, and adds `Origin`.
 * Pass `origin: null` to send no Origin header.
 */
export function makeJarFetch(jar, { origin } = {}) {
  return async function jarFetch(input, init = {}) {
    const request = input instanceof Request ? input : null;
    const url = new URL(request ? request.url : input instanceof URL ? input.href : String(input));
    const headers = new Headers(init.headers ?? request?.headers);
    if (!headers.has("cookie")) {
      const cookie = jar.cookieHeader(url);
      if (cookie) headers.set("cookie", cookie);
    }
    if (origin && !headers.has("origin")) headers.set("origin", origin);

    const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    const method = (init.method ?? request?.method ?? "GET").toUpperCase();

    let response;
    try {
      response = await fetch(request ?? url, { ...init, headers, signal });
    } catch (err) {
      const why = timeout.aborted
        ? `no answer within ${REQUEST_TIMEOUT_MS} ms`
        : err.cause?.code ?? err.cause?.message ?? err.message;
      throw new Error(`${method} ${url.href} failed: ${why}`, { cause: err });
    }
    jar.store(response.url || url.href, response.headers.getSetCookie());
    return response;
  };
}

/**
 * A BetterAuth client for the server at `baseURL` (its root, e.g.
 * "http://127.0.0.1:1234"; the client adds "/api/auth").
 *
 * @param {string} baseURL
 * @param {{origin?: string|null, plugins?: object[]}} [options] `origin`:
 *   page origin sent as `Origin` (default: the origin of `baseURL`; `null`:
 *   none); `plugins`: client plugins (e.g. `[adminClient()]`)
 */
export function makeClient(baseURL, { origin, plugins } = {}) {
  const jar = new CookieJar();
  const pageOrigin = origin === undefined ? new URL(baseURL).origin : origin;
  const jarFetch = makeJarFetch(jar, { origin: pageOrigin });
  const client = createAuthClient({
    baseURL,
    ...(plugins ? { plugins } : {}),
    fetchOptions: { customFetchImpl: jarFetch },
  });
  return { client, jar, fetch: jarFetch };
}
