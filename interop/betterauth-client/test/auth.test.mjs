// BetterAuth's own client (better-auth 1.7.25, `createAuthClient` from
// "better-auth/client") against Warden's /api/auth endpoints.
//
// One Warden per file; every test makes its own users (unique emails), so the
// tests do not depend on each other or on their order.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";

import { makeClient } from "./client.mjs";
import { startWarden, wardenBinary } from "./harness.mjs";

const TEST = { timeout: 30_000 };
const PASSWORD = "correct horse battery staple";

let warden;

// Without a binary, report that once (not as twelve cancelled tests).
let binaryProblem = null;
try {
  wardenBinary();
} catch (err) {
  binaryProblem = err;
}

// ---------------------------------------------------------------- helpers

function uniqueEmail(tag) {
  return `${tag}-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}@example.com`;
}

function newClient(options) {
  return makeClient(warden.baseURL, options);
}

function describeError(error) {
  if (!error) return "no error";
  const parts = [`HTTP ${error.status}`];
  if (error.code) parts.push(error.code);
  parts.push(JSON.stringify(error.message ?? error.statusText ?? ""));
  return parts.join(" ");
}

/** Asserts a client call succeeded and returns its data. */
function ok(result, what) {
  assert.ok(result && typeof result === "object" && "data" in result && "error" in result,
    `${what}: expected {data, error} from the client, got ${JSON.stringify(result)}`);
  if (result.error) {
    assert.fail(`${what} failed: ${describeError(result.error)}\n--- warden log tail ---\n${warden.logs(15)}`);
  }
  return result.data;
}

/** Asserts a client call failed with this HTTP status and BetterAuth error code. */
function fails(result, status, code, what) {
  assert.equal(result.data, null, `${what}: expected no data, got ${JSON.stringify(result.data)}`);
  assert.ok(result.error, `${what}: expected an error, the call succeeded`);
  assert.equal(result.error.status, status, `${what}: status (error was ${describeError(result.error)})`);
  assert.equal(result.error.code, code, `${what}: code (error was ${describeError(result.error)})`);
  assert.equal(typeof result.error.message, "string", `${what}: error.message should be a string`);
  assert.ok(result.error.message.length > 0, `${what}: error.message should not be empty`);
}

/** A Date from a value the client returned (a Date, or an ISO string it did not revive). */
function asDate(value, what) {
  const d = value instanceof Date ? value : new Date(value);
  assert.ok(value !== null && value !== undefined && !Number.isNaN(d.getTime()),
    `${what} should be a date, got ${JSON.stringify(value)}`);
  return d;
}

function assertUser(user, what) {
  assert.ok(user && typeof user === "object", `${what}: user object missing`);
  for (const key of ["id", "name", "email", "emailVerified", "image", "createdAt", "updatedAt"]) {
    assert.ok(key in user, `${what}: user.${key} missing (got keys ${Object.keys(user).join(", ")})`);
  }
  assert.equal(typeof user.id, "string", `${what}: user.id`);
  assert.ok(user.id.length > 0, `${what}: user.id is empty`);
  asDate(user.createdAt, `${what}: user.createdAt`);
  asDate(user.updatedAt, `${what}: user.updatedAt`);
}

async function signUp(client, email, { password = PASSWORD, name = "Test User" } = {}) {
  return ok(await client.signUp.email({ email, password, name }), `signUp.email(${email})`);
}

async function signIn(client, email, password = PASSWORD) {
  return ok(await client.signIn.email({ email, password }), `signIn.email(${email})`);
}

/** The current session ({session, user}); fails if there is none. */
async function currentSession(client, what) {
  const data = ok(await client.getSession(), `${what}: getSession()`);
  assert.ok(data && data.session && data.user, `${what}: expected {session, user}, got ${JSON.stringify(data)}`);
  return data;
}

/** Asserts getSession() answers "no session" the way BetterAuth does: 200 with JSON null. */
async function assertNoSession(client, what) {
  const res = await client.getSession();
  assert.equal(res.error, null, `${what}: getSession() should answer 200 null, got ${describeError(res.error)}`);
  assert.equal(res.data, null, `${what}: expected no session, got ${JSON.stringify(res.data)}`);
}

/** Plain fetch (no cookies, no Origin) of GET /api/auth/get-session with a bearer token. */
async function getSessionWithBearer(token) {
  const res = await fetch(`${warden.baseURL}/api/auth/get-session`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    assert.fail(`GET /api/auth/get-session (bearer) answered ${res.status} with non-JSON: ${text.slice(0, 200)}`);
  }
  return { status: res.status, body };
}

