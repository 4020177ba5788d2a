// Assertions and small helpers shared by the passwordless tests
// (magic-link, email-otp, two-factor-otp, passkey).

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import path from "node:path";

import { nextMail } from "./harness.mjs";
import { Authenticator } from "./totp.mjs";

/** True when WARDEN_BIN is tools/reference-server.mjs (BetterAuth itself). */
export const AGAINST_REFERENCE = path.basename(process.env.WARDEN_BIN ?? "") === "reference-server.mjs";

/** Options of a test: 30 s each. */
export const TEST = { timeout: 30_000 };

/**
 * Test options for a check of BetterAuth's exact behaviour where Warden
 * differs on purpose or has not caught up: an ordinary test against the
 * reference server, a TODO test (reported, not failing) against Warden.
 */
export function knownDifference(why, options = TEST) {
  return AGAINST_REFERENCE ? options : { ...options, todo: `Warden differs: ${why}` };
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function uniqueEmail(tag) {
  return `${tag}-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}@example.com`;
}

export function describeError(error) {
  if (!error) return "no error";
  const parts = [`HTTP ${error.status}`];
  if (error.code) parts.push(error.code);
  parts.push(JSON.stringify(error.message ?? error.statusText ?? ""));
  return parts.join(" ");
}

/** Asserts a client call succeeded and returns its data (`server` for its log on failure). */
export function ok(result, what, server) {
  assert.ok(result && typeof result === "object" && "data" in result && "error" in result,
    `${what}: expected {data, error} from the client, got ${JSON.stringify(result)}`);
  if (result.error) {
    assert.fail(`${what} failed: ${describeError(result.error)}` +
      (server ? `\n--- server log tail ---\n${server.logs(15)}` : ""));
  }
  return result.data;
}

/** Asserts a client call failed with this HTTP status and (if given) BetterAuth error code. */
export function fails(result, status, code, what) {
  assert.equal(result.data, null, `${what}: expected no data, got ${JSON.stringify(result.data)}`);
  assert.ok(result.error, `${what}: expected an error, the call succeeded`);
  assert.equal(result.error.status, status, `${what}: status (error was ${describeError(result.error)})`);
  if (code !== undefined) {
    assert.equal(result.error.code, code, `${what}: code (error was ${describeError(result.error)})`);
  }
  assert.equal(typeof result.error.message, "string", `${what}: error.message should be a string`);
  assert.ok(result.error.message.length > 0, `${what}: error.message should not be empty`);
  return result.error;
}

/** The current session ({session, user}); fails if there is none. */
export async function currentSession(client, what) {
  const data = ok(await client.getSession(), `${what}: getSession()`);
  assert.ok(data && data.session && data.user, `${what}: expected {session, user}, got ${JSON.stringify(data)}`);
  return data;
}

/** Asserts getSession() answers "no session": 200 with JSON null. */
export async function assertNoSession(client, what) {
  const res = await client.getSession();
  assert.equal(res.error, null, `${what}: getSession() should answer 200 null, got ${describeError(res.error)}`);
  assert.equal(res.data, null, `${what}: expected no session, got ${JSON.stringify(res.data)}`);
}

/** The live cookie whose name ends in `.${suffix}` (prefix-agnostic). */
export function cookieEndingIn(jar, suffix) {
  return jar.all().find((c) => c.name.endsWith(`.${suffix}`));
}

/** A one-time code as both servers send it by default: 6 digits. */
export function assertSixDigits(code, what) {
  assert.match(code ?? "", /^\d{6}$/, `${what}: expected a 6-digit code in the mail's \`code\`, got ${JSON.stringify(code)}`);
}

/** A 6-digit code that is not `code`. */
export function otherCode(code) {
  return String((Number(code) + 1) % 1_000_000).padStart(6, "0");
}

/**
 * Turns TOTP two-factor on for the signed-in user of `client` (enable with
 * the password, then a first code with the session). Returns the
 * Authenticator (see totp.mjs) and the backup codes.
 */
export async function turnOnTotp(client, password, server) {
  const setup = ok(await client.twoFactor.enable({ password }), "twoFactor.enable({password})", server);
  const app = new Authenticator(setup.totpURI);
  ok(await client.twoFactor.verifyTotp({ code: await app.freshCode() }), "twoFactor.verifyTotp (with the session)", server);
  const s = await currentSession(client, "after turning two-factor on");
  assert.equal(s.user.twoFactorEnabled, true, "user.twoFactorEnabled after the first verifyTotp");
  return { app, backupCodes: setup.backupCodes };
}

/**
 * Confirms the address of `email` the ordinary way: sendVerificationEmail,
 * then a GET of the mailed /verify-email link. (A magic link or an email code
 * would verify it too, but for an unverified user BetterAuth then deletes the
 * password: see the D1 tests.)
 */
export async function verifyEmailByLink(c, email) {
  ok(await c.client.sendVerificationEmail({ email, callbackURL: "/" }), "sendVerificationEmail", c.server);
  const mail = await nextMail(c.server, email, { match: (m) => m.links.some((l) => l.includes("/verify-email")) });
  const link = mail.links.find((l) => l.includes("/verify-email"));
  const res = await fetch(link, { redirect: "manual", signal: AbortSignal.timeout(15_000) });
  await res.arrayBuffer();
  assert.ok(res.status < 400, `GET ${link}: ${res.status}`);
}
