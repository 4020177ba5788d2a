// BetterAuth's emailOTP client plugin (better-auth 1.7.25, `emailOTPClient`
// from "better-auth/client/plugins") against Warden's /api/auth/email-otp/*,
// /api/auth/sign-in/email-otp and /api/auth/forget-password/email-otp.
//
// Every client method the plugin has in 1.7.25:
//   emailOtp.sendVerificationOtp({email, type})   type sign-in | email-verification | forget-password
//   emailOtp.checkVerificationOtp({email, type, otp})
//   emailOtp.verifyEmail({email, otp})
//   signIn.emailOtp({email, otp, name?})
//   emailOtp.requestPasswordReset({email}), forgetPassword.emailOtp({email}) (deprecated alias)
//   emailOtp.resetPassword({email, otp, password})
//   emailOtp.requestEmailChange({newEmail}), emailOtp.changeEmail({newEmail, otp})
//
// Codes come from the development outbox's `code` field (`nextMail`).
// Server switches: WARDEN_EMAIL_OTP__ENABLED=true; a second server adds
// WARDEN_EMAIL_OTP__EXPIRES_IN=1s, a third WARDEN_EMAIL_OTP__CHANGE_EMAIL=true.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { emailOTPClient, twoFactorClient } from "better-auth/client/plugins";

import { makeClient } from "./client.mjs";
import {
  AGAINST_REFERENCE,
  TEST,
  assertNoSession,
  assertSixDigits,
  cookieEndingIn,
  currentSession,
  fails,
  ok,
  otherCode,
  sleep,
  turnOnTotp,
  uniqueEmail,
  verifyEmailByLink,
} from "./expect.mjs";
import { nextMail, startWarden, wardenBinary } from "./harness.mjs";

const PASSWORD = "correct horse battery staple";
const NEW_PASSWORD = "a different horse, stapled";
const ENV = { WARDEN_EMAIL_OTP__ENABLED: "true" };


let warden;

let binaryProblem = null;
try {
  wardenBinary();
} catch (err) {
  binaryProblem = err;
}

function newClient(server = warden) {
  const redirects = [];
  const c = makeClient(server.baseURL, {
    plugins: [emailOTPClient(), twoFactorClient({ onTwoFactorRedirect: (ctx) => redirects.push(ctx) })],
  });
  return { ...c, redirects, server };
}

const hasCode = (m) => m.code !== undefined;

/** sendVerificationOtp, asserting {success: true}; returns the mailed code. */
async function sendCode(c, email, type) {
  const data = ok(await c.client.emailOtp.sendVerificationOtp({ email, type }), `sendVerificationOtp(${type})`, c.server);
  assert.deepEqual(data, { success: true }, `sendVerificationOtp(${type}): the answer`);
  const mail = await nextMail(c.server, email, { match: hasCode });
  assertSixDigits(mail.code, `the ${type} mail`);
  return mail.code;
}

/** A user with a password and a verified address; the client stays signed in. */
async function verifiedUser(tag) {
  const c = newClient();
  const email = uniqueEmail(tag);
  const up = ok(await c.client.signUp.email({ email, password: PASSWORD, name: "Otp User" }), "signUp.email");
  await verifyEmailByLink(c, email);
  return { c, email, userId: up.user.id };
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
  describe("BetterAuth emailOTP client against Warden", suite);
  describe("an expired code", expiry);
  describe("sign-up by code turned off", noSignUp);
  describe("email change by code", emailChange);
}