// ------------------------------------------------------------------ tests

if (binaryProblem) {
  test("a Warden binary is available", () => {
    throw binaryProblem;
  });
} else {
  before(async () => {
    warden = await startWarden();
  }, { timeout: 60_000 });

  after(async () => {
    await warden?.stop();
  });

  describe("BetterAuth client against Warden", suite);
}

function suite() {
  test("1. sign up returns token and user, sets the session cookie, and getSession sees it", TEST, async () => {
    const { client, jar } = newClient();
    const email = uniqueEmail("signup");
    const data = await signUp(client, email, { name: "Ada Lovelace" });

    assert.equal(typeof data.token, "string", "signUp: data.token should be a string");
    assert.ok(data.token.length > 0, "signUp: data.token is empty");
    assertUser(data.user, "signUp");
    assert.equal(data.user.email, email);
    assert.equal(data.user.name, "Ada Lovelace");
    assert.equal(data.user.emailVerified, false);

    const cookie = jar.sessionCookie();
    assert.ok(cookie, `jar should hold a *.session_token cookie, has: [${jar.names().join(", ")}]`);

    const s = await currentSession(client, "after sign-up");
    assert.equal(s.user.id, data.user.id);
    assert.equal(s.session.userId, s.user.id);
    const expiresAt = asDate(s.session.expiresAt, "session.expiresAt");
    assert.ok(expiresAt.getTime() > Date.now(), `session.expiresAt ${expiresAt.toISOString()} should be in the future`);
  });

  test("1b. timestamps come back in a form the client revives into Date objects", TEST, async () => {
    // The client's JSON parser (better-auth dist/client/parser.mjs) turns
    // strings matching YYYY-MM-DDTHH:MM:SS(.1-7 digits)(Z|±HH:MM) into Date
    // objects, which is what its TypeScript types promise. More than 7
    // fractional digits (e.g. nanoseconds) leaves them as plain strings.
    const { client } = newClient();
    const data = await signUp(client, uniqueEmail("dates"));
    for (const key of ["createdAt", "updatedAt"]) {
      assert.ok(data.user[key] instanceof Date,
        `signUp user.${key} should be revived as a Date, got ${JSON.stringify(data.user[key])}`);
    }
    const s = await currentSession(client, "dates");
    for (const key of ["expiresAt", "createdAt", "updatedAt"]) {
      assert.ok(s.session[key] instanceof Date,
        `getSession session.${key} should be revived as a Date, got ${JSON.stringify(s.session[key])}`);
    }
  });

  test("2. sign in from a second client; listSessions shows both sessions", TEST, async () => {
    const a = newClient();
    const b = newClient();
    const email = uniqueEmail("signin");
    const up = await signUp(a.client, email);

    const inB = await signIn(b.client, email);
    assert.equal(inB.redirect, false, "signIn: data.redirect");
    assert.equal(typeof inB.token, "string", "signIn: data.token should be a string");
    assert.ok(inB.token.length > 0, "signIn: data.token is empty");
    assertUser(inB.user, "signIn");
    assert.equal(inB.user.id, up.user.id);
    assert.ok(b.jar.sessionCookie(), "client B's jar should hold a *.session_token cookie");

    const sessions = ok(await a.client.listSessions(), "listSessions()");
    assert.ok(Array.isArray(sessions), `listSessions should return an array, got ${JSON.stringify(sessions)}`);
    assert.equal(sessions.length, 2, `expected 2 sessions, got ${JSON.stringify(sessions)}`);
    for (const s of sessions) {
      for (const key of ["id", "token", "userId", "expiresAt", "createdAt", "updatedAt"]) {
        assert.ok(key in s, `session.${key} missing (got keys ${Object.keys(s).join(", ")})`);
      }
      assert.equal(s.userId, up.user.id);
    }
    assert.notEqual(sessions[0].id, sessions[1].id, "the two sessions should have different ids");
    assert.notEqual(sessions[0].token, sessions[1].token, "the two sessions should have different tokens");

    const sa = await currentSession(a.client, "client A");
    const sb = await currentSession(b.client, "client B");
    const ids = sessions.map((s) => s.id).sort();
    assert.deepEqual(ids, [sa.session.id, sb.session.id].sort(), "listSessions ids should be A's and B's sessions");
  });

  test("3. updateUser changes the name", TEST, async () => {
    const { client } = newClient();
    await signUp(client, uniqueEmail("update"), { name: "Old Name" });

    const data = ok(await client.updateUser({ name: "New Name" }), "updateUser({name})");
    assert.equal(data.status, true, `updateUser: data.status, got ${JSON.stringify(data)}`);

    const s = await currentSession(client, "after updateUser");
    assert.equal(s.user.name, "New Name");
  });

  test("4. changePassword with revokeOtherSessions ends other sessions and rotates the caller's", TEST, async () => {
    const a = newClient();
    const b = newClient();
    const email = uniqueEmail("chpw");
    const newPassword = "a brand new passphrase";
    const up = await signUp(a.client, email);
    await signIn(b.client, email);
    await currentSession(b.client, "client B before the change");
    const cookieBefore = a.jar.sessionCookie()?.value;

    const data = ok(
      await a.client.changePassword({ currentPassword: PASSWORD, newPassword, revokeOtherSessions: true }),
      "changePassword({revokeOtherSessions: true})",
    );
    assert.equal(typeof data.token, "string", `changePassword: data.token should be a string, got ${JSON.stringify(data)}`);
    assert.ok(data.token.length > 0, "changePassword: data.token is empty");
    assertUser(data.user, "changePassword");
    assert.equal(data.user.id, up.user.id);

    await assertNoSession(b.client, "client B after the change");

    const cookieAfter = a.jar.sessionCookie()?.value;
    assert.ok(cookieAfter, "client A should still hold a session cookie");
    assert.notEqual(cookieAfter, cookieBefore, "client A's session cookie should have been replaced");
    const sa = await currentSession(a.client, "client A after the change");
    assert.equal(sa.user.id, up.user.id);

    const c = newClient();
    fails(await c.client.signIn.email({ email, password: PASSWORD }), 401, "INVALID_EMAIL_OR_PASSWORD",
      "sign in with the old password");
    await signIn(c.client, email, newPassword);
  });

  test("5. revokeSession ends another session by its token", TEST, async () => {
    const a = newClient();
    const b = newClient();
    const email = uniqueEmail("revoke1");
    await signUp(a.client, email);
    await signIn(b.client, email);
    const sa = await currentSession(a.client, "client A");
    const sb = await currentSession(b.client, "client B");

    const sessions = ok(await a.client.listSessions(), "listSessions()");
    assert.equal(sessions.length, 2, `expected 2 sessions, got ${JSON.stringify(sessions)}`);
    const others = sessions.filter((s) => s.token !== sa.session.token);
    assert.equal(others.length, 1,
      `exactly one listed session should have a token other than A's current one (${sa.session.token}); got ${JSON.stringify(sessions)}`);
    const target = others[0];
    assert.equal(target.id, sb.session.id, "the other session should be client B's");

    const data = ok(await a.client.revokeSession({ token: target.token }), "revokeSession({token})");
    assert.equal(data.status, true, `revokeSession: data.status, got ${JSON.stringify(data)}`);

    await assertNoSession(b.client, "client B after revokeSession");
    await currentSession(a.client, "client A after revokeSession");
    const left = ok(await a.client.listSessions(), "listSessions() after revokeSession");
    assert.deepEqual(left.map((s) => s.id), [sa.session.id]);
  });

  test("6. revokeOtherSessions keeps only the caller's session; revokeSessions ends all", TEST, async () => {
    const a = newClient();
    const b = newClient();
    const c = newClient();
    const email = uniqueEmail("revokeall");
    await signUp(a.client, email);
    await signIn(b.client, email);
    await signIn(c.client, email);
    const sa = await currentSession(a.client, "client A");

    const other = ok(await a.client.revokeOtherSessions(), "revokeOtherSessions()");
    assert.equal(other.status, true, `revokeOtherSessions: data.status, got ${JSON.stringify(other)}`);
    const left = ok(await a.client.listSessions(), "listSessions() after revokeOtherSessions");
    assert.deepEqual(left.map((s) => s.id), [sa.session.id], "only the caller's session should remain");
    await assertNoSession(b.client, "client B after revokeOtherSessions");
    await assertNoSession(c.client, "client C after revokeOtherSessions");
    await currentSession(a.client, "client A after revokeOtherSessions");

    await signIn(b.client, email);
    const all = ok(await a.client.revokeSessions(), "revokeSessions()");
    assert.equal(all.status, true, `revokeSessions: data.status, got ${JSON.stringify(all)}`);
    await assertNoSession(a.client, "client A after revokeSessions");
    await assertNoSession(b.client, "client B after revokeSessions");
  });

  test("7. signOut ends the session, clears the cookie, and kills the bearer token", TEST, async () => {
    const { client, jar } = newClient();
    const up = await signUp(client, uniqueEmail("signout"));
    assert.ok(jar.sessionCookie(), "session cookie after sign-up");

    const data = ok(await client.signOut(), "signOut()");
    assert.equal(data.success, true, `signOut: data.success, got ${JSON.stringify(data)}`);

    await assertNoSession(client, "after signOut");
    assert.equal(jar.sessionCookie(), undefined,
      `the *.session_token cookie should be gone from the jar, jar has: [${jar.names().join(", ")}]`);

    const { status, body } = await getSessionWithBearer(up.token);
    assert.equal(status, 200, "GET /get-session with a signed-out bearer token should answer 200 null");
    assert.equal(body, null, `expected null, got ${JSON.stringify(body)}`);
  });

  test("8. errors carry BetterAuth's status, code and message", TEST, async () => {
    const email = uniqueEmail("errors");
    await signUp(newClient().client, email);

    const { client } = newClient();
    fails(await client.signIn.email({ email, password: "wrong password!" }), 401, "INVALID_EMAIL_OR_PASSWORD",
      "sign in with a wrong password");
    fails(await client.signUp.email({ email, password: PASSWORD, name: "Dup" }), 422,
      "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL", "sign up with an existing email");
    fails(await client.signUp.email({ email: uniqueEmail("short"), password: "1234567", name: "Short" }), 400,
      "PASSWORD_TOO_SHORT", "sign up with a 7-character password");
    fails(await client.listSessions(), 401, "UNAUTHORIZED", "listSessions() without a session");
  });

  test("9. the session token works as a bearer token; sign-in sends set-auth-token", TEST, async () => {
    const email = uniqueEmail("bearer");
    const up = await signUp(newClient().client, email);

    const first = await getSessionWithBearer(up.token);
    assert.equal(first.status, 200, "GET /get-session with the sign-up token");
    assert.ok(first.body && first.body.user, `expected {session, user}, got ${JSON.stringify(first.body)}`);
    assert.equal(first.body.user.id, up.user.id);

    const { client } = newClient();
    let headerToken;
    const inRes = await client.signIn.email(
      { email, password: PASSWORD },
      {
        onSuccess(ctx) {
          headerToken = ctx.response.headers.get("set-auth-token");
        },
      },
    );
    ok(inRes, "signIn.email");
    assert.ok(headerToken, "the sign-in response should carry a set-auth-token header");

    const second = await getSessionWithBearer(headerToken);
    assert.equal(second.status, 200, "GET /get-session with the set-auth-token value");
    assert.ok(second.body && second.body.user, `expected {session, user}, got ${JSON.stringify(second.body)}`);
    assert.equal(second.body.user.id, up.user.id);
  });

  test("10. a cookie-carrying POST from a foreign or missing origin is refused", TEST, async () => {
    const { client, jar } = newClient();
    await signUp(client, uniqueEmail("origin"));
    const url = `${warden.baseURL}/api/auth/sign-out`;
    const cookie = jar.cookieHeader(url);
    assert.ok(cookie, "the jar should have a cookie for /api/auth/sign-out");

    const post = async (extra) => {
      const res = await fetch(url, {
        method: "POST",
        headers: { cookie, "content-type": "application/json", ...extra },
        body: "{}",
        signal: AbortSignal.timeout(15_000),
      });
      const text = await res.text();
      let body = null;
      try {
        body = JSON.parse(text);
      } catch {
        // leave null; reported below
      }
      return { status: res.status, body, text };
    };

    const evil = await post({ origin: "https://evil.example" });
    assert.equal(evil.status, 403, `foreign Origin: status (body ${evil.text})`);
    assert.equal(evil.body?.code, "INVALID_ORIGIN", `foreign Origin: code (body ${evil.text})`);

    const none = await post({});
    assert.equal(none.status, 403, `no Origin/Referer: status (body ${none.text})`);
    assert.equal(none.body?.code, "MISSING_OR_NULL_ORIGIN", `no Origin/Referer: code (body ${none.text})`);

    await currentSession(client, "after the refused sign-outs");
  });

  test("11. deleteUser with the password removes the account", TEST, async () => {
    const { client } = newClient();
    const email = uniqueEmail("delete");
    await signUp(client, email);

    const data = ok(await client.deleteUser({ password: PASSWORD }), "deleteUser({password})");
    assert.equal(data.success, true, `deleteUser: data.success, got ${JSON.stringify(data)}`);

    fails(await newClient().client.signIn.email({ email, password: PASSWORD }), 401, "INVALID_EMAIL_OR_PASSWORD",
      "sign in after deleteUser");
  });
}
