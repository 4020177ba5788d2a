// A local OpenID Connect provider for Warden's tests. See README.md.
//
// oauth2-mock-server supplies discovery, the JWKS, RS256/ES256-signed ID and
// access tokens and the authorize/token/userinfo endpoints. This file puts a
// guard in front of it that makes it behave like a strict provider:
//
// - /authorize requires client_id, redirect_uri, response_type=code and a
//   PKCE S256 code_challenge, and redirects at once (no login page) with
//   code, state and iss;
// - /token accepts each code once, for the client and redirect_uri it was
//   issued to, only with the matching code_verifier and a client secret
//   (client_secret_post or client_secret_basic); anything else is
//   400 {"error":"invalid_grant"} (or invalid_client / invalid_request);
// - /userinfo, /github/* and /discord/* require a bearer access token that
//   this server issued, and answer with the claims of its authorization;
// - POST /__control sets what the next authorization returns, GET /__stats
//   counts requests.
//
// Usage: node server.mjs [--port N] [--exit-with-stdin]
// Prints one JSON line {"issuer":"http://127.0.0.1:PORT","port":PORT} on
// stdout when ready. With --exit-with-stdin it exits when its stdin closes
// (so that it never outlives the test process that started it).

import { createHash } from "node:crypto";
import { createServer } from "node:http";
import { OAuth2Issuer, OAuth2Service } from "oauth2-mock-server";

const args = process.argv.slice(2);
const portArg = args.indexOf("--port");
const listenPort = portArg >= 0 ? Number(args[portArg + 1]) : 0;
const host = "127.0.0.1";

const CODE_TTL_MS = 10 * 60 * 1000;
const MAX_BODY = 64 * 1024;

/** The claims an authorization carries unless /__control says otherwise. */
const DEFAULT_CLAIMS = Object.freeze({
  sub: "1001",
  email: "johndoe@example.com",
  email_verified: true,
  name: "John Doe",
  picture: "https://example.com/johndoe.png",
  login: "johndoe",
  avatar: null,
});
const CLAIM_KEYS = Object.keys(DEFAULT_CLAIMS);

/** Settings for the next authorization (replaced by each POST /__control). */
let pending = null;
/** code -> { clientId, redirectUri, challenge, claims, idTokenOverrides, noIdToken, scope, expires } */
const codes = new Map();
/** access token -> { claims, clientId } */
const accessTokens = new Map();
const stats = {
  discovery_requests: 0,
  jwks_requests: 0,
  authorize_requests: 0,
  token_requests: 0,
  userinfo_requests: 0,
  github_requests: 0,
  discord_requests: 0,
  last_client_auth: null,
};

const issuer = new OAuth2Issuer();
const service = new OAuth2Service(issuer);

// Signing keys. oauth2-mock-server picks keys round-robin; pin the one in
// use instead, so that a rotation (a new key, published in the JWKS) is
// deterministic.
let signingKid = (await issuer.keys.generate("RS256")).kid;
const keyStore = issuer.keys;
const pickKey = keyStore.get.bind(keyStore);
keyStore.get = (kid) => pickKey(kid ?? signingKid);

// ---------------------------------------------------------------- hooks

service.on("beforeAuthorizeRedirect", (redirect, req) => {
  const url = redirect.url;
  url.searchParams.set("iss", issuer.url);
  const code = url.searchParams.get("code");
  const ctx = req.wardenAuthorize;
  if (code && ctx) {
    codes.set(code, { ...ctx, expires: Date.now() + CODE_TTL_MS });
  }
});

service.on("beforeTokenSigning", (token, req) => {
  const grant = req.wardenGrant;
  if (!grant) return;
  const payload = token.payload;
  if ("scope" in payload) {
    // The access token.
    payload.sub = grant.claims.sub;
    payload.scope = grant.scope;
    payload.client_id = grant.clientId;
    return;
  }
  // The ID token.
  for (const key of ["sub", "email", "email_verified", "name", "picture"]) {
    if (grant.claims[key] !== null && grant.claims[key] !== undefined) {
      payload[key] = grant.claims[key];
    }
  }
  for (const [key, value] of Object.entries(grant.idTokenOverrides ?? {})) {
    if (value === null) delete payload[key];
    else payload[key] = value;
  }
});

service.on("beforeResponse", (response, req) => {
  const grant = req.wardenGrant;
  if (!grant || response.statusCode !== 200) return;
  response.body.scope = grant.scope;
  if (grant.noIdToken) delete response.body.id_token;
  accessTokens.set(response.body.access_token, { claims: grant.claims, clientId: grant.clientId });
});