function suite() {
  test("1. sign-in code for a new email: signIn.emailOtp creates the user, verified, and signs in", TEST, async () => {
    const email = uniqueEmail("otp-new");
    const c = newClient();
    const code = await sendCode(c, email, "sign-in");
    const data = ok(await c.client.signIn.emailOtp({ email, otp: code, name: "New By Code" }), "signIn.emailOtp", warden);
    assert.equal(typeof data.token, "string", `signIn.emailOtp: data.token, got ${JSON.stringify(data)}`);
    assert.equal(data.user?.email, email);
    assert.equal(data.user.emailVerified, true, "a user made by a code has a verified email");
    assert.equal(data.user.name, "New By Code");
    assert.ok(c.jar.sessionCookie(), "signIn.emailOtp sets the session cookie");
    const s = await currentSession(c.client, "after signIn.emailOtp");
    assert.equal(s.user.id, data.user.id);
  });

  test("2. sign-in code for a known, verified user: signed in as that user; the password still works", TEST, async () => {
    const { email, userId } = await verifiedUser("otp-known");
    const b = newClient();
    const code = await sendCode(b, email, "sign-in");
    const data = ok(await b.client.signIn.emailOtp({ email, otp: code }), "signIn.emailOtp", warden);
    assert.equal(data.user?.id, userId, "the known user");
    await currentSession(b.client, "after signIn.emailOtp");
    ok(await newClient().client.signIn.email({ email, password: PASSWORD }), "the password still signs in", warden);
  });

  test("3. a code works once: the same code again is INVALID_OTP", TEST, async () => {
    const email = uniqueEmail("otp-replay");
    const c = newClient();
    const code = await sendCode(c, email, "sign-in");
    ok(await c.client.signIn.emailOtp({ email, otp: code }), "signIn.emailOtp", warden);
    const b = newClient();
    fails(await b.client.signIn.emailOtp({ email, otp: code }), 400, "INVALID_OTP", "the same code again");
    await assertNoSession(b.client, "after the replay");
  });

  test("4. three wrong codes use the code up: the right one then fails (403 TOO_MANY_ATTEMPTS), a new one works", TEST, async () => {
    const email = uniqueEmail("otp-attempts");
    const c = newClient();
    const code = await sendCode(c, email, "sign-in");
    for (let i = 1; i <= 3; i++) {
      fails(await c.client.signIn.emailOtp({ email, otp: otherCode(code) }), 400, "INVALID_OTP", `wrong code #${i}`);
    }
    fails(await c.client.signIn.emailOtp({ email, otp: code }), 403, "TOO_MANY_ATTEMPTS", "the right code after 3 wrong ones");
    const again = await c.client.signIn.emailOtp({ email, otp: code });
    assert.ok(again.error, "the used-up code should keep failing");
    assert.ok([400, 403].includes(again.error.status), `the used-up code again: ${again.error.status} ${again.error.code}`);
    await assertNoSession(c.client, "after the attempts");
    const fresh = await sendCode(c, email, "sign-in");
    ok(await c.client.signIn.emailOtp({ email, otp: fresh }), "a new code after the limit", warden);
  });

  test("5. a new code replaces the old one", TEST, async () => {
    const email = uniqueEmail("otp-resend");
    const c = newClient();
    const first = await sendCode(c, email, "sign-in");
    const second = await sendCode(c, email, "sign-in");
    if (first !== second) {
      fails(await c.client.signIn.emailOtp({ email, otp: first }), 400, "INVALID_OTP", "the replaced code");
    }
    ok(await c.client.signIn.emailOtp({ email, otp: second }), "the latest code", warden);
  });

  test("6. email-verification: checkVerificationOtp checks without using the code up; verifyEmail marks the address verified", TEST, async () => {
    const c = newClient();
    const email = uniqueEmail("otp-verify");
    const up = ok(await c.client.signUp.email({ email, password: PASSWORD, name: "Verify Me" }), "signUp.email");
    assert.equal(up.user.emailVerified, false);
    const code = await sendCode(c, email, "email-verification");
    fails(await c.client.emailOtp.checkVerificationOtp({ email, type: "email-verification", otp: otherCode(code) }), 400,
      "INVALID_OTP", "checkVerificationOtp with a wrong code");
    const checked = ok(await c.client.emailOtp.checkVerificationOtp({ email, type: "email-verification", otp: code }),
      "checkVerificationOtp", warden);
    assert.deepEqual(checked, { success: true }, "checkVerificationOtp: the answer");
    const data = ok(await c.client.emailOtp.verifyEmail({ email, otp: code }), "emailOtp.verifyEmail (the checked code)", warden);
    assert.equal(data.status, true, `verifyEmail: data.status, got ${JSON.stringify(data)}`);
    assert.equal(data.user?.id, up.user.id, "verifyEmail: data.user.id");
    assert.equal(data.user.emailVerified, true, "verifyEmail: data.user.emailVerified");
    const s = await currentSession(c.client, "after verifyEmail");
    assert.equal(s.user.emailVerified, true, "the session shows the address verified");
    fails(await c.client.emailOtp.verifyEmail({ email, otp: code }), 400, "INVALID_OTP", "verifyEmail with the used code");
  });

  test("7. a code is for its own type only: a sign-in code does not verify the address", TEST, async () => {
    const c = newClient();
    const email = uniqueEmail("otp-type");
    ok(await c.client.signUp.email({ email, password: PASSWORD, name: "Typed" }), "signUp.email");
    const code = await sendCode(c, email, "sign-in");
    fails(await c.client.emailOtp.verifyEmail({ email, otp: code }), 400, "INVALID_OTP", "verifyEmail with a sign-in code");
    fails(await c.client.emailOtp.checkVerificationOtp({ email, type: "forget-password", otp: code }), 400, "INVALID_OTP",
      "checkVerificationOtp(forget-password) with a sign-in code");
  });

  test("8. password reset by code (sendVerificationOtp forget-password, then resetPassword): the old password fails, the new one works", TEST, async () => {
    const { email } = await verifiedUser("otp-reset");
    const c = newClient();
    const code = await sendCode(c, email, "forget-password");
    const checked = ok(await c.client.emailOtp.checkVerificationOtp({ email, type: "forget-password", otp: code }),
      "checkVerificationOtp(forget-password)", warden);
    assert.deepEqual(checked, { success: true });
    fails(await c.client.emailOtp.resetPassword({ email, otp: otherCode(code), password: NEW_PASSWORD }), 400, "INVALID_OTP",
      "resetPassword with a wrong code");
    const data = ok(await c.client.emailOtp.resetPassword({ email, otp: code, password: NEW_PASSWORD }), "emailOtp.resetPassword", warden);
    assert.deepEqual(data, { success: true }, "resetPassword: the answer");
    fails(await newClient().client.signIn.email({ email, password: PASSWORD }), 401, "INVALID_EMAIL_OR_PASSWORD", "the old password");
    ok(await newClient().client.signIn.email({ email, password: NEW_PASSWORD }), "the new password", warden);
    fails(await c.client.emailOtp.resetPassword({ email, otp: code, password: PASSWORD }), 400, "INVALID_OTP",
      "resetPassword with the used code");
  });

  test("9. requestPasswordReset and forgetPassword.emailOtp mail a reset code too; a too-short password is refused", TEST, async () => {
    const { email } = await verifiedUser("otp-request");
    const c = newClient();
    const data = ok(await c.client.emailOtp.requestPasswordReset({ email }), "emailOtp.requestPasswordReset", warden);
    assert.deepEqual(data, { success: true });
    const first = (await nextMail(warden, email, { match: hasCode })).code;
    assertSixDigits(first, "the requestPasswordReset mail");
    const legacy = ok(await c.client.forgetPassword.emailOtp({ email }), "forgetPassword.emailOtp", warden);
    assert.deepEqual(legacy, { success: true });
    const code = (await nextMail(warden, email, { match: hasCode })).code;
    assertSixDigits(code, "the forgetPassword.emailOtp mail");
    fails(await c.client.emailOtp.resetPassword({ email, otp: code, password: "short" }), 400, "PASSWORD_TOO_SHORT",
      "resetPassword with a too-short password");
    ok(await c.client.emailOtp.resetPassword({ email, otp: code, password: NEW_PASSWORD }), "resetPassword with the latest code", warden);
    ok(await newClient().client.signIn.email({ email, password: NEW_PASSWORD }), "the new password", warden);
  });

  test("10. unknown email: the same answers as a known one; only a sign-in code is mailed (it may sign up)", TEST, async () => {
    const { email: known } = await verifiedUser("otp-known2");
    const unknown = uniqueEmail("otp-unknown");
    const c = newClient();
    for (const type of ["email-verification", "forget-password", "sign-in"]) {
      const a = await c.client.emailOtp.sendVerificationOtp({ email: known, type });
      const b = await c.client.emailOtp.sendVerificationOtp({ email: unknown, type });
      assert.deepEqual(b, a, `sendVerificationOtp(${type}): unknown and known email get the same answer`);
      assert.deepEqual(ok(a, `sendVerificationOtp(${type})`), { success: true });
    }
    const r1 = await c.client.emailOtp.requestPasswordReset({ email: known });
    const r2 = await c.client.emailOtp.requestPasswordReset({ email: unknown });
    assert.deepEqual(r2, r1, "requestPasswordReset: the same answer");
    const r3 = await c.client.forgetPassword.emailOtp({ email: unknown });
    assert.deepEqual(r3, r1, "forgetPassword.emailOtp: the same answer");

    // The unknown address got the sign-in code only.
    const mail = await nextMail(warden, unknown, { match: hasCode });
    await warden.mail.none(unknown);
    ok(await c.client.signIn.emailOtp({ email: unknown, otp: mail.code }), "the sign-in code signs the unknown email up", warden);
    // Codes that were never mailed do not exist: any guess is INVALID_OTP.
    const other = uniqueEmail("otp-unknown-reset");
    await c.client.emailOtp.requestPasswordReset({ email: other });
    fails(await c.client.emailOtp.resetPassword({ email: other, otp: "000000", password: NEW_PASSWORD }), 400, "INVALID_OTP",
      "resetPassword for an unknown email");
    fails(await c.client.emailOtp.checkVerificationOtp({ email: other, type: "forget-password", otp: "000000" }), 400,
      "INVALID_OTP", "checkVerificationOtp for an unknown email");
  });

  test("11. bad input: an unknown type or an invalid email is 400", TEST, async () => {
    const c = newClient();
    fails(await c.client.emailOtp.sendVerificationOtp({ email: uniqueEmail("otp-bad"), type: "launch-missiles" }), 400, undefined,
      "sendVerificationOtp with an unknown type");
    fails(await c.client.emailOtp.sendVerificationOtp({ email: "not-an-email", type: "sign-in" }), 400, undefined,
      "sendVerificationOtp with an invalid email");
    fails(await c.client.signIn.emailOtp({ email: "not-an-email", otp: "123456" }), 400, undefined,
      "signIn.emailOtp with an invalid email");
  });

  test("12. a user with two-factor on: Warden asks for the second factor after the code; BetterAuth signs straight in", TEST, async () => {
    const { c: owner, email, userId } = await verifiedUser("otp-2fa");
    const { app } = await turnOnTotp(owner.client, PASSWORD, warden);
    const b = newClient();
    const code = await sendCode(b, email, "sign-in");
    const data = ok(await b.client.signIn.emailOtp({ email, otp: code }), "signIn.emailOtp for a two-factor user", warden);
    if (AGAINST_REFERENCE) {
      // BetterAuth 1.7.25: twoFactor's hook covers only /sign-in/email,
      // /sign-in/username and /sign-in/phone-number.
      assert.equal(typeof data.token, "string", `BetterAuth: a session at once, got ${JSON.stringify(data)}`);
      assert.equal(data.user?.id, userId);
      await currentSession(b.client, "BetterAuth: after the code");
      return;
    }
    assert.equal(data.twoFactorRedirect, true, `Warden: data.twoFactorRedirect, got ${JSON.stringify(data)}`);
    assert.ok(Array.isArray(data.twoFactorMethods) && data.twoFactorMethods.includes("totp"),
      `Warden: data.twoFactorMethods, got ${JSON.stringify(data)}`);
    assert.equal(data.token, undefined, "Warden: no token before the second factor");
    assert.equal(b.redirects.length, 1, "onTwoFactorRedirect is called");
    assert.equal(b.jar.sessionCookie(), undefined, "Warden: no session cookie before the second factor");
    assert.ok(cookieEndingIn(b.jar, "two_factor"), "Warden: a *.two_factor challenge cookie");
    await assertNoSession(b.client, "Warden: before the second factor");
    const done = ok(await b.client.twoFactor.verifyTotp({ code: await app.freshCode() }), "verifyTotp after the code", warden);
    assert.equal(done.user?.id, userId);
    await currentSession(b.client, "after verifyTotp");
  });

  test("16. an unverified user's code sign-in removes the password and the sessions made before (BetterAuth's pre-registration defence)",
    TEST, async () => {
      const squatter = newClient();
      const email = uniqueEmail("otp-d1");
      ok(await squatter.client.signUp.email({ email, password: PASSWORD, name: "Squatter" }), "signUp.email");
      const owner = newClient();
      const code = await sendCode(owner, email, "sign-in");
      const data = ok(await owner.client.signIn.emailOtp({ email, otp: code }), "the owner's signIn.emailOtp", warden);
      assert.equal(data.user.emailVerified, true);
      await assertNoSession(squatter.client, "the session made before the proof is gone");
      fails(await newClient().client.signIn.email({ email, password: PASSWORD }), 401, "INVALID_EMAIL_OR_PASSWORD",
        "the password set before the proof no longer signs in");
    });

  test("17. a reset by code also verifies an unverified address", TEST, async () => {
    const c = newClient();
    const email = uniqueEmail("otp-d2");
    ok(await c.client.signUp.email({ email, password: PASSWORD, name: "Reset Verifies" }), "signUp.email");
    const code = await sendCode(c, email, "forget-password");
    ok(await c.client.emailOtp.resetPassword({ email, otp: code, password: NEW_PASSWORD }), "resetPassword", warden);
    const b = newClient();
    const data = ok(await b.client.signIn.email({ email, password: NEW_PASSWORD }), "sign in with the new password", warden);
    assert.equal(data.user.emailVerified, true, "the reset proved the address");
  });
}

