// Two-factor by email: BetterAuth's twoFactorClient() `sendOtp` / `verifyOtp`
// (better-auth 1.7.25, the `otp` method of twoFactor, plugins/two-factor/otp/)
// against Warden's /api/auth/two-factor/send-otp and /verify-otp, on the
// challenge of a password sign-in.
//
// Server switch: WARDEN_TWO_FACTOR__EMAIL_OTP=true (BetterAuth: otpOptions.sendOTP).
// The code comes from the development outbox's `code` field.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { twoFactorClient } from "better-auth/client/plugins";

import { makeClient } from "./client.mjs";
import {
  TEST,
  assertNoSession,
  assertSixDigits,
  cookieEndingIn,
  currentSession,
  describeError,
  fails,
  knownDifference,
  ok,
  otherCode,
  turnOnTotp,
  uniqueEmail,
} from "./expect.mjs";
import { nextMail, startWarden, wardenBinary } from "./harness.mjs";

const PASSWORD = "correct horse battery staple";
const ENV = { WARDEN_TWO_FACTOR__EMAIL_OTP: "true" };

let warden;

let binaryProblem = null;
try {
  wardenBinary();
} catch (err) {
  binaryProblem = err;
}

function newClient() {
  const redirects = [];
  const c = makeClient(warden.baseURL, {
    plugins: [twoFactorClient({ onTwoFactorRedirect: (ctx) => redirects.push(ctx) })],
  });
  return { ...c, redirects, server: warden };
}

const hasCode = (m) => m.code !== undefined;

/** A user with TOTP on (and so two-factor on); signed out. */
async function userWithTwoFactor(tag) {
  const c = newClient();
  const email = uniqueEmail(tag);
  const up = ok(await c.client.signUp.email({ email, password: PASSWORD, name: "Email Second Factor" }), "signUp.email");
  const { app } = await turnOnTotp(c.client, PASSWORD, warden);
  ok(await c.client.signOut(), "signOut");
  return { email, userId: up.user.id, app };
}

/** signIn.email up to the challenge; asserts that the `otp` method is offered. */
async function challenge(email, what) {
  const c = newClient();
  const data = ok(await c.client.signIn.email({ email, password: PASSWORD }), `${what}: signIn.email`, warden);
  assert.equal(data.twoFactorRedirect, true, `${what}: twoFactorRedirect, got ${JSON.stringify(data)}`);
  assert.deepEqual(data.twoFactorMethods, ["totp", "otp"], `${what}: twoFactorMethods (TOTP set up, email codes on)`);
  assert.deepEqual(c.redirects.at(-1), { twoFactorMethods: ["totp", "otp"] }, `${what}: onTwoFactorRedirect argument`);
  assert.ok(cookieEndingIn(c.jar, "two_factor"), `${what}: a *.two_factor cookie`);
  await assertNoSession(c.client, `${what}: before the second step`);
  return c;
}

/** sendOtp on the challenge; returns the mailed code. */
async function sendOtp(c, email, what) {
  const data = ok(await c.client.twoFactor.sendOtp(), `${what}: twoFactor.sendOtp()`, warden);
  assert.deepEqual(data, { status: true }, `${what}: sendOtp answer`);
  const mail = await nextMail(warden, email, { match: hasCode });
  assertSixDigits(mail.code, `${what}: the two-factor mail`);
  return mail.code;
}

if (binaryProblem) {
  test("a Warden binary is available", () => {
    throw binaryProblem;
  });
} else {
  before(async () => {
    warden = await startWarden({ env: ENV });
  }, { timeout: 60_000 });
  after(async () => {
    await warden?.stop();
  });
  describe("BetterAuth twoFactor client, email codes, against Warden", suite);
}