service.on("beforeUserinfo", (response, req) => {
  const found = bearer(req);
  if (!found) {
    response.statusCode = 401;
    response.body = { error: "invalid_token" };
    return;
  }
  const body = { sub: found.claims.sub };
  for (const key of ["email", "email_verified", "name", "picture"]) {
    if (found.claims[key] !== null && found.claims[key] !== undefined) body[key] = found.claims[key];
  }
  response.body = body;
});

// ---------------------------------------------------------------- helpers

function sendJson(res, status, body, headers = {}) {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", ...headers });
  res.end(JSON.stringify(body));
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Error("body too large");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function bearer(req) {
  const header = req.headers.authorization ?? "";
  const match = /^(?:Bearer|token)\s+(\S+)$/i.exec(header);
  return match ? accessTokens.get(match[1]) : undefined;
}

function s256(verifier) {
  return createHash("sha256").update(verifier, "ascii").digest("base64url");
}

/** RFC 6749 2.3.1: client_id and client_secret, from Basic or the body. */
function clientCredentials(req, form) {
  const header = req.headers.authorization ?? "";
  const match = /^Basic\s+(\S+)$/i.exec(header);
  if (match) {
    const decoded = Buffer.from(match[1], "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return null;
    const unescape = (s) => decodeURIComponent(s.replace(/\+/g, " "));
    return {
      method: "client_secret_basic",
      clientId: unescape(decoded.slice(0, colon)),
      clientSecret: unescape(decoded.slice(colon + 1)),
      both: form.has("client_secret"),
    };
  }
  if (form.has("client_secret")) {
    return { method: "client_secret_post", clientId: form.get("client_id"), clientSecret: form.get("client_secret") };
  }
  return null;
}

function pickClaims(source) {
  const claims = { ...DEFAULT_CLAIMS };
  for (const key of CLAIM_KEYS) {
    if (key in source) claims[key] = source[key];
  }
  return claims;
}

// ---------------------------------------------------------------- routes

async function control(req, res) {
  let body;
  try {
    body = JSON.parse((await readBody(req)) || "{}");
  } catch {
    return sendJson(res, 400, { error: "invalid JSON" });
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return sendJson(res, 400, { error: "expected a JSON object" });
  }
  // Immediate actions.
  if (body.signing_alg !== undefined) {
    signingKid = (await issuer.keys.generate(String(body.signing_alg))).kid;
  } else if (body.rotate_key) {
    signingKid = (await issuer.keys.generate("RS256")).kid;
  }
  // Settings for the next authorization.
  pending = {
    claims: pickClaims(body),
    deny: body.deny === true,
    idTokenOverrides: body.id_token_overrides ?? {},
    noIdToken: body.no_id_token === true,
  };
  sendJson(res, 200, { ok: true, signing_kid: signingKid, next: pending });
}

function authorize(req, res, url) {
  stats.authorize_requests += 1;
  const q = url.searchParams;
  const redirectUri = q.get("redirect_uri");
  const clientId = q.get("client_id");
  let target;
  try {
    target = new URL(redirectUri ?? "");
  } catch {
    return sendJson(res, 400, { error: "invalid_request", error_description: "redirect_uri missing or invalid" });
  }
  if (!clientId) {
    return sendJson(res, 400, { error: "invalid_request", error_description: "client_id missing" });
  }
  const settings = pending ?? { claims: { ...DEFAULT_CLAIMS }, deny: false, idTokenOverrides: {}, noIdToken: false };
  pending = null;

  const fail = (error, description) => {
    target.searchParams.set("error", error);
    if (description) target.searchParams.set("error_description", description);
    if (q.get("state")) target.searchParams.set("state", q.get("state"));
    target.searchParams.set("iss", issuer.url);
    res.writeHead(302, { location: target.href });
    res.end();
  };
  if (q.get("response_type") !== "code") return fail("unsupported_response_type");
  if (!q.get("code_challenge")) return fail("invalid_request", "code_challenge required (PKCE)");
  if (q.get("code_challenge_method") !== "S256") return fail("invalid_request", "code_challenge_method must be S256");
  if (settings.deny) return fail("access_denied", "The user denied the request");

  req.wardenAuthorize = {
    clientId,
    redirectUri,
    challenge: q.get("code_challenge"),
    claims: settings.claims,
    idTokenOverrides: settings.idTokenOverrides,
    noIdToken: settings.noIdToken,
    scope: q.get("scope") ?? "",
  };
  service.requestHandler(req, res);
}

async function token(req, res) {
  stats.token_requests += 1;
  const raw = await readBody(req);
  const form = new URLSearchParams(raw);
  const deny = (status, error, description) => sendJson(res, status, { error, error_description: description });

  if (form.get("grant_type") === "authorization_code") {
    const client = clientCredentials(req, form);
    if (!client || !client.clientId || !client.clientSecret) {
      return deny(401, "invalid_client", "client authentication required");
    }
    if (client.both) return deny(400, "invalid_request", "more than one client authentication method");
    stats.last_client_auth = client.method;
    const code = form.get("code") ?? "";
    const grant = codes.get(code);
    // Single use: a code is spent by any attempt to redeem it.
    codes.delete(code);
    if (!grant || grant.expires < Date.now()) return deny(400, "invalid_grant", "unknown, used or expired code");
    if (grant.clientId !== client.clientId) return deny(400, "invalid_grant", "code was issued to another client");
    if (grant.redirectUri !== form.get("redirect_uri")) return deny(400, "invalid_grant", "redirect_uri mismatch");
    const verifier = form.get("code_verifier") ?? "";
    if (!/^[A-Za-z0-9\-._~]{43,128}$/.test(verifier) || s256(verifier) !== grant.challenge) {
      return deny(400, "invalid_grant", "code_verifier does not match code_challenge");
    }
    req.wardenGrant = grant;
  }
  // Hand the parsed body to oauth2-mock-server (its body parser sees a
  // finished request and keeps req.body).
  req.body = Object.fromEntries(form);
  service.requestHandler(req, res);
}

function github(req, res, path) {
  stats.github_requests += 1;
  const found = bearer(req);
  if (!found) return sendJson(res, 401, { message: "Bad credentials", status: "401" });
  const c = found.claims;
  if (path === "/github/user") {
    return sendJson(res, 200, {
      login: c.login ?? c.sub,
      id: /^\d+$/.test(c.sub) ? Number(c.sub) : c.sub,
      avatar_url: c.picture ?? null,
      name: c.name ?? null,
      email: c.email ?? null,
    });
  }
  // /github/user/emails: a verified secondary address listed before the
  // primary one, as GitHub may do.
  const emails = [];
  if (c.email) {
    emails.push({ email: `secondary-${c.sub}@example.net`, primary: false, verified: true, visibility: null });
    emails.push({ email: c.email, primary: true, verified: c.email_verified === true, visibility: "public" });
  }
  sendJson(res, 200, emails);
}

function discord(req, res) {
  stats.discord_requests += 1;
  const found = bearer(req);
  if (!found) return sendJson(res, 401, { message: "401: Unauthorized", code: 0 });
  const c = found.claims;
  sendJson(res, 200, {
    id: c.sub,
    username: c.login ?? c.sub,
    global_name: c.name ?? null,
    avatar: c.avatar ?? null,
    email: c.email ?? null,
    verified: c.email_verified === true,
  });
}

async function handle(req, res) {
  const url = new URL(req.url, issuer.url);
  const route = `${req.method} ${url.pathname}`;
  switch (route) {
    case "POST /__control":
      return control(req, res);
    case "GET /__stats":
      return sendJson(res, 200, { ...stats, signing_kid: signingKid });
    case "GET /authorize":
      return authorize(req, res, url);
    case "POST /token":
      return token(req, res);
    case "GET /github/user":
    case "GET /github/user/emails":
      return github(req, res, url.pathname);
    case "GET /discord/users/@me":
      return discord(req, res);
    case "GET /.well-known/openid-configuration":
      stats.discovery_requests += 1;
      break;
    case "GET /jwks":
      stats.jwks_requests += 1;
      break;
    case "GET /userinfo":
      stats.userinfo_requests += 1;
      break;
    default:
  }
  service.requestHandler(req, res);
}

const server = createServer((req, res) => {
  handle(req, res).catch((err) => {
    console.error("oidc test provider:", err);
    if (!res.headersSent) sendJson(res, 500, { error: "server_error" });
    else res.destroy();
  });
});

server.listen(listenPort, host, () => {
  const { port } = server.address();
  issuer.url = `http://${host}:${port}`;
  process.stdout.write(`${JSON.stringify({ issuer: issuer.url, port })}\n`);
});

if (args.includes("--exit-with-stdin")) {
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("error", () => process.exit(0));
  process.stdin.resume();
}
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