function expiry() {
  let short;
  before(async () => {
    if (binaryProblem) return;
    short = await startWarden({ env: { ...ENV, WARDEN_EMAIL_OTP__EXPIRES_IN: "1s" } });
  }, { timeout: 60_000 });
  after(async () => {
    await short?.stop();
  });

  test("13. with WARDEN_EMAIL_OTP__EXPIRES_IN=1s, a code used 2 s later is OTP_EXPIRED", TEST, async () => {
    const email = uniqueEmail("otp-expired");
    const c = newClient(short);
    const code = await sendCode(c, email, "sign-in");
    await sleep(2_000);
    fails(await c.client.signIn.emailOtp({ email, otp: code }), 400, "OTP_EXPIRED", "an expired code");
    await assertNoSession(c.client, "after an expired code");
  });
}

function emailChange() {
  let server;
  let startProblem = null;
  before(async () => {
    if (binaryProblem) return;
    try {
      server = await startWarden({ env: { ...ENV, WARDEN_EMAIL_OTP__CHANGE_EMAIL: "true" } });
    } catch (err) {
      startProblem = err;
    }
  }, { timeout: 60_000 });
  after(async () => {
    await server?.stop();
  });

  test("14. requestEmailChange mails a code to the new address; changeEmail with it moves the account there, verified", TEST, async () => {
    if (startProblem) throw startProblem;
    const c = newClient(server);
    const email = uniqueEmail("otp-change");
    const newEmail = uniqueEmail("otp-changed");
    ok(await c.client.signUp.email({ email, password: PASSWORD, name: "Mover" }), "signUp.email", server);
    const data = ok(await c.client.emailOtp.requestEmailChange({ newEmail }), "emailOtp.requestEmailChange", server);
    assert.deepEqual(data, { success: true });
    const mail = await nextMail(server, newEmail, { match: hasCode });
    assertSixDigits(mail.code, "the email-change mail");
    fails(await c.client.emailOtp.changeEmail({ newEmail, otp: otherCode(mail.code) }), 400, "INVALID_OTP",
      "changeEmail with a wrong code");
    const changed = ok(await c.client.emailOtp.changeEmail({ newEmail, otp: mail.code }), "emailOtp.changeEmail", server);
    assert.deepEqual(changed, { success: true });
    const s = await currentSession(c.client, "after changeEmail");
    assert.equal(s.user.email, newEmail, "the session shows the new address");
    assert.equal(s.user.emailVerified, true, "the new address is verified");
    ok(await newClient(server).client.signIn.email({ email: newEmail, password: PASSWORD }), "sign in with the new address", server);
    fails(await newClient(server).client.signIn.email({ email, password: PASSWORD }), 401, "INVALID_EMAIL_OR_PASSWORD",
      "the old address no longer signs in");
  });

  test("15. requestEmailChange to an address in use answers the same and mails nothing; the same address is refused", TEST, async () => {
    if (startProblem) throw startProblem;
    const taken = newClient(server);
    const takenEmail = uniqueEmail("otp-taken");
    ok(await taken.client.signUp.email({ email: takenEmail, password: PASSWORD, name: "Taken" }), "signUp.email", server);
    const c = newClient(server);
    const email = uniqueEmail("otp-mover2");
    ok(await c.client.signUp.email({ email, password: PASSWORD, name: "Mover" }), "signUp.email", server);
    const a = await c.client.emailOtp.requestEmailChange({ newEmail: takenEmail });
    const b = await c.client.emailOtp.requestEmailChange({ newEmail: uniqueEmail("otp-free") });
    assert.deepEqual(a, b, "an address in use gets the same answer as a free one");
    await server.mail.none(takenEmail, { match: hasCode });
    fails(await c.client.emailOtp.requestEmailChange({ newEmail: email }), 400, undefined, "requestEmailChange to the same address");
    fails(await newClient(server).client.emailOtp.requestEmailChange({ newEmail: uniqueEmail("otp-nosession") }), 401, undefined,
      "requestEmailChange without a session");
  });
}

