// BetterAuth's magicLink client plugin (better-auth 1.7.25, `magicLinkClient`
// from "better-auth/client/plugins") against Warden's
// POST /api/auth/sign-in/magic-link and GET /api/auth/magic-link/verify.
//
// The link comes from the server's development outbox (its log line, read
// by `nextMail` in harness.mjs). It is used two ways, as an app would:
// - the client's `magicLink.verify({query: {token}})` (no callbackURL: the
//   server answers JSON {token, user, session});
// - the link itself, fetched like a browser that follows a mailed link: a
//   GET with the jar's cookies and no Origin, `redirect: "manual"`, so the
//   302 and its Set-Cookie are seen.
//
// Server switches: WARDEN_MAGIC_LINK__ENABLED=true; one more server with
// WARDEN_MAGIC_LINK__EXPIRES_IN=1s for the expiry test.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { magicLinkClient, twoFactorClient } from "better-auth/client/plugins";

import { makeClient, makeJarFetch } from "./client.mjs";
import {
  AGAINST_REFERENCE,
  TEST,
  assertNoSession,
  cookieEndingIn,
  currentSession,
  describeError,
  fails,
  ok,
  sleep,
  turnOnTotp,
  uniqueEmail,
  verifyEmailByLink,
} from "./expect.mjs";
import { nextMail, startWarden, wardenBinary } from "./harness.mjs";

const PASSWORD = "correct horse battery staple";
const ENV = { WARDEN_MAGIC_LINK__ENABLED: "true" };

let warden;

let binaryProblem = null;
try {
  wardenBinary();
} catch (err) {
  binaryProblem = err;
}

/** A browser-like client with the magicLink and twoFactor plugins. */
function newClient(server = warden) {
  const redirects = [];
  const c = makeClient(server.baseURL, {
    plugins: [magicLinkClient(), twoFactorClient({ onTwoFactorRedirect: (ctx) => redirects.push(ctx) })],
  });
  return { ...c, redirects, server };
}

/** signIn.magicLink, asserting BetterAuth's answer {status: true}; returns the mailed link. */
async function requestLink(c, body, what = `signIn.magicLink(${body.email})`) {
  const data = ok(await c.client.signIn.magicLink(body), what, c.server);
  assert.deepEqual(data, { status: true }, `${what}: the answer`);
  const mail = await nextMail(c.server, body.email, { match: (m) => m.links.some((l) => l.includes("/magic-link/verify")) });
  const link = mail.links.map((l) => new URL(l)).find((u) => u.pathname.endsWith("/magic-link/verify"));
  assert.ok(link, `${what}: the mail should carry a /magic-link/verify link, has ${JSON.stringify(mail.links)}`);
  assert.equal(link.origin, new URL(c.server.env.WARDEN_BASE_URL).origin, `${what}: the link goes to the server`);
  assert.equal(link.pathname, "/api/auth/magic-link/verify", `${what}: the link's path`);
  const token = link.searchParams.get("token");
  assert.ok(token && token.length >= 22, `${what}: the token should carry at least 128 bits, got ${JSON.stringify(token)}`);
  return link;
}

/**
 * Opens `link` as a browser does when the user clicks it in a mail: GET,
 * the jar's cookies, no Origin, no redirect followed. Returns the status and
 * the Location, resolved against the link.
 */
async function openLink(jar, link) {
  const res = await makeJarFetch(jar, { origin: null })(link, { redirect: "manual" });
  const body = await res.text();
  const location = res.headers.get("location");
  return { status: res.status, location: location ? new URL(location, link) : null, body, link: new URL(link) };
}

function assertRedirect(got, want, what) {
  assert.ok([302, 303, 307].includes(got.status), `${what}: expected a redirect, got ${got.status} ${got.body.slice(0, 300)}`);
  assert.ok(got.location, `${what}: a redirect needs a Location`);
  const expected = new URL(want, got.link);
  assert.equal(got.location.origin + got.location.pathname, expected.origin + expected.pathname, `${what}: Location ${got.location}`);
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
  describe("BetterAuth magicLink client against Warden", suite);
  describe("an expired magic link", expiry);
  describe("sign-up by magic link turned off", noSignUp);
}

