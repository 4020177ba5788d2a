// The generated client, compiled to JavaScript with tsc, against a live
// `warden serve`: every method of the tutorial's API, the errors as APIError,
// the forms of `auth`, `with()`, and the tutorial's snippet run unchanged.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import {
  FIXTURES_DIR,
  compileClient,
  genClient,
  runOk,
  startWarden,
  tempDir,
  totpCode,
  totpKey,
  totpStep,
} from "./support/harness.mjs";

const SUPPORT = path.join(path.dirname(fileURLToPath(import.meta.url)), "support");
const PASSWORD = "SecurePass123!";

let server; // warden serve, default configuration
let work; // the compiled client: <work.dir>/lib/client.js
let api; // its exports: default (Client), Local, APIError, ErrCode, isAPIError

let n = 0;
/** A fresh address for each user. */
const email = (who) => `${who}-${process.pid}-${++n}@example.com`;

before(async () => {
  server = await startWarden();
  work = tempDir("live");
  // `Local` is the server under test: the tutorial's snippet uses it as it is.
  api = await compileClient(await genClient(["--base-url", server.baseURL]), work.dir);
});

after(async () => {
  await server?.stop();
  work?.rm();
});

/** An anonymous client, and one signed in as a new user: {client, authed, user, token, email}. */
async function newUser(who = "user") {
  const Client = api.default;
  const client = new Client(api.Local);
  const address = email(who);
  const res = await client.auth.signUp({ email: address, password: PASSWORD, name: who });
  assert.ok(res.session, "sign-up starts a session (email verification is off by default)");
  const token = res.session.token;
  const authed = new Client(api.Local, { auth: { authorization: `Bearer ${token}` } });
  return { client, authed, user: res.user, token, email: address };
}

/** Asserts that `promise` rejects with an APIError of this status and code; returns the error. */
async function rejectsWith(promise, status, code) {
  let caught;
  await assert.rejects(promise, (err) => {
    caught = err;
    return true;
  });
  assert.ok(api.isAPIError(caught), `expected an APIError, got ${caught?.stack ?? caught}`);
  assert.ok(caught instanceof api.APIError);
  assert.ok(caught instanceof Error);
  assert.equal(caught.name, "APIError");
  assert.deepEqual({ status: caught.status, code: caught.code }, { status, code }, `message: ${caught.message}`);
  assert.equal(typeof caught.message, "string");
  return caught;
}

test("the tutorial's snippet (fixtures/tutorial.mjs) runs unchanged", async () => {
  fs.copyFileSync(path.join(FIXTURES_DIR, "tutorial.mjs"), path.join(work.dir, "tutorial.mjs"));
  const { stdout } = await runOk(
    process.execPath,
    ["--import", path.join(SUPPORT, "tutorial-env.mjs"), "tutorial.mjs"],
    { cwd: work.dir, timeoutMs: 30_000 },
  );
  const { user, session, profile, stored } = JSON.parse(stdout.trim().split("\n").pop());
  assert.deepEqual(Object.keys(user).sort(), ["email", "id", "name"]);
  assert.equal(user.email, "john@example.com");
  assert.match(session.token, /^[A-Za-z0-9]{32}$/);
  assert.ok(!Number.isNaN(Date.parse(session.expiresAt)));
  assert.equal(stored, session.token, "the token is in localStorage under authToken");
  assert.deepEqual(profile, { id: user.id, email: "john@example.com", name: "John Doe", image: null });
});

test("health.healthz() and health.readyz()", async () => {
  const client = new api.default(api.Local);
  assert.deepEqual(await client.health.healthz(), { status: "ok" });
  assert.deepEqual(await client.health.readyz(), { status: "ready" });
});

test("signUp, signIn, getProfile, updateProfile", async () => {
  const { client, authed, user, email: address } = await newUser("ada");
  assert.equal(user.email, address);
  assert.deepEqual(await authed.profile.getProfile(), { id: user.id, email: address, name: "ada", image: null });

  const signedIn = await client.auth.signIn({ email: address, password: PASSWORD });
  assert.ok(!("twoFactorRequired" in signedIn));
  assert.equal(signedIn.user.id, user.id);
  assert.match(signedIn.session.token, /^[A-Za-z0-9]{32}$/);

  const updated = await authed.profile.updateProfile({ name: "Ada Lovelace", image: "https://example.com/ada.png" });
  assert.deepEqual(updated, { id: user.id, email: address, name: "Ada Lovelace", image: "https://example.com/ada.png" });
  assert.equal((await authed.profile.updateProfile({ name: "Ada" })).image, "https://example.com/ada.png", "absent leaves the image");
  assert.equal((await authed.profile.updateProfile({ name: "Ada", image: null })).image, null, "null removes it");
  assert.equal((await authed.profile.getProfile()).name, "Ada");
});

