#!/usr/bin/env node
// A stand-in for the Warden binary that runs BetterAuth itself (better-auth
// 1.7.25, in-memory database, bearer and twoFactor plugins), configured from
// the same WARDEN_* variables the harness sets. It exists to check the test
// suite: a test that fails against this server is a bug in the test, not in
// Warden.
//
//   WARDEN_BIN=tools/reference-server.mjs npm test
//
// Accepts (and ignores) the `serve` argument the harness passes.

import http from "node:http";
import { randomBytes } from "node:crypto";
import { betterAuth } from "better-auth";
import { memoryAdapter } from "better-auth/adapters/memory";
import { toNodeHandler } from "better-auth/node";
import { bearer } from "better-auth/plugins/bearer";
import { twoFactor } from "better-auth/plugins/two-factor";

const listen = process.env.WARDEN_LISTEN ?? "127.0.0.1:4000";
const sep = listen.lastIndexOf(":");
const host = listen.slice(0, sep);
const port = Number(listen.slice(sep + 1));
const baseURL = process.env.WARDEN_BASE_URL ?? `http://${listen}`;

const auth = betterAuth({
  baseURL,
  secret: randomBytes(32).toString("hex"),
  database: memoryAdapter({ user: [], session: [], account: [], verification: [], twoFactor: [] }),
  emailAndPassword: { enabled: true },
  user: { deleteUser: { enabled: process.env.WARDEN_USER__ALLOW_DELETE === "true" } },
  // twoFactor with its defaults (TOTP, 10 backup codes, 30-day trusted
  // devices); its own 3-per-10-s rate limit is off with the rest below.
  plugins: [bearer(), twoFactor()],
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

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/healthz") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ status: "ok" }));
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
