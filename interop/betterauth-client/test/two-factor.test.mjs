// BetterAuth's twoFactor client plugin (better-auth 1.7.25,
// `twoFactorClient` from "better-auth/client/plugins") against Warden's
// /api/auth/two-factor/* endpoints.
//
// TOTP codes are computed here, independently of both servers: RFC 6238
// (HMAC-SHA1, from the secret in the otpauth:// URI) with node:crypto.
//
// Warden accepts each TOTP code once (it remembers the last time step used
// per user, and takes only later steps); BetterAuth itself accepts a code
// again while it is in its window. `Authenticator.freshCode()` therefore
// hands out steps in increasing order: the previous, current or next step,
// all of which both servers accept (±1 step). No test needs more than two
// codes per user, so no test has to wait for the clock.
//
// One Warden per file; every test makes its own users, so the tests do not
// depend on each other or on their order. Cookies are found by the end of
// their name (`*.two_factor`, `*.trust_device`, `*.session_token`), so the
// tests also run against BetterAuth (`better-auth.*`).

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { createAuthClient } from "better-auth/client";
import { twoFactorClient } from "better-auth/client/plugins";

import { CookieJar, makeJarFetch } from "./client.mjs";
import { startWarden, wardenBinary } from "./harness.mjs";
import { Authenticator, base32Decode, hotp } from "./totp.mjs";

const TEST = { timeout: 30_000 };
const PASSWORD = "correct horse battery staple";

/** True when WARDEN_BIN is tools/reference-server.mjs (BetterAuth itself). */
const AGAINST_REFERENCE = path.basename(process.env.WARDEN_BIN ?? "") === "reference-server.mjs";

let warden;

// Without a binary, report that once (not as a dozen cancelled tests).
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

/**
 * A browser-like BetterAuth client with the twoFactor plugin. Each call of
 * onTwoFactorRedirect is recorded in `redirects`.
 */
function newClient() {
  const jar = new CookieJar();
  const redirects = [];
  const client = createAuthClient({
    baseURL: warden.baseURL,
    plugins: [
      twoFactorClient({
        onTwoFactorRedirect(context) {
          redirects.push(context);
        },
      }),
    ],
    fetchOptions: { customFetchImpl: makeJarFetch(jar, { origin: new URL(warden.baseURL).origin }) },
  });
  return { client, jar, redirects };
}