test("listSessions and revokeSession", async () => {
  const { client, authed, email: address } = await newUser("sam");
  const second = await client.auth.signIn({ email: address, password: PASSWORD });
  const { sessions } = await authed.sessions.listSessions();
  assert.equal(sessions.length, 2);
  for (const s of sessions) {
    assert.deepEqual(Object.keys(s).sort(), ["createdAt", "current", "expiresAt", "id", "ipAddress", "userAgent"]);
  }
  assert.deepEqual(sessions.map((s) => s.current), [false, true], "newest first; the caller's is current");
  assert.equal(sessions[0].ipAddress, "127.0.0.1");
  assert.match(sessions[0].userAgent, /Generated-TS-Client/, "outside a browser the client names itself");

  assert.deepEqual(await authed.sessions.revokeSession(sessions[0].id), { success: true });
  assert.deepEqual((await authed.sessions.listSessions()).sessions.map((s) => s.id), [sessions[1].id]);
  const revoked = new api.default(api.Local, { auth: { authorization: `Bearer ${second.session.token}` } });
  await rejectsWith(revoked.profile.getProfile(), 401, api.ErrCode.Unauthenticated);
  await rejectsWith(authed.sessions.revokeSession(sessions[0].id), 404, api.ErrCode.NotFound);
  await rejectsWith(authed.sessions.revokeSession("no/such id"), 404, api.ErrCode.NotFound);
});

test("signOut, with the bearer token or {token}", async () => {
  const { client, authed, token, email: address } = await newUser("otto");
  assert.deepEqual(await authed.auth.signOut(), { success: true });
  await rejectsWith(authed.profile.getProfile(), 401, api.ErrCode.Unauthenticated);

  const again = await client.auth.signIn({ email: address, password: PASSWORD });
  assert.notEqual(again.session.token, token);
  assert.deepEqual(await client.auth.signOut({ token: again.session.token }), { success: true });
  const gone = new api.default(api.Local, { auth: { authorization: `Bearer ${again.session.token}` } });
  await rejectsWith(gone.sessions.listSessions(), 401, api.ErrCode.Unauthenticated);
});

test("errors are APIErrors: already_exists 409, unauthenticated 401, invalid_argument 400", async () => {
  const { client, email: address } = await newUser("eve");
  const dup = await rejectsWith(
    client.auth.signUp({ email: address, password: PASSWORD, name: "Eve again" }),
    409,
    api.ErrCode.AlreadyExists,
  );
  assert.equal(dup.code, "already_exists");
  assert.equal(dup.details ?? null, null);

  await rejectsWith(client.profile.getProfile(), 401, api.ErrCode.Unauthenticated);
  const bad = new api.default(api.Local, { auth: { authorization: "Bearer not-a-session-token-at-all" } });
  await rejectsWith(bad.profile.getProfile(), 401, api.ErrCode.Unauthenticated);
  await rejectsWith(client.auth.signIn({ email: address, password: "WrongPass123!" }), 401, api.ErrCode.Unauthenticated);

  const short = await rejectsWith(
    client.auth.signUp({ email: email("short"), password: "short", name: "Short" }),
    400,
    api.ErrCode.InvalidArgument,
  );
  assert.match(short.message, /password/);
  const badEmail = await rejectsWith(
    client.auth.signUp({ email: "not an email", password: PASSWORD, name: "Nobody" }),
    400,
    api.ErrCode.InvalidArgument,
  );
  assert.match(badEmail.message, /email/);
  // A wrong type gets through only past TypeScript (wrong-calls.ts): the server refuses it too.
  await rejectsWith(client.auth.signUp({ email: 42, password: PASSWORD, name: "N" }), 400, api.ErrCode.InvalidArgument);
});