function suite() {
  test("1. signIn.magicLink gives the same answer for a new and a known email, and mails each a link", TEST, async () => {
    const known = uniqueEmail("ml-known");
    const a = newClient();
    ok(await a.client.signUp.email({ email: known, password: PASSWORD, name: "Known" }), "signUp.email");
    const b = newClient();
    const knownRes = await b.client.signIn.magicLink({ email: known, callbackURL: "/dashboard" });
    const fresh = uniqueEmail("ml-new");
    const newRes = await b.client.signIn.magicLink({ email: fresh, callbackURL: "/dashboard" });
    assert.deepEqual(knownRes, newRes, "a known and a new email should get the same answer");
    assert.deepEqual(ok(knownRes, "signIn.magicLink(known)"), { status: true });
    for (const email of [known, fresh]) {
      const mail = await nextMail(warden, email);
      const link = new URL(mail.links.find((l) => l.includes("/magic-link/verify")));
      assert.equal(link.searchParams.get("callbackURL"), "/dashboard", `the link to ${email} carries callbackURL`);
    }
    assert.equal(b.jar.sessionCookie(), undefined, "asking for a link sets no session cookie");
    await assertNoSession(b.client, "after asking for links");
  });

  test("2. magicLink.verify with the mailed token signs a new user up: {token, user, session}, email verified", TEST, async () => {
    const email = uniqueEmail("ml-verify");
    const c = newClient();
    const link = await requestLink(c, { email, name: "Magic Person" });
    const data = ok(await c.client.magicLink.verify({ query: { token: link.searchParams.get("token") } }),
      "magicLink.verify({query: {token}})", warden);
    assert.equal(typeof data.token, "string", `verify: data.token, got ${JSON.stringify(data)}`);
    assert.equal(data.user?.email, email, "verify: data.user.email");
    assert.equal(data.user.emailVerified, true, "verify: data.user.emailVerified");
    assert.equal(data.user.name, "Magic Person", "verify: the name given to signIn.magicLink");
    assert.equal(typeof data.session?.id, "string", `verify: data.session, got ${JSON.stringify(data.session)}`);
    assert.equal(data.session.userId, data.user.id, "verify: data.session.userId");
    assert.ok(c.jar.sessionCookie(), `verify should set the session cookie, jar has [${c.jar.names().join(", ")}]`);
    const s = await currentSession(c.client, "after verify");
    assert.equal(s.user.id, data.user.id);
    assert.equal(s.user.emailVerified, true);
  });

  test("3. opening the mailed link sets the session cookie and redirects to callbackURL; the email is then verified", TEST, async () => {
    const email = uniqueEmail("ml-open");
    const c = newClient();
    const up = ok(await c.client.signUp.email({ email, password: PASSWORD, name: "Opener" }), "signUp.email");
    assert.equal(up.user.emailVerified, false, "signUp: not verified yet");
    const link = await requestLink(c, { email, callbackURL: "/dashboard" });
    const browser = newClient();
    const opened = await openLink(browser.jar, link);
    assertRedirect(opened, "/dashboard", "opening the link");
    assert.equal(opened.location.searchParams.get("error"), null, `no error on a good link: ${opened.location}`);
    assert.ok(browser.jar.sessionCookie(), `the link should set a session cookie, jar has [${browser.jar.names().join(", ")}]`);
    const s = await currentSession(browser.client, "after opening the link");
    assert.equal(s.user.id, up.user.id, "the link signs in the known user");
    assert.equal(s.user.emailVerified, true, "a magic-link sign-in marks the email verified");
  });

  test("3b. a verified user's magic-link sign-in keeps the password and the other sessions", TEST, async () => {
    const email = uniqueEmail("ml-keep");
    const c = newClient();
    ok(await c.client.signUp.email({ email, password: PASSWORD, name: "Keeper" }), "signUp.email");
    await verifyEmailByLink(c, email);
    const link = await requestLink(c, { email, callbackURL: "/dashboard" });
    const browser = newClient();
    assertRedirect(await openLink(browser.jar, link), "/dashboard", "opening the link");
    await currentSession(browser.client, "after the link");
    await currentSession(c.client, "the session from before the link");
    ok(await newClient().client.signIn.email({ email, password: PASSWORD }), "the password still signs in", warden);
  });

  test("4. a link works once: opened again, it redirects with error=INVALID_TOKEN and no session", TEST, async () => {
    const email = uniqueEmail("ml-replay");
    const c = newClient();
    const link = await requestLink(c, { email, callbackURL: "/dashboard" });
    const first = newClient();
    assertRedirect(await openLink(first.jar, link), "/dashboard", "first use");
    await currentSession(first.client, "after the first use");

    const second = newClient();
    const again = await openLink(second.jar, link);
    assertRedirect(again, "/dashboard", "second use (errorCallbackURL defaults to callbackURL)");
    assert.equal(again.location.searchParams.get("error"), "INVALID_TOKEN", `second use: ${again.location}`);
    assert.equal(second.jar.sessionCookie(), undefined, "a used link sets no session cookie");
    await assertNoSession(second.client, "after the replay");
  });

  test("5. errorCallbackURL gets error=INVALID_TOKEN for a bad token", TEST, async () => {
    const email = uniqueEmail("ml-bad");
    const c = newClient();
    const link = await requestLink(c, { email, callbackURL: "/dashboard", errorCallbackURL: "/sign-in-failed" });
    assert.equal(link.searchParams.get("errorCallbackURL"), "/sign-in-failed", "the link carries errorCallbackURL");
    const bad = new URL(link);
    bad.searchParams.set("token", `${link.searchParams.get("token").slice(0, -4)}AAAA`);
    const b = newClient();
    const got = await openLink(b.jar, bad);
    assertRedirect(got, "/sign-in-failed", "a tampered token");
    assert.equal(got.location.searchParams.get("error"), "INVALID_TOKEN", `a tampered token: ${got.location}`);
    await assertNoSession(b.client, "after a bad token");
    // The real link still works.
    assertRedirect(await openLink(b.jar, link), "/dashboard", "the real link after a bad one");
    await currentSession(b.client, "after the real link");
  });

  test("6. newUserCallbackURL is where a new user lands; a known user goes to callbackURL", TEST, async () => {
    const email = uniqueEmail("ml-newuser");
    const c = newClient();
    const body = { email, callbackURL: "/welcome-back", newUserCallbackURL: "/welcome" };
    const first = await requestLink(c, body);
    assert.equal(first.searchParams.get("newUserCallbackURL"), "/welcome", "the link carries newUserCallbackURL");
    const b1 = newClient();
    assertRedirect(await openLink(b1.jar, first), "/welcome", "a new user's first link");
    const second = await requestLink(c, body);
    const b2 = newClient();
    assertRedirect(await openLink(b2.jar, second), "/welcome-back", "the same user's second link");
    const s1 = await currentSession(b1.client, "new user");
    const s2 = await currentSession(b2.client, "known user");
    assert.equal(s1.user.id, s2.user.id, "both links sign in the same user");
  });

  test("7. an untrusted callbackURL, newUserCallbackURL or errorCallbackURL is refused (403) and no mail goes out", TEST, async () => {
    const email = uniqueEmail("ml-untrusted");
    const c = newClient();
    fails(await c.client.signIn.magicLink({ email, callbackURL: "https://evil.example/steal" }), 403, "INVALID_CALLBACK_URL",
      "signIn.magicLink with an untrusted callbackURL");
    fails(await c.client.signIn.magicLink({ email, callbackURL: "/ok", newUserCallbackURL: "https://evil.example/" }), 403,
      "INVALID_NEW_USER_CALLBACK_URL", "signIn.magicLink with an untrusted newUserCallbackURL");
    fails(await c.client.signIn.magicLink({ email, callbackURL: "/ok", errorCallbackURL: "https://evil.example/" }), 403,
      "INVALID_ERROR_CALLBACK_URL", "signIn.magicLink with an untrusted errorCallbackURL");
    await warden.mail.none(email);

    // A good link with its callbackURL swapped for an untrusted one: refused
    // before the token is looked at, so the token still works afterwards.
    const link = await requestLink(c, { email, callbackURL: "/dashboard" });
    const evil = new URL(link);
    evil.searchParams.set("callbackURL", "https://evil.example/steal");
    const b = newClient();
    const got = await openLink(b.jar, evil);
    assert.equal(got.status, 403, `verify with an untrusted callbackURL: expected 403, got ${got.status} ${got.location ?? ""} ${got.body.slice(0, 200)}`);
    assert.equal(JSON.parse(got.body).code, "INVALID_CALLBACK_URL", `verify with an untrusted callbackURL: ${got.body}`);
    await assertNoSession(b.client, "after the untrusted callbackURL");
    assertRedirect(await openLink(b.jar, link), "/dashboard", "the untouched link afterwards");
    await currentSession(b.client, "after the untouched link");
  });

  test("8. a trusted absolute callbackURL (the server's own origin) is accepted", TEST, async () => {
    const email = uniqueEmail("ml-abs");
    const c = newClient();
    const target = `${new URL(warden.env.WARDEN_BASE_URL).origin}/app/home`;
    const link = await requestLink(c, { email, callbackURL: target });
    const b = newClient();
    const got = await openLink(b.jar, link);
    assertRedirect(got, target, "an absolute trusted callbackURL");
  });

  test("9. bad input: an invalid email is refused with 400", TEST, async () => {
    const c = newClient();
    const r = await c.client.signIn.magicLink({ email: "not-an-email", callbackURL: "/" });
    fails(r, 400, undefined, "signIn.magicLink with an invalid email");
    const missing = await c.client.magicLink.verify({ query: {} });
    assert.ok(missing.error, "magicLink.verify without a token should fail");
    assert.equal(missing.error.status, 400, `magicLink.verify without a token: ${describeError(missing.error)}`);
  });

  test("10. a user with two-factor on: Warden asks for the second factor after the link; BetterAuth signs straight in", TEST, async () => {
    const email = uniqueEmail("ml-2fa");
    const owner = newClient();
    ok(await owner.client.signUp.email({ email, password: PASSWORD, name: "Two" }), "signUp.email");
    // A verified address, so D1's clean-up does not apply.
    await verifyEmailByLink(owner, email);
    const { app } = await turnOnTotp(owner.client, PASSWORD, warden);

    const link = await requestLink(owner, { email, callbackURL: "/dashboard" });
    const b = newClient();
    const got = await openLink(b.jar, link);
    assertRedirect(got, "/dashboard", "a two-factor user's link");
    if (AGAINST_REFERENCE) {
      // BetterAuth 1.7.25: twoFactor's hook covers only /sign-in/email,
      // /sign-in/username and /sign-in/phone-number.
      assert.equal(got.location.searchParams.get("twoFactorRedirect"), null, `BetterAuth: ${got.location}`);
      const s = await currentSession(b.client, "BetterAuth: after the link");
      assert.equal(s.user.email, email);
      return;
    }
    assert.equal(got.location.searchParams.get("twoFactorRedirect"), "true", `Warden: the redirect says twoFactorRedirect=true: ${got.location}`);
    assert.equal(b.jar.sessionCookie(), undefined, "Warden: no session cookie before the second factor");
    assert.ok(cookieEndingIn(b.jar, "two_factor"), `Warden: a *.two_factor challenge cookie, jar has [${b.jar.names().join(", ")}]`);
    await assertNoSession(b.client, "Warden: before the second factor");
    const done = ok(await b.client.twoFactor.verifyTotp({ code: await app.freshCode() }), "verifyTotp after the link", warden);
    assert.equal(done.user?.email, email, "verifyTotp completes the magic-link sign-in");
    await currentSession(b.client, "after verifyTotp");
  });

  test("12. an unverified user's magic-link sign-in removes the password and the sessions made before (BetterAuth's pre-registration defence)",
    TEST, async () => {
      const email = uniqueEmail("ml-d1");
      const squatter = newClient();
      ok(await squatter.client.signUp.email({ email, password: PASSWORD, name: "Squatter" }), "signUp.email");
      await currentSession(squatter.client, "the squatter's session");
      const link = await requestLink(squatter, { email, callbackURL: "/dashboard" });
      const owner = newClient();
      assertRedirect(await openLink(owner.jar, link), "/dashboard", "the owner opens the link");
      const s = await currentSession(owner.client, "the owner after the link");
      assert.equal(s.user.emailVerified, true);
      await assertNoSession(squatter.client, "the session made before the proof is gone");
      const c = newClient();
      fails(await c.client.signIn.email({ email, password: PASSWORD }), 401, "INVALID_EMAIL_OR_PASSWORD",
        "the password set before the proof no longer signs in");
    });
}

