#!/usr/bin/env node
// A stand-in for the Warden binary that runs BetterAuth itself (better-auth
// 1.7.25, in-memory database, bearer, twoFactor and admin plugins, and the
// passwordless ones: magicLink, emailOTP, twoFactor's otp method and
// @better-auth/passkey 1.7.6), configured from the same WARDEN_* variables
// the harness sets. It exists to check the test suite: a test that fails
// against this server is a bug in the test, not in Warden.
//
// Mail: BetterAuth has no mailer; the plugins' send callbacks print the line
// Warden's development outbox logs with WARDEN_LOG__FORMAT=json (message
// "email (development outbox; not sent)", fields `to`, `subject`, `links` as
// Rust's Debug form of a list of URLs, and `code` for a one-time code), so
// the harness reads mail from both servers the same way.
//
// The WARDEN_* switches it mirrors (Warden's names):
//   WARDEN_MAGIC_LINK__ENABLED=true, WARDEN_MAGIC_LINK__EXPIRES_IN (e.g. 5m, 1s)
//   WARDEN_EMAIL_OTP__ENABLED=true, WARDEN_EMAIL_OTP__EXPIRES_IN,
//     WARDEN_EMAIL_OTP__CHANGE_EMAIL=true (email change by code)
//   WARDEN_TWO_FACTOR__EMAIL_OTP=true (twoFactor otpOptions.sendOTP)
//   WARDEN_PASSKEY__ENABLED (default true), WARDEN_PASSKEY__RP_ID (default:
//     the host of WARDEN_BASE_URL), WARDEN_PASSKEY__RP_NAME,
//     WARDEN_PASSKEY__USER_VERIFICATION (default: BetterAuth's "preferred";
//     Warden's default is "required")
//   WARDEN_TRUSTED_ORIGINS, WARDEN_CORS__ALLOW_ORIGINS_WITH_CREDENTIALS (JSON
//     lists; the latter default ["http://localhost:5173"] as in Warden): both
//     are trusted origins (redirect targets, Origin checks, passkey origins),
//     and the latter get credentialed CORS answers, as Warden gives them.
//
//   WARDEN_BIN=tools/reference-server.mjs npm test
//
// Accepts (and ignores) the `serve` argument the harness passes.
//
// Like Warden it also has a `user set-role <email> <role>` command (the
// harness's makeAdmin runs it with the server's environment). BetterAuth has
// no such command and this server's database lives in its own memory, so the
// command asks the running server, at WARDEN_LISTEN, through a route only
// this stand-in has: POST /__test/set-role {email, role}.

import http from "node:http";
import { randomBytes } from "node:crypto";
import { betterAuth } from "better-auth";
import { memoryAdapter } from "better-auth/adapters/memory";
import { toNodeHandler } from "better-auth/node";
import { bearer } from "better-auth/plugins/bearer";
import { twoFactor } from "better-auth/plugins/two-factor";
import { admin } from "better-auth/plugins/admin";
import { adminAc, userAc } from "better-auth/plugins/admin/access";
import { magicLink } from "better-auth/plugins/magic-link";
import { emailOTP } from "better-auth/plugins/email-otp";
import { passkey } from "@better-auth/passkey";
import { genericOAuth } from "better-auth/plugins/generic-oauth";

const listen = process.env.WARDEN_LISTEN ?? "127.0.0.1:4000";
const sep = listen.lastIndexOf(":");
const host = listen.slice(0, sep);
const port = Number(listen.slice(sep + 1));
const baseURL = process.env.WARDEN_BASE_URL ?? `http://${listen}`;

// `reference-server.mjs user set-role <email> <role>`: the stand-in for
// Warden's command of that name (see the top of this file).
if (process.argv[2] === "user") {
  const [, , , sub, email, role] = process.argv;
  if (sub !== "set-role" || !email || !role) {
    console.error("usage: reference-server.mjs user set-role <email> <role>");
    process.exit(2);
  }
  try {
    const res = await fetch(`http://${listen}/__test/set-role`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email, role }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (!res.ok) {
      console.error(`error: POST /__test/set-role answered ${res.status}: ${text}`);
      process.exit(1);
    }
    console.log(`role of ${email} set to ${role}`);
    process.exit(0);
  } catch (err) {
    console.error(`error: cannot reach the reference server at ${listen}: ${err.cause?.message ?? err.message}`);
    process.exit(1);
  }
}

const flag = (name, fallback = false) => {
  const v = process.env[name];
  return v === undefined || v === "" ? fallback : v === "true" || v === "1";
};

/** A JSON list of strings from the environment ("" or unset: `fallback`). */
function listEnv(name, fallback = []) {
  const v = process.env[name];
  if (v === undefined || v.trim() === "") return fallback;
  const parsed = JSON.parse(v);
  if (!Array.isArray(parsed) || parsed.some((x) => typeof x !== "string")) {
    throw new Error(`${name} should be a JSON list of strings, got ${v}`);
  }
  return parsed;
}