test("an answer that is not Warden's error format is APIError with ErrCode.Unknown; a network error is no APIError", async () => {
  const down = new api.default(api.Local, {
    fetcher: async () => new Response("<html>bad gateway</html>", { status: 502, headers: { "content-type": "text/html" } }),
  });
  const err = await rejectsWith(down.health.healthz(), 502, api.ErrCode.Unknown);
  assert.match(err.message, /request failed: status 502/);
  assert.match(err.message, /bad gateway/);

  const offline = new api.default(api.Local, {
    fetcher: async () => {
      throw new TypeError("fetch failed");
    },
  });
  await assert.rejects(offline.health.healthz(), (e) => !api.isAPIError(e) && e instanceof TypeError);
});

test("requestPasswordReset and resetPassword, with the token from the outbox", async () => {
  const { client, authed, email: address } = await newUser("rita");
  const before = server.mailCount();
  const asked = await client.auth.requestPasswordReset({ email: address });
  assert.equal(asked.success, true);
  assert.equal(typeof asked.message, "string");
  const mail = await server.mail({ to: address, template: "password-reset", after: before });
  assert.match(mail.token, /^[A-Za-z0-9]{32}$/);

  const newPassword = "EvenBetterPass456!";
  assert.deepEqual(await client.auth.resetPassword({ token: mail.token, newPassword }), { success: true });
  await rejectsWith(authed.profile.getProfile(), 401, api.ErrCode.Unauthenticated); // every session ended
  await rejectsWith(client.auth.resetPassword({ token: mail.token, newPassword: "Another1Pass789!" }), 400, api.ErrCode.InvalidArgument);
  await rejectsWith(client.auth.signIn({ email: address, password: PASSWORD }), 401, api.ErrCode.Unauthenticated);
  const res = await client.auth.signIn({ email: address, password: newPassword });
  assert.match(res.session.token, /^[A-Za-z0-9]{32}$/);
});

test("sendVerificationEmail, verifyEmail, changeEmail", async () => {
  const { client, authed, email: address } = await newUser("vera");
  let before = server.mailCount();
  assert.deepEqual(await client.auth.sendVerificationEmail({ email: address }), { success: true });
  const verify = await server.mail({ to: address, template: "verify-email", after: before });
  assert.deepEqual(await client.auth.verifyEmail({ token: verify.token }), { success: true, email: address, emailChanged: false });
  await rejectsWith(client.auth.verifyEmail({ token: verify.token }), 400, api.ErrCode.InvalidArgument); // used

  const newEmail = email("vera-new");
  before = server.mailCount();
  assert.deepEqual(await authed.auth.changeEmail({ newEmail }), { success: true });
  assert.equal((await authed.profile.getProfile()).email, address, "nothing changes until the link is followed");
  const change = await server.mail({ to: newEmail, after: before });
  assert.ok(change.token, `the mail to the new address has a link with a token: ${JSON.stringify(change)}`);
  assert.deepEqual(await client.auth.verifyEmail({ token: change.token }), { success: true, email: newEmail, emailChanged: true });
  assert.equal((await authed.profile.getProfile()).email, newEmail);
  await rejectsWith(client.auth.changeEmail({ newEmail: email("x") }), 401, api.ErrCode.Unauthenticated);
});