function expiry() {
  let short;
  before(async () => {
    if (binaryProblem) return;
    short = await startWarden({ env: { ...ENV, WARDEN_MAGIC_LINK__EXPIRES_IN: "1s" } });
  }, { timeout: 60_000 });
  after(async () => {
    await short?.stop();
  });

  test("11. with WARDEN_MAGIC_LINK__EXPIRES_IN=1s, a link opened 2 s later redirects with error=INVALID_TOKEN", TEST, async () => {
    const email = uniqueEmail("ml-expired");
    const c = newClient(short);
    const link = await requestLink(c, { email, callbackURL: "/dashboard", errorCallbackURL: "/expired" });
    await sleep(2_000);
    const b = newClient(short);
    const got = await openLink(b.jar, link);
    assert.ok([302, 303, 307].includes(got.status), `an expired link: expected a redirect, got ${got.status} ${got.body.slice(0, 200)}`);
    assert.equal(got.location.pathname, "/expired", `an expired link goes to errorCallbackURL: ${got.location}`);
    assert.ok(got.location.searchParams.get("error"), `an expired link: an error in ${got.location}`);
    if (AGAINST_REFERENCE) assert.equal(got.location.searchParams.get("error"), "INVALID_TOKEN");
    await assertNoSession(b.client, "after an expired link");
  });
}