function noSignUp() {
  let closed;
  before(async () => {
    if (binaryProblem) return;
    closed = await startWarden({ env: { ...ENV, WARDEN_EMAIL_OTP__DISABLE_SIGN_UP: "true" } });
  }, { timeout: 60_000 });
  after(async () => {
    await closed?.stop();
  });

  test("13b. with WARDEN_EMAIL_OTP__DISABLE_SIGN_UP=true an unknown email gets the same answer, no code and no account", TEST, async () => {
    const c = newClient(closed);
    const known = uniqueEmail("otp-closed-known");
    ok(await c.client.signUp.email({ email: known, password: PASSWORD, name: "Known" }), "signUp.email", closed);
    const unknown = uniqueEmail("otp-closed-new");
    const a = await c.client.emailOtp.sendVerificationOtp({ email: known, type: "sign-in" });
    const b = await c.client.emailOtp.sendVerificationOtp({ email: unknown, type: "sign-in" });
    assert.deepEqual(b, a, "an unknown email gets the same answer");
    assert.deepEqual(ok(a, "sendVerificationOtp(sign-in)"), { success: true });
    const code = (await nextMail(closed, known, { match: hasCode })).code;
    await closed.mail.none(unknown);
    fails(await c.client.signIn.emailOtp({ email: unknown, otp: code }), 400, "INVALID_OTP", "signIn.emailOtp for the unknown email");
    const data = ok(await c.client.signIn.emailOtp({ email: known, otp: code }), "signIn.emailOtp for the known email", closed);
    assert.equal(data.user.email, known);
  });
}