test("twoFactor: enable, confirm, then signIn answers a challenge that verifyTotp completes", async () => {
  // The code computation itself, against RFC 6238's first SHA-1 vector (T = 59 s).
  assert.equal(totpCode(Buffer.from("12345678901234567890"), 1, 8), "94287082");

  const { client, authed, user, email: address } = await newUser("tess");
  const enabled = await authed.twoFactor.enable({ password: PASSWORD });
  assert.match(enabled.totpURI, /^otpauth:\/\/totp\//);
  assert.equal(enabled.backupCodes.length, 10);
  const key = totpKey(enabled.totpURI);
  const step = totpStep();
  const confirmed = await authed.twoFactor.confirm({ code: totpCode(key, step) });
  assert.equal(confirmed.twoFactorEnabled, true);

  const challenge = await client.auth.signIn({ email: address, password: PASSWORD });
  assert.equal(challenge.twoFactorRequired, true);
  assert.equal(typeof challenge.challenge, "string");
  assert.ok(!("session" in challenge), "no session before the second step");
  await assert.rejects(client.twoFactor.verifyTotp({ code: "000000", challenge: challenge.challenge }), (e) => api.isAPIError(e) && e.status >= 400 && e.status < 500);
  // A code is accepted once: the next step's (the server takes one step either side).
  const done = await client.twoFactor.verifyTotp({ code: totpCode(key, step + 1), challenge: challenge.challenge });
  assert.equal(done.user.id, user.id);
  const again = new api.default(api.Local, { auth: { authorization: `Bearer ${done.session.token}` } });
  assert.equal((await again.profile.getProfile()).id, user.id);
});

test("auth as an async generator: called before every request, its answer sent each time", async () => {
  const { token } = await newUser("gen");
  const events = [];
  let give = undefined; // what the generator answers next
  const client = new api.default(api.Local, {
    auth: async () => {
      events.push("auth");
      await new Promise((resolve) => setTimeout(resolve, 5));
      return give;
    },
    fetcher: (input, init) => {
      events.push(`fetch ${init.headers.Authorization ?? "-"}`);
      return fetch(input, init);
    },
  });
  await rejectsWith(client.profile.getProfile(), 401, api.ErrCode.Unauthenticated); // undefined: no credentials
  give = { authorization: `Bearer ${token}` };
  await client.profile.getProfile();
  await client.sessions.listSessions();
  await client.profile.updateProfile({ name: "Gen" });
  await client.health.healthz();
  const bearer = `fetch Bearer ${token}`;
  assert.deepEqual(events, ["auth", "fetch -", "auth", bearer, "auth", bearer, "auth", bearer, "auth", bearer]);

  let syncCalls = 0;
  const sync = new api.default(api.Local, { auth: () => (syncCalls++, { authorization: `Bearer ${token}` }) });
  assert.equal((await sync.profile.getProfile()).name, "Gen");
  await sync.sessions.listSessions();
  assert.equal(syncCalls, 2);
});

test("with(): a copy with the options merged; the original unchanged", async () => {
  const { token } = await newUser("willa");
  const sent = [];
  const base = new api.default(api.Local, {
    fetcher: (input, init) => {
      sent.push({ url: String(input), headers: { ...init.headers }, credentials: init.credentials });
      return fetch(input, init);
    },
    requestInit: { headers: { "X-Request-Id": "from-request-init" } },
  });
  const authed = base.with({ auth: { authorization: `Bearer ${token}` } });
  assert.ok(authed instanceof api.default);
  assert.notEqual(authed, base);
  assert.equal(authed.profile === base.profile, false);

  assert.equal((await authed.profile.getProfile()).name, "willa");
  const first = sent.pop();
  assert.equal(first.url, `${api.Local}/profile`);
  assert.equal(first.headers.Authorization, `Bearer ${token}`, "with() added the auth");
  assert.equal(first.headers["X-Request-Id"], "from-request-init", "and kept requestInit and the fetcher");
  assert.equal(first.headers["Content-Type"], "application/json");

  await rejectsWith(base.profile.getProfile(), 401, api.ErrCode.Unauthenticated);
  assert.equal(sent.pop().headers.Authorization, undefined, "the original still sends no credentials");

  const included = authed.with({ requestInit: { credentials: "include" } });
  await included.sessions.listSessions();
  const last = sent.pop();
  assert.equal(last.credentials, "include");
  assert.equal(last.headers.Authorization, `Bearer ${token}`, "a second with() keeps the first one's auth");
  assert.equal(last.headers["X-Request-Id"], undefined, "requestInit is replaced as a whole (a shallow merge)");
});

describe("with email verification required", () => {
  let strict;
  before(async () => {
    strict = await startWarden({ env: { WARDEN_EMAIL_VERIFICATION__REQUIRED: "true" } });
  });
  after(async () => strict?.stop());

  test("signUp answers session: null until the emailed link is followed", async () => {
    const client = new api.default(strict.baseURL);
    const address = email("nora");
    const res = await client.auth.signUp({ email: address, password: PASSWORD, name: "Nora" });
    assert.equal(res.session ?? null, null);
    assert.equal(res.emailVerificationRequired, true);
    assert.equal(res.user.email, address);
    await rejectsWith(client.auth.signIn({ email: address, password: PASSWORD }), 403, api.ErrCode.PermissionDenied);
    const mail = await strict.mail({ to: address, template: "verify-email" });
    assert.equal((await client.auth.verifyEmail({ token: mail.token })).success, true);
    const signedIn = await client.auth.signIn({ email: address, password: PASSWORD });
    assert.match(signedIn.session.token, /^[A-Za-z0-9]{32}$/);
  });
});