function suite() {
  test("1. the challenge offers otp; sendOtp mails a code; verifyOtp with it signs in ({token, user})", TEST, async () => {
    const { email, userId } = await userWithTwoFactor("2fo-ok");
    const c = await challenge(email, "sign-in");
    const code = await sendOtp(c, email, "sign-in");
    fails(await c.client.twoFactor.verifyOtp({ code: otherCode(code) }), 401, "INVALID_CODE", "verifyOtp with a wrong code");
    await assertNoSession(c.client, "after a wrong code");
    let authToken;
    const data = ok(await c.client.twoFactor.verifyOtp({ code }, {
      onSuccess(ctx) {
        authToken = ctx.response.headers.get("set-auth-token");
      },
    }), "twoFactor.verifyOtp({code})", warden);
    assert.equal(typeof data.token, "string", `verifyOtp: data.token, got ${JSON.stringify(data)}`);
    assert.equal(data.user?.id, userId, "verifyOtp: data.user.id");
    assert.ok(authToken, "verifyOtp sends set-auth-token (bearer)");
    assert.ok(c.jar.sessionCookie(), "verifyOtp sets the session cookie");
    assert.equal(cookieEndingIn(c.jar, "two_factor"), undefined, "the challenge cookie is cleared");
    const s = await currentSession(c.client, "after verifyOtp");
    assert.equal(s.user.id, userId);
  });

  test("2. verifyOtp({trustDevice: true}) sets a trust-device cookie that skips the next challenge", TEST, async () => {
    const { email, userId } = await userWithTwoFactor("2fo-trust");
    const c = await challenge(email, "sign-in");
    const code = await sendOtp(c, email, "sign-in");
    ok(await c.client.twoFactor.verifyOtp({ code, trustDevice: true }), "verifyOtp({trustDevice: true})", warden);
    assert.ok(cookieEndingIn(c.jar, "trust_device"), `a *.trust_device cookie, jar has [${c.jar.names().join(", ")}]`);
    ok(await c.client.signOut(), "signOut");
    const again = ok(await c.client.signIn.email({ email, password: PASSWORD }), "sign-in on the trusted device", warden);
    assert.equal(again.twoFactorRedirect, undefined, `the trusted device skips the challenge, got ${JSON.stringify(again)}`);
    assert.equal(again.user?.id, userId);
  });

  test("3. a code works once: after it signed in, it does not complete another challenge", TEST, async () => {
    const { email } = await userWithTwoFactor("2fo-replay");
    const a = await challenge(email, "first sign-in");
    const code = await sendOtp(a, email, "first sign-in");
    ok(await a.client.twoFactor.verifyOtp({ code }), "verifyOtp", warden);
    const b = await challenge(email, "second sign-in");
    const replay = await b.client.twoFactor.verifyOtp({ code });
    assert.ok(replay.error, "the used code should fail on a new challenge");
    assert.ok([400, 401].includes(replay.error.status), `the used code: ${describeError(replay.error)}`);
    await assertNoSession(b.client, "after the replay");
  });

  test("4. wrong codes beyond the limit end the code: then even the right one fails; a new code works (if the challenge lives)", TEST, async () => {
    const { email, userId } = await userWithTwoFactor("2fo-limit");
    const c = await challenge(email, "sign-in");
    const code = await sendOtp(c, email, "sign-in");
    // BetterAuth: 5 wrong codes answer INVALID_CODE, the 6th attempt 400
    // TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE (see D1). Warden counts them as it
    // counts TOTP codes (the 5th wrong code ends the challenge).
    let ended = null;
    let wrong = 0;
    for (let i = 0; i < 7 && !ended; i++) {
      const r = await c.client.twoFactor.verifyOtp({ code: otherCode(code) });
      assert.ok(r.error, "a wrong code should fail");
      if (r.error.code === "INVALID_CODE") {
        assert.equal(r.error.status, 401, describeError(r.error));
        wrong++;
      } else {
        ended = r.error;
      }
    }
    assert.ok(ended, "repeated wrong codes should end the code");
    assert.equal(ended.code, "TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE", describeError(ended));
    assert.ok([400, 429].includes(ended.status), describeError(ended));
    assert.ok(wrong >= 3, `at least 3 wrong codes are answered INVALID_CODE, got ${wrong}`);
    const late = await c.client.twoFactor.verifyOtp({ code });
    assert.ok(late.error, `the right code after the limit should fail, got ${JSON.stringify(late.data)}`);
    await assertNoSession(c.client, "after the limit");
    // A new code: on the same challenge if it still lives (BetterAuth), else on a new sign-in.
    const resent = await c.client.twoFactor.sendOtp();
    const d = resent.error ? await challenge(email, "sign-in after the limit") : c;
    const fresh = await (resent.error ? sendOtp(d, email, "after the limit")
      : nextMail(warden, email, { match: hasCode }).then((m) => m.code));
    const done = ok(await d.client.twoFactor.verifyOtp({ code: fresh }), "verifyOtp with a new code", warden);
    assert.equal(done.user?.id, userId);
  });

  test("5. sendOtp and verifyOtp without a challenge or session: 401 INVALID_TWO_FACTOR_COOKIE", TEST, async () => {
    const c = newClient();
    fails(await c.client.twoFactor.sendOtp(), 401, "INVALID_TWO_FACTOR_COOKIE", "sendOtp with neither");
    fails(await c.client.twoFactor.verifyOtp({ code: "123456" }), 401, "INVALID_TWO_FACTOR_COOKIE", "verifyOtp with neither");
  });

  test("6. TOTP still completes a challenge when email codes are on", TEST, async () => {
    const { email, userId, app } = await userWithTwoFactor("2fo-totp");
    const c = await challenge(email, "sign-in");
    const data = ok(await c.client.twoFactor.verifyTotp({ code: await app.freshCode() }), "verifyTotp", warden);
    assert.equal(data.user?.id, userId);
  });

  test("D1. BetterAuth's exact count: 5 wrong codes answer 401 INVALID_CODE, the 6th 400 TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE, then OTP_HAS_EXPIRED",
    knownDifference("Warden counts email codes like TOTP codes: the 5th wrong code ends the challenge (400 TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE)"), async () => {
      const { email } = await userWithTwoFactor("2fo-d1");
      const c = await challenge(email, "sign-in");
      const code = await sendOtp(c, email, "sign-in");
      for (let i = 1; i <= 5; i++) {
        fails(await c.client.twoFactor.verifyOtp({ code: otherCode(code) }), 401, "INVALID_CODE", `wrong code #${i}`);
      }
      fails(await c.client.twoFactor.verifyOtp({ code: otherCode(code) }), 400, "TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE", "attempt #6");
      fails(await c.client.twoFactor.verifyOtp({ code }), 400, "OTP_HAS_EXPIRED", "the right code after that");
    });

  test("7. verifyOtp before any sendOtp: 400 OTP_HAS_EXPIRED", TEST, async () => {
    const { email } = await userWithTwoFactor("2fo-d2");
    const c = await challenge(email, "sign-in");
    fails(await c.client.twoFactor.verifyOtp({ code: "123456" }), 400, "OTP_HAS_EXPIRED", "verifyOtp with no code sent");
  });

  test("8. enable({method: \"otp\"}) turns two-factor on by email alone: the challenge offers only otp",
    TEST, async () => {
      const c = newClient();
      const email = uniqueEmail("2fo-d3");
      ok(await c.client.signUp.email({ email, password: PASSWORD, name: "Email Only" }), "signUp.email");
      const data = ok(await c.client.twoFactor.enable({ password: PASSWORD, method: "otp" }), "enable({method: otp})", warden);
      assert.deepEqual(data, { method: "otp" });
      const s = await currentSession(c.client, "after enable");
      assert.equal(s.user.twoFactorEnabled, true);
      const b = newClient();
      const signIn = ok(await b.client.signIn.email({ email, password: PASSWORD }), "signIn.email", warden);
      assert.deepEqual(signIn.twoFactorMethods, ["otp"], `twoFactorMethods, got ${JSON.stringify(signIn)}`);
      const code = await sendOtp(b, email, "email-only user");
      ok(await b.client.twoFactor.verifyOtp({ code }), "verifyOtp", warden);
    });
}