/** The live cookie whose name ends in `.${suffix}` (prefix-agnostic). */
function cookieEndingIn(jar, suffix) {
  return jar.all().find((c) => c.name.endsWith(`.${suffix}`));
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
    assert.fail(`${what} failed: ${describeError(result.error)}\n--- server log tail ---\n${warden.logs(15)}`);
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

async function signUp(client, email) {
  return ok(await client.signUp.email({ email, password: PASSWORD, name: "Two Factor" }), `signUp.email(${email})`);
}

/** The current session ({session, user}); fails if there is none. */
async function currentSession(client, what) {
  const data = ok(await client.getSession(), `${what}: getSession()`);
  assert.ok(data && data.session && data.user, `${what}: expected {session, user}, got ${JSON.stringify(data)}`);
  return data;
}

/** Asserts getSession() answers "no session": 200 with JSON null. */
async function assertNoSession(client, what) {
  const res = await client.getSession();
  assert.equal(res.error, null, `${what}: getSession() should answer 200 null, got ${describeError(res.error)}`);
  assert.equal(res.data, null, `${what}: expected no session, got ${JSON.stringify(res.data)}`);
}

/**
 * Signs up a user with a client of its own, enables TOTP and confirms it
 * with a first code, then signs that client out. Returns the email, the
 * backup codes and the authenticator.
 */
async function userWithTwoFactor(tag) {
  const { client } = newClient();
  const email = uniqueEmail(tag);
  const up = await signUp(client, email);
  const setup = ok(await client.twoFactor.enable({ password: PASSWORD }), "twoFactor.enable({password})");
  const app = new Authenticator(setup.totpURI);
  ok(await client.twoFactor.verifyTotp({ code: await app.freshCode() }), "twoFactor.verifyTotp (with the session)");
  const s = await currentSession(client, "after turning two-factor on");
  assert.equal(s.user.twoFactorEnabled, true, "user.twoFactorEnabled after the first verifyTotp");
  ok(await client.signOut(), "signOut()");
  return { email, userId: up.user.id, backupCodes: setup.backupCodes, app };
}

/**
 * signIn.email for a user with two-factor on: asserts the redirect answer,
 * the onTwoFactorRedirect call, the challenge cookie and that there is no
 * session yet.
 */
async function signInToChallenge(c, email, what) {
  const redirectsBefore = c.redirects.length;
  const data = ok(await c.client.signIn.email({ email, password: PASSWORD }), `${what}: signIn.email`);
  assert.equal(data.twoFactorRedirect, true, `${what}: data.twoFactorRedirect, got ${JSON.stringify(data)}`);
  assert.deepEqual(data.twoFactorMethods, ["totp"], `${what}: data.twoFactorMethods`);
  assert.equal(data.token, undefined, `${what}: no token before the second step, got ${JSON.stringify(data)}`);
  assert.equal(c.redirects.length, redirectsBefore + 1, `${what}: onTwoFactorRedirect should have been called once`);
  assert.deepEqual(c.redirects.at(-1), { twoFactorMethods: ["totp"] }, `${what}: onTwoFactorRedirect argument`);
  assert.ok(cookieEndingIn(c.jar, "two_factor"),
    `${what}: the jar should hold a *.two_factor cookie, has: [${c.jar.names().join(", ")}]`);
  assert.equal(c.jar.sessionCookie(), undefined,
    `${what}: no session cookie before the second step, jar has: [${c.jar.names().join(", ")}]`);
  await assertNoSession(c.client, `${what}: before the second step`);
}

/** Asserts a completed second step: `{token, user}`, a session cookie, no challenge cookie. */
async function assertSignedIn(c, data, userId, what) {
  assert.equal(typeof data?.token, "string", `${what}: data.token should be a string, got ${JSON.stringify(data)}`);
  assert.ok(data.token.length > 0, `${what}: data.token is empty`);
  assert.equal(data.user?.id, userId, `${what}: data.user.id`);
  assert.equal(data.user.twoFactorEnabled, true, `${what}: data.user.twoFactorEnabled`);
  assert.ok(c.jar.sessionCookie(), `${what}: the jar should hold a session cookie, has: [${c.jar.names().join(", ")}]`);
  assert.equal(cookieEndingIn(c.jar, "two_factor"), undefined, `${what}: the *.two_factor cookie should be cleared`);
  const s = await currentSession(c.client, what);
  assert.equal(s.user.id, userId, `${what}: session user`);
  return s;
}

// ------------------------------------------------------------------ tests

test("the test's own TOTP matches RFC 6238 (SHA-1 test vectors)", () => {
  const key = Buffer.from("12345678901234567890");
  for (const [t, want] of [[59, "94287082"], [1111111109, "07081804"], [1111111111, "14050471"],
    [1234567890, "89005924"], [2000000000, "69279037"], [20000000000, "65353130"]]) {
    assert.equal(hotp(key, Math.floor(t / 30), 8), want, `T=${t}`);
  }
  assert.deepEqual([...base32Decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")], [...key]);
  assert.deepEqual([...base32Decode("MZXW6YTBOI")], [...Buffer.from("foobar")]);
});

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

  describe("BetterAuth twoFactor client against Warden", suite);
  describe("BetterAuth's exact answers (the two where Warden differs are TODO against Warden)", knownDifferences);
}

/**
 * Test options for a check of BetterAuth's exact behaviour that Warden does
 * not match yet: an ordinary test against the reference server, a TODO test
 * (reported, not failing the run) against Warden.
 */
function knownDifference(why) {
  return AGAINST_REFERENCE ? TEST : { ...TEST, todo: `Warden differs: ${why}` };
}

function suite() {
  test("1. enable returns a TOTP URI and 10 backup codes; verifyTotp with the session turns 2FA on", TEST, async () => {
    const c = newClient();
    const email = uniqueEmail("enable");
    const up = await signUp(c.client, email);
    assert.equal(up.user.twoFactorEnabled, false, "signUp: user.twoFactorEnabled");

    fails(await c.client.twoFactor.enable({ password: "not the password" }), 400, "INVALID_PASSWORD",
      "twoFactor.enable with a wrong password");

    const setup = ok(await c.client.twoFactor.enable({ password: PASSWORD }), "twoFactor.enable({password})");
    assert.equal(typeof setup.totpURI, "string", `enable: totpURI, got ${JSON.stringify(setup)}`);
    assert.ok(setup.totpURI.startsWith("otpauth://totp/"), `enable: totpURI ${setup.totpURI}`);
    const app = new Authenticator(setup.totpURI);
    assert.ok(app.key.length >= 16, `the TOTP secret should have at least 128 bits, has ${app.key.length * 8}`);
    assert.ok(decodeURIComponent(new URL(setup.totpURI).pathname).endsWith(`:${email}`),
      `the totpURI label should name the account ${email}: ${setup.totpURI}`);
    assert.ok(Array.isArray(setup.backupCodes), `enable: backupCodes should be an array, got ${JSON.stringify(setup)}`);
    assert.equal(setup.backupCodes.length, 10, "enable: 10 backup codes");
    assert.equal(new Set(setup.backupCodes).size, 10, "enable: backup codes should be distinct");
    for (const code of setup.backupCodes) {
      assert.equal(typeof code, "string");
      assert.ok(code.length >= 8, `backup code ${JSON.stringify(code)} looks too short`);
    }

    // Not on until a first code is confirmed: the session and a sign-in
    // elsewhere still show it off.
    let s = await currentSession(c.client, "after enable, before verifyTotp");
    assert.equal(s.user.twoFactorEnabled, false, "user.twoFactorEnabled before the first verifyTotp");
    const other = newClient();
    const early = ok(await other.client.signIn.email({ email, password: PASSWORD }), "signIn before verifyTotp");
    assert.equal(early.twoFactorRedirect, undefined, "no second step before 2FA is confirmed");
    assert.equal(typeof early.token, "string", "signIn before verifyTotp gives a session");
    assert.equal(other.redirects.length, 0, "onTwoFactorRedirect should not be called before 2FA is confirmed");

    // getTotpUri repeats the same secret (password required).
    fails(await c.client.twoFactor.getTotpUri({ password: "not the password" }), 400, "INVALID_PASSWORD",
      "twoFactor.getTotpUri with a wrong password");
    const again = ok(await c.client.twoFactor.getTotpUri({ password: PASSWORD }), "twoFactor.getTotpUri({password})");
    assert.equal(new Authenticator(again.totpURI).secret, app.secret, "getTotpUri should give the same secret");

    fails(await c.client.twoFactor.verifyTotp({ code: app.wrongCode() }), 401, "INVALID_CODE",
      "verifyTotp (with the session) with a wrong code");
    s = await currentSession(c.client, "after a wrong code");
    assert.equal(s.user.twoFactorEnabled, false, "a wrong code should not turn 2FA on");

    const verified = ok(await c.client.twoFactor.verifyTotp({ code: await app.freshCode() }),
      "twoFactor.verifyTotp({code}) with the session");
    assert.equal(verified.user?.id, up.user.id, `verifyTotp: data.user.id, got ${JSON.stringify(verified)}`);
    s = await currentSession(c.client, "after verifyTotp");
    assert.equal(s.user.twoFactorEnabled, true, "user.twoFactorEnabled after the first verifyTotp");
  });

  test("2. sign-in asks for a code; a wrong one fails, the right one with trustDevice signs in; the trusted device then skips 2FA", TEST, async () => {
    const { email, userId, app } = await userWithTwoFactor("trust");
    const c = newClient();
    await signInToChallenge(c, email, "first sign-in");

    fails(await c.client.twoFactor.verifyTotp({ code: app.wrongCode() }), 401, "INVALID_CODE", "verifyTotp with a wrong code");
    await assertNoSession(c.client, "after a wrong code");
    assert.ok(cookieEndingIn(c.jar, "two_factor"), "a wrong code should leave the challenge usable");

    let authToken;
    const data = ok(await c.client.twoFactor.verifyTotp(
      { code: await app.freshCode(), trustDevice: true },
      { onSuccess(ctx) { authToken = ctx.response.headers.get("set-auth-token"); } },
    ), "verifyTotp({code, trustDevice: true})");
    await assertSignedIn(c, data, userId, "after verifyTotp");
    const trust = cookieEndingIn(c.jar, "trust_device");
    assert.ok(trust, `trustDevice should set a *.trust_device cookie, jar has: [${c.jar.names().join(", ")}]`);
    assert.ok(trust.httpOnly, "the trust-device cookie should be HttpOnly");
    assert.ok(trust.expires > Date.now() + 24 * 3600 * 1000, "the trust-device cookie should outlive a day");

    // The bearer plugin's header comes with the completed sign-in too.
    assert.ok(authToken, "verifyTotp should send a set-auth-token header");
    const res = await fetch(`${warden.baseURL}/api/auth/get-session`, {
      headers: { authorization: `Bearer ${authToken}` },
      signal: AbortSignal.timeout(15_000),
    });
    const body = await res.json();
    assert.equal(body?.user?.id, userId, `get-session with the set-auth-token bearer, got ${JSON.stringify(body)}`);

    ok(await c.client.signOut(), "signOut()");
    await assertNoSession(c.client, "after signOut");
    assert.ok(cookieEndingIn(c.jar, "trust_device"), "signOut should keep the trust-device cookie");

    const again = ok(await c.client.signIn.email({ email, password: PASSWORD }), "signIn.email on the trusted device");
    assert.equal(again.twoFactorRedirect, undefined, `a trusted device should skip 2FA, got ${JSON.stringify(again)}`);
    assert.equal(typeof again.token, "string", "signIn on the trusted device: data.token");
    assert.equal(again.user?.id, userId);
    assert.equal(c.redirects.length, 1, "onTwoFactorRedirect should not be called on the trusted device");
    assert.equal((await currentSession(c.client, "trusted sign-in")).user.id, userId);
    const renewed = cookieEndingIn(c.jar, "trust_device");
    assert.ok(renewed, "the trust-device cookie should still be there");
    assert.notEqual(renewed.value, trust.value, "the trust-device cookie should be renewed on use");

    // Trust belongs to that browser only.
    await signInToChallenge(newClient(), email, "sign-in from another browser");
  });

  test("3. a backup code signs in once; the same code fails the second time", TEST, async () => {
    const { email, userId, backupCodes } = await userWithTwoFactor("backup");

    const b = newClient();
    await signInToChallenge(b, email, "sign-in for the backup code");
    const data = ok(await b.client.twoFactor.verifyBackupCode({ code: backupCodes[0] }),
      "verifyBackupCode({code})");
    await assertSignedIn(b, data, userId, "after verifyBackupCode");
    assert.equal(cookieEndingIn(b.jar, "trust_device"), undefined, "no trust-device cookie without trustDevice");

    const c = newClient();
    await signInToChallenge(c, email, "sign-in for the used backup code");
    const reused = await c.client.twoFactor.verifyBackupCode({ code: backupCodes[0] });
    assert.equal(reused.data, null, `a used backup code should fail, got ${JSON.stringify(reused.data)}`);
    assert.equal(reused.error?.status, 401, `a used backup code: status (${describeError(reused.error)})`);
    // BetterAuth answers INVALID_BACKUP_CODE; Warden INVALID_CODE (see
    // knownDifferences below).
    assert.ok(["INVALID_BACKUP_CODE", "INVALID_CODE"].includes(reused.error.code),
      `a used backup code: code (${describeError(reused.error)})`);
    await assertNoSession(c.client, "after the used backup code");

    // Another code from the set still works on the same challenge.
    const next = ok(await c.client.twoFactor.verifyBackupCode({ code: backupCodes[1] }),
      "verifyBackupCode with another code");
    await assertSignedIn(c, next, userId, "after the second backup code");
  });

  test("4. generateBackupCodes replaces the set", TEST, async () => {
    const { email, userId, backupCodes } = await userWithTwoFactor("regen");
    const a = newClient();
    await signInToChallenge(a, email, "sign-in");
    ok(await a.client.twoFactor.verifyBackupCode({ code: backupCodes[0] }), "verifyBackupCode");

    fails(await a.client.twoFactor.generateBackupCodes({ password: "not the password" }), 400, "INVALID_PASSWORD",
      "generateBackupCodes with a wrong password");
    const data = ok(await a.client.twoFactor.generateBackupCodes({ password: PASSWORD }),
      "generateBackupCodes({password})");
    assert.equal(data.status, true, `generateBackupCodes: data.status, got ${JSON.stringify(data)}`);
    assert.ok(Array.isArray(data.backupCodes), `generateBackupCodes: backupCodes, got ${JSON.stringify(data)}`);
    assert.equal(data.backupCodes.length, 10, "generateBackupCodes: 10 codes");
    assert.equal(new Set(data.backupCodes).size, 10, "generateBackupCodes: codes should be distinct");
    for (const code of data.backupCodes) assert.ok(!backupCodes.includes(code), `new code ${code} is an old one`);

    const b = newClient();
    await signInToChallenge(b, email, "sign-in after generateBackupCodes");
    const old = await b.client.twoFactor.verifyBackupCode({ code: backupCodes[5] });
    assert.equal(old.error?.status, 401, `an unused code of the old set should fail (${describeError(old.error)})`);
    const fresh = ok(await b.client.twoFactor.verifyBackupCode({ code: data.backupCodes[0] }),
      "verifyBackupCode with a new code");
    await assertSignedIn(b, fresh, userId, "after a new backup code");
  });

  test("5. disable turns 2FA off: the next sign-in needs no second step", TEST, async () => {
    const { email, userId, app } = await userWithTwoFactor("disable");
    const c = newClient();
    await signInToChallenge(c, email, "sign-in");
    ok(await c.client.twoFactor.verifyTotp({ code: await app.freshCode(), trustDevice: true }),
      "verifyTotp({trustDevice: true})");
    assert.ok(cookieEndingIn(c.jar, "trust_device"), "trust-device cookie");

    fails(await c.client.twoFactor.disable({ password: "not the password" }), 400, "INVALID_PASSWORD",
      "twoFactor.disable with a wrong password");
    const data = ok(await c.client.twoFactor.disable({ password: PASSWORD }), "twoFactor.disable({password})");
    assert.equal(data.status, true, `disable: data.status, got ${JSON.stringify(data)}`);
    assert.equal(cookieEndingIn(c.jar, "trust_device"), undefined, "disable should clear the trust-device cookie");
    const s = await currentSession(c.client, "after disable");
    assert.equal(s.user.twoFactorEnabled, false, "user.twoFactorEnabled after disable");
    fails(await c.client.twoFactor.getTotpUri({ password: PASSWORD }), 400, "TOTP_NOT_ENABLED",
      "getTotpUri after disable");

    ok(await c.client.signOut(), "signOut()");
    const other = newClient();
    const again = ok(await other.client.signIn.email({ email, password: PASSWORD }), "signIn.email after disable");
    assert.equal(again.twoFactorRedirect, undefined, `no second step after disable, got ${JSON.stringify(again)}`);
    assert.equal(typeof again.token, "string", "signIn after disable: data.token");
    assert.equal(other.redirects.length, 0, "onTwoFactorRedirect should not be called after disable");
    const s2 = await currentSession(other.client, "sign-in after disable");
    assert.equal(s2.user.id, userId);
    assert.equal(s2.user.twoFactorEnabled, false);
  });

  test("6. verifyTotp and verifyBackupCode without a challenge or session: 401 INVALID_TWO_FACTOR_COOKIE", TEST, async () => {
    const { client } = newClient();
    fails(await client.twoFactor.verifyTotp({ code: "123456" }), 401, "INVALID_TWO_FACTOR_COOKIE",
      "verifyTotp with neither a challenge nor a session");
    fails(await client.twoFactor.verifyBackupCode({ code: "abcde-12345" }), 401, "INVALID_TWO_FACTOR_COOKIE",
      "verifyBackupCode with neither a challenge nor a session");
  });

  test("7. wrong codes end the challenge; more lock 2FA for the account (429 ACCOUNT_TEMPORARILY_LOCKED)", TEST, async () => {
    const { email, app, backupCodes } = await userWithTwoFactor("lockout");
    const c = newClient();
    await signInToChallenge(c, email, "first challenge");

    // The challenge takes up to 5 wrong codes, then answers
    // TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE (Warden: on the 5th, 429;
    // BetterAuth: on the 6th, 400; see knownDifferences below).
    let ended = null;
    let wrong = 0;
    for (let i = 0; i < 6 && !ended; i++) {
      const r = await c.client.twoFactor.verifyTotp({ code: app.wrongCode() });
      assert.ok(r.error, "a wrong code should fail");
      if (r.error.code === "INVALID_CODE") {
        assert.equal(r.error.status, 401, describeError(r.error));
        wrong++;
      } else {
        ended = r.error;
      }
    }
    assert.ok(ended, "6 wrong codes on one challenge should end it");
    assert.equal(ended.code, "TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE", describeError(ended));
    assert.ok([400, 429].includes(ended.status), describeError(ended));
    assert.ok(wrong >= 4, `at least 4 wrong codes should be answered INVALID_CODE, got ${wrong}`);
    // The challenge is gone: even a right code no longer completes it.
    fails(await c.client.twoFactor.verifyTotp({ code: app.peek() }), 401, "INVALID_TWO_FACTOR_COOKIE",
      "a right code on an ended challenge");
    await assertNoSession(c.client, "after the challenge ended");

    // Ten consecutive wrong codes (across challenges) lock two-factor for the account.
    let locked = null;
    for (let round = 0; round < 3 && !locked; round++) {
      const d = newClient();
      await signInToChallenge(d, email, `challenge ${round + 2}`);
      for (let i = 0; i < 6; i++) {
        const r = await d.client.twoFactor.verifyTotp({ code: app.wrongCode() });
        assert.ok(r.error, "a wrong code should fail");
        if (r.error.code === "ACCOUNT_TEMPORARILY_LOCKED") {
          locked = r.error;
          break;
        }
        if (r.error.code !== "INVALID_CODE") break; // this challenge ended
      }
    }
    assert.ok(locked, "repeated wrong codes should lock two-factor for the account");
    assert.equal(locked.status, 429, describeError(locked));

    // While locked, neither a right TOTP code nor a backup code gets in.
    const e = newClient();
    await signInToChallenge(e, email, "challenge while locked");
    fails(await e.client.twoFactor.verifyTotp({ code: await app.freshCode() }), 429, "ACCOUNT_TEMPORARILY_LOCKED",
      "a right code while locked");
    fails(await e.client.twoFactor.verifyBackupCode({ code: backupCodes[0] }), 429, "ACCOUNT_TEMPORARILY_LOCKED",
      "a backup code while locked");
    await assertNoSession(e.client, "while locked");
  });

  test("8. a TOTP code is accepted only once (Warden; BetterAuth accepts a replay)", {
    ...TEST,
    skip: AGAINST_REFERENCE && "BetterAuth 1.7.25 accepts a TOTP code again within its window",
  }, async () => {
    const { email, userId, app } = await userWithTwoFactor("replay");
    const a = newClient();
    await signInToChallenge(a, email, "first sign-in");
    const code = await app.freshCode();
    const data = ok(await a.client.twoFactor.verifyTotp({ code }), "verifyTotp");
    await assertSignedIn(a, data, userId, "after verifyTotp");

    const b = newClient();
    await signInToChallenge(b, email, "second sign-in");
    fails(await b.client.twoFactor.verifyTotp({ code }), 401, "INVALID_CODE", "the same code again");
    // So is the code of the step before (used to set up, or still unused):
    // Warden takes only steps later than the last one used.
    fails(await b.client.twoFactor.verifyTotp({ code: app.codeAt(app.lastStep - 1) }), 401, "INVALID_CODE",
      "the code of an earlier step");
    await assertNoSession(b.client, "after the replays");
  });
}

function knownDifferences() {
  test("D1. a wrong or used backup code: 401 INVALID_BACKUP_CODE",
    TEST, async () => {
      const { email, backupCodes } = await userWithTwoFactor("d1");
      const a = newClient();
      await signInToChallenge(a, email, "sign-in");
      ok(await a.client.twoFactor.verifyBackupCode({ code: backupCodes[0] }), "verifyBackupCode");
      const b = newClient();
      await signInToChallenge(b, email, "second sign-in");
      fails(await b.client.twoFactor.verifyBackupCode({ code: backupCodes[0] }), 401, "INVALID_BACKUP_CODE",
        "a used backup code");
      fails(await b.client.twoFactor.verifyBackupCode({ code: "AAAAA-BBBBB" }), 401, "INVALID_BACKUP_CODE",
        "a wrong backup code");
    });

  test("D2. five wrong codes answer INVALID_CODE; the 6th ends the challenge with 400 and clears its cookie",
    knownDifference("the 5th wrong code ends the challenge (400 TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE): five wrong codes in all, not five plus one"),
    async () => {
      const { email, app } = await userWithTwoFactor("d2");
      const c = newClient();
      await signInToChallenge(c, email, "sign-in");
      for (let i = 1; i <= 5; i++) {
        fails(await c.client.twoFactor.verifyTotp({ code: app.wrongCode() }), 401, "INVALID_CODE", `wrong code #${i}`);
      }
      fails(await c.client.twoFactor.verifyTotp({ code: app.wrongCode() }), 400, "TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE",
        "wrong code #6");
      assert.equal(cookieEndingIn(c.jar, "two_factor"), undefined, "the ended challenge's cookie should be cleared");
    });

  test("D3. enable while 2FA is on: 400 TOTP_ALREADY_ENABLED, and the authenticator keeps working",
    TEST,
    async () => {
      const { email, userId, app, backupCodes } = await userWithTwoFactor("d3");
      const a = newClient();
      await signInToChallenge(a, email, "sign-in");
      ok(await a.client.twoFactor.verifyBackupCode({ code: backupCodes[0] }), "verifyBackupCode");
      fails(await a.client.twoFactor.enable({ password: PASSWORD }), 400, "TOTP_ALREADY_ENABLED",
        "twoFactor.enable while 2FA is on");
      const uri = ok(await a.client.twoFactor.getTotpUri({ password: PASSWORD }), "getTotpUri").totpURI;
      assert.equal(new Authenticator(uri).secret, app.secret, "the TOTP secret should be unchanged");
      const b = newClient();
      await signInToChallenge(b, email, "sign-in with the old authenticator");
      const data = ok(await b.client.twoFactor.verifyTotp({ code: await app.freshCode() }),
        "verifyTotp with the old authenticator");
      await assertSignedIn(b, data, userId, "after verifyTotp");
    });

  test("D4. verifyBackupCode with a session (no sign-in challenge) checks the code and uses it up",
    knownDifference("answers 401 INVALID_TWO_FACTOR_COOKIE without a challenge cookie"), async () => {
      const { email, userId, app, backupCodes } = await userWithTwoFactor("d4");
      const a = newClient();
      await signInToChallenge(a, email, "sign-in");
      ok(await a.client.twoFactor.verifyTotp({ code: await app.freshCode() }), "verifyTotp");
      const data = ok(await a.client.twoFactor.verifyBackupCode({ code: backupCodes[0] }),
        "verifyBackupCode with the session");
      assert.equal(data.user?.id, userId, `verifyBackupCode: data.user.id, got ${JSON.stringify(data)}`);
      const b = newClient();
      await signInToChallenge(b, email, "second sign-in");
      const used = await b.client.twoFactor.verifyBackupCode({ code: backupCodes[0] });
      assert.equal(used.error?.status, 401, `the code should be used up (${describeError(used.error)})`);
    });

  test("D5. generateBackupCodes before 2FA is on: 400 TWO_FACTOR_NOT_ENABLED",
    TEST, async () => {
      const { client } = newClient();
      await signUp(client, uniqueEmail("d5"));
      fails(await client.twoFactor.generateBackupCodes({ password: PASSWORD }), 400, "TWO_FACTOR_NOT_ENABLED",
        "generateBackupCodes with no 2FA set up");
      ok(await client.twoFactor.enable({ password: PASSWORD }), "twoFactor.enable");
      fails(await client.twoFactor.generateBackupCodes({ password: PASSWORD }), 400, "TWO_FACTOR_NOT_ENABLED",
        "generateBackupCodes before the first verifyTotp");
    });
}
