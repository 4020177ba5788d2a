#!/usr/bin/env node
// A stand-in for the Warden binary that runs BetterAuth itself (better-auth
// 1.7.25, in-memory database, bearer, twoFactor and admin plugins),
// configured from the same WARDEN_* variables the harness sets. It exists to
// check the test suite: a test that fails against this server is a bug in the
// test, not in Warden.
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

const auth = betterAuth({
  baseURL,
  secret: randomBytes(32).toString("hex"),
  database: memoryAdapter({ user: [], session: [], account: [], verification: [], twoFactor: [] }),
  emailAndPassword: { enabled: true },
  user: { deleteUser: { enabled: process.env.WARDEN_USER__ALLOW_DELETE === "true" } },
  // twoFactor with its defaults (TOTP, 10 backup codes, 30-day trusted
  // devices); its own 3-per-10-s rate limit is off with the rest below.
  // admin with BetterAuth's two default roles, given explicitly: with
  // `roles` set, setRole and createUser refuse a role that is not one of
  // them (YOU_ARE_NOT_ALLOWED_TO_SET_NON_EXISTENT_VALUE), as Warden does.
  // The memory adapter needs no schema: the admin fields (user.role,
  // banned, banReason, banExpires; session.impersonatedBy) are stored on
  // the records of the user and session tables above.
  plugins: [bearer(), twoFactor(), admin({ roles: { admin: adminAc, user: userAc } })],
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

const server = http.createServer((req, res) => {
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