function noSignUp() {
  let closed;
  before(async () => {
    if (binaryProblem) return;
    closed = await startWarden({ env: { ...ENV, WARDEN_MAGIC_LINK__DISABLE_SIGN_UP: "true" } });
  }, { timeout: 60_000 });
  after(async () => {
    await closed?.stop();
  });

  test("12b. with WARDEN_MAGIC_LINK__DISABLE_SIGN_UP=true an unknown email gets the same answer but no account: error=new_user_signup_disabled", TEST, async () => {
    const known = uniqueEmail("ml-closed-known");
    const c = newClient(closed);
    ok(await c.client.signUp.email({ email: known, password: PASSWORD, name: "Known" }), "signUp.email", closed);
    const unknown = uniqueEmail("ml-closed-new");
    const a = await c.client.signIn.magicLink({ email: known, callbackURL: "/dashboard", errorCallbackURL: "/nope" });
    const b = await c.client.signIn.magicLink({ email: unknown, callbackURL: "/dashboard", errorCallbackURL: "/nope" });
    assert.deepEqual(b, a, "an unknown email gets the same answer");
    assert.deepEqual(ok(a, "signIn.magicLink"), { status: true });
    // The known user's link works.
    const knownMail = await nextMail(closed, known, { match: (m) => m.links.some((l) => l.includes("/magic-link/verify")) });
    const k = newClient(closed);
    const opened = await openLink(k.jar, knownMail.links.find((l) => l.includes("/magic-link/verify")));
    assertRedirect(opened, "/dashboard", "the known user's link");
    // BetterAuth mails the unknown address a link that cannot sign up;
    // a server may also mail nothing. Either way no account appears.
    const unknownMails = closed.mail.to(unknown);
    if (AGAINST_REFERENCE) {
      await nextMail(closed, unknown);
      assert.equal(closed.mail.to(unknown).length, 1, "BetterAuth mails the unknown address");
    } else {
      await sleep(500);
    }
    for (const mail of closed.mail.to(unknown)) {
      const link = mail.links.find((l) => l.includes("/magic-link/verify"));
      const u = newClient(closed);
      const got = await openLink(u.jar, link);
      assertRedirect(got, "/nope", "the unknown address's link");
      assert.equal(got.location.searchParams.get("error"), "new_user_signup_disabled", `the unknown address's link: ${got.location}`);
      await assertNoSession(u.client, "after the unknown address's link");
    }
    assert.ok(unknownMails.length <= 1);
    fails(await newClient(closed).client.signIn.email({ email: unknown, password: PASSWORD }), 401, "INVALID_EMAIL_OR_PASSWORD",
      "no account was made for the unknown email");
  });
}