/** A humantime-like duration ("300ms", "1s", "5m", "1h", "1m 30s") in seconds. */
function secondsEnv(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v.trim() === "") return fallback;
  let total = 0;
  const re = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\b/g;
  let m;
  let matched = "";
  while ((m = re.exec(v))) {
    total += Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[m[2]];
    matched += m[0];
  }
  if (!matched) throw new Error(`${name}: not a duration: ${v}`);
  return total;
}

const corsOrigins = listEnv("WARDEN_CORS__ALLOW_ORIGINS_WITH_CREDENTIALS", ["http://localhost:5173"]);
const trustedOrigins = [new URL(baseURL).origin, ...listEnv("WARDEN_TRUSTED_ORIGINS"), ...corsOrigins];

/** Rust's `{:?}` of a Vec<String>, as Warden's outbox logs `links`. */
function rustDebugList(items) {
  const quote = (s) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t")}"`;
  return `[${items.map(quote).join(", ")}]`;
}

/** Logs a mail as Warden's development outbox does (WARDEN_LOG__FORMAT=json). */
function outbox({ to, subject, links = [], code }) {
  console.log(JSON.stringify({
    timestamp: new Date().toISOString(),
    level: "INFO",
    message: "email (development outbox; not sent)",
    to,
    subject,
    links: rustDebugList(links),
    ...(code === undefined ? {} : { code }),
    target: "warden_core::mail",
  }));
}

const APP = "Warden";
const OTP_SUBJECTS = {
  "sign-in": `Your ${APP} sign-in code`,
  "email-verification": `Your ${APP} verification code`,
  "forget-password": `Your ${APP} password reset code`,
  "change-email": `Your ${APP} email change code`,
};

const passwordlessPlugins = [];
if (flag("WARDEN_MAGIC_LINK__ENABLED")) {
  passwordlessPlugins.push(magicLink({
    expiresIn: secondsEnv("WARDEN_MAGIC_LINK__EXPIRES_IN", 300),
    disableSignUp: flag("WARDEN_MAGIC_LINK__DISABLE_SIGN_UP"),
    async sendMagicLink({ email, url }) {
      outbox({ to: email, subject: `Sign in to ${APP}`, links: [url] });
    },
  }));
}
if (flag("WARDEN_EMAIL_OTP__ENABLED")) {
  passwordlessPlugins.push(emailOTP({
    expiresIn: secondsEnv("WARDEN_EMAIL_OTP__EXPIRES_IN", 300),
    disableSignUp: flag("WARDEN_EMAIL_OTP__DISABLE_SIGN_UP"),
    changeEmail: { enabled: flag("WARDEN_EMAIL_OTP__CHANGE_EMAIL") },
    async sendVerificationOTP({ email, otp, type }) {
      outbox({ to: email, subject: `${OTP_SUBJECTS[type] ?? "Your code"}: ${otp}`, code: otp });
    },
  }));
}
if (flag("WARDEN_PASSKEY__ENABLED", true)) {
  passwordlessPlugins.push(passkey({
    rpID: process.env.WARDEN_PASSKEY__RP_ID || new URL(baseURL).hostname,
    rpName: process.env.WARDEN_PASSKEY__RP_NAME || APP,
    origin: trustedOrigins,
    ...(process.env.WARDEN_PASSKEY__USER_VERIFICATION
      ? { authenticatorSelection: { userVerification: process.env.WARDEN_PASSKEY__USER_VERIFICATION } }
      : {}),
  }));
}
// Social sign-in: one genericOAuth provider per WARDEN_SOCIAL__<NAME>__ISSUER
// (providerId the name in lower case, discovery from the issuer, the client
// id and WARDEN_SOCIAL_<NAME>_CLIENT_SECRET), as the README describes. In
// 1.7.25 they work through signIn.social and /callback/:id like built-in ones.
const socialProviders = Object.keys(process.env)
  .map((k) => /^WARDEN_SOCIAL__([A-Z0-9_]+?)__ISSUER$/.exec(k)?.[1])
  .filter(Boolean)
  .map((name) => ({
    providerId: name.toLowerCase(),
    discoveryUrl: `${process.env[`WARDEN_SOCIAL__${name}__ISSUER`].replace(/\/$/, "")}/.well-known/openid-configuration`,
    clientId: process.env[`WARDEN_SOCIAL__${name}__CLIENT_ID`],
    clientSecret: process.env[`WARDEN_SOCIAL_${name}_CLIENT_SECRET`],
    scopes: ["openid", "email", "profile"],
    ...(process.env[`WARDEN_SOCIAL__${name}__REDIRECT_URI`]
      ? { redirectURI: process.env[`WARDEN_SOCIAL__${name}__REDIRECT_URI`] }
      : {}),
  }));
if (socialProviders.length) passwordlessPlugins.push(genericOAuth({ config: socialProviders }));

const twoFactorOptions = flag("WARDEN_TWO_FACTOR__EMAIL_OTP")
  ? {
    otpOptions: {
      async sendOTP({ user, otp }) {
        outbox({ to: user.email, subject: `Your ${APP} sign-in code: ${otp}`, code: otp });
      },
    },
  }
  : undefined;

const auth = betterAuth({
  baseURL,
  secret: randomBytes(32).toString("hex"),
  appName: APP,
  trustedOrigins,
  database: memoryAdapter({ user: [], session: [], account: [], verification: [], twoFactor: [], passkey: [] }),
  emailAndPassword: { enabled: true },
  // Verification links (sendVerificationEmail), mailed as Warden does; not
  // on sign-up, as in Warden by default.
  emailVerification: {
    async sendVerificationEmail({ user, url }) {
      outbox({ to: user.email, subject: `Verify your ${APP} email address`, links: [url] });
    },
  },
  user: { deleteUser: { enabled: process.env.WARDEN_USER__ALLOW_DELETE === "true" } },
  // twoFactor with its defaults (TOTP, 10 backup codes, 30-day trusted
  // devices); its own 3-per-10-s rate limit is off with the rest below.
  // admin with BetterAuth's two default roles, given explicitly: with
  // `roles` set, setRole and createUser refuse a role that is not one of
  // them (YOU_ARE_NOT_ALLOWED_TO_SET_NON_EXISTENT_VALUE), as Warden does.
  // The memory adapter needs no schema: the admin fields (user.role,
  // banned, banReason, banExpires; session.impersonatedBy) are stored on
  // the records of the user and session tables above.
  // The passwordless plugins are on when their WARDEN_* switch is (see the
  // top of this file); passkeys by default, as in Warden.
  plugins: [
    bearer(),
    twoFactor(twoFactorOptions),
    admin({ roles: { admin: adminAc, user: userAc } }),
    ...passwordlessPlugins,
  ],
  // The memory adapter leaves an unset image out of the user altogether; a
  // SQL database (and Warden) gives image: null. Store null, as SQL would.
  databaseHooks: {
    user: { create: { before: async (user) => ({ data: { ...user, image: user.image ?? null } }) } },
  },
  rateLimit: { enabled: false },
  // BetterAuth skips the origin check when NODE_ENV=test or TEST is set;
  // Warden does not, so neither does this stand-in.
  advanced: { disableOriginCheck: false },
  telemetry: { enabled: false },
});

const authHandler = toNodeHandler(auth);

async function readJSON(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
}

function sendJSON(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/** POST /__test/set-role {email, role}: what `warden user set-role` does. */
async function setRoleByEmail(req, res) {
  let body;
  try {
    body = await readJSON(req);
  } catch {
    return sendJSON(res, 400, { code: "BAD_REQUEST", message: "expected a JSON body" });
  }
  const { email, role } = body ?? {};
  if (typeof email !== "string" || typeof role !== "string" || !role) {
    return sendJSON(res, 400, { code: "BAD_REQUEST", message: "expected {email, role}" });
  }
  const ctx = await auth.$context;
  const found = await ctx.internalAdapter.findUserByEmail(email.toLowerCase());
  if (!found) return sendJSON(res, 404, { code: "USER_NOT_FOUND", message: `no user ${email}` });
  const user = await ctx.internalAdapter.updateUser(found.user.id, { role });
  return sendJSON(res, 200, { id: user.id, email: user.email, role: user.role });
}

/** Credentialed CORS for the origins of WARDEN_CORS__ALLOW_ORIGINS_WITH_CREDENTIALS,
 * as Warden answers them (BetterAuth leaves CORS to the app). Returns true
 * when the request was a preflight and has been answered. */
function cors(req, res) {
  const origin = req.headers.origin;
  if (!origin || !corsOrigins.includes(origin)) return false;
  res.setHeader("access-control-allow-origin", origin);
  res.setHeader("access-control-allow-credentials", "true");
  res.setHeader("access-control-expose-headers", "set-auth-token");
  res.setHeader("vary", "Origin");
  if (req.method === "OPTIONS" && req.headers["access-control-request-method"]) {
    res.setHeader("access-control-allow-methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS");
    res.setHeader("access-control-allow-headers", req.headers["access-control-request-headers"] ?? "content-type");
    res.setHeader("access-control-max-age", "600");
    res.writeHead(204);
    res.end();
    return true;
  }
  return false;
}

const server = http.createServer((req, res) => {
  if (cors(req, res)) return;
  if (req.method === "GET" && req.url === "/healthz") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ status: "ok" }));
    return;
  }
  if (req.method === "POST" && req.url === "/__test/set-role") {
    setRoleByEmail(req, res).catch((err) => sendJSON(res, 500, { code: "INTERNAL", message: String(err) }));
    return;
  }
  if (req.url.startsWith("/api/auth/") || req.url === "/api/auth") {
    authHandler(req, res);
    return;
  }
  res.writeHead(404, { "content-type": "application/json" });
  res.end(JSON.stringify({ code: "NOT_FOUND", message: "Not found" }));
});

server.listen(port, host, () => {
  console.log(JSON.stringify({ msg: "reference server listening", listen, baseURL }));
});

const shutdown = () => server.close(() => process.exit(0));
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
