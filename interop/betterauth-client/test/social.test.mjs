// Social sign-in with BetterAuth's own client (better-auth 1.7.25,
// `createAuthClient` from "better-auth/client") against Warden, with a real
// local OpenID Connect provider (crates/warden/tests/support/oidc, started by
// `startOidcProvider()` in harness.mjs).
//
// The client's `signIn.social` / `linkSocial` answer `{url, redirect}`; in a
// browser the client would then navigate to `url`. Here the test does what
// the browser does, by hand and with the same cookie jar: GET `url` at the
// provider (it redirects at once to the redirect URI with code, state and
// iss), GET that callback at Warden (it answers 302 to the callbackURL, with
// the session cookie, or to the error URL with `?error=<code>`), and stops at
// the landing page. Navigations send no Origin header, as a browser's do.
//
// Warden is configured with two providers pointed at the local one:
// - `acme`, a generic OpenID Connect provider, with BetterAuth's redirect URI
//   `<warden>/api/auth/callback/acme`;
// - `google`, Warden's built-in google kind with its issuer overridden, and
//   Warden's default redirect URI `<warden>/auth/callback/google`.
//
// The provider's `POST /__control` sets the claims of the NEXT authorization
// only, so every flow sets them right before it visits the provider. Every
// test uses its own `sub` and email, so the tests do not depend on each
// other. The `D*` tests check BetterAuth's exact behaviour where Warden
// differs; against Warden they are TODO tests (reported, not failing).
//
// Against BetterAuth itself: WARDEN_BIN=tools/reference-server.mjs, which
// configures `genericOAuth` providers `acme` and `google` from the same
// WARDEN_SOCIAL__* variables (see the README).

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { makeClient, makeJarFetch } from "./client.mjs";
import { startOidcProvider, startWarden, wardenBinary } from "./harness.mjs";

const TEST = { timeout: 30_000 };
const PASSWORD = "correct horse battery staple";
const CLIENT_ID = "warden-test";
const CLIENT_SECRET = "some-secret";

/** True when WARDEN_BIN is a reference-server.mjs (BetterAuth itself). */
const AGAINST_REFERENCE = path.basename(process.env.WARDEN_BIN ?? "") === "reference-server.mjs";

let warden;
let op; // the OpenID Connect provider

let binaryProblem = null;
try {
  wardenBinary();
} catch (err) {
  binaryProblem = err;
}

// ---------------------------------------------------------------- helpers

function unique(tag) {
  return `${tag}-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
}

function uniqueEmail(tag) {
  return `${unique(tag)}@example.com`;
}

/** Claims for a new provider identity: a fresh `sub` and email. */
function identity(tag, extra = {}) {
  const id = unique(tag);
  return {
    sub: `sub-${id}`,
    email: `${id}@example.com`,
    email_verified: true,
    name: `Person ${tag}`,
    picture: `https://example.com/${id}.png`,
    ...extra,
  };
}

/** A BetterAuth client with its jar, plus `navigate`: a browser navigation
 * (same jar, no Origin header, redirects not followed). */
function newClient() {
  const { client, jar, fetch } = makeClient(warden.baseURL);
  const navigate = makeJarFetch(jar, { origin: null });
  return { client, jar, fetch, navigate };
}

function describeError(error) {
  if (!error) return "no error";
  const parts = [`HTTP ${error.status}`];
  if (error.code) parts.push(error.code);
  parts.push(JSON.stringify(error.message ?? error.statusText ?? ""));
  return parts.join(" ");
}

function ok(result, what) {
  assert.ok(result && typeof result === "object" && "data" in result && "error" in result,
    `${what}: expected {data, error} from the client, got ${JSON.stringify(result)}`);
  if (result.error) {
    assert.fail(`${what} failed: ${describeError(result.error)}\n--- server log tail ---\n${warden.logs(15)}`);
  }
  return result.data;
}

function fails(result, status, code, what) {
  assert.equal(result.data, null, `${what}: expected no data, got ${JSON.stringify(result.data)}`);
  assert.ok(result.error, `${what}: expected an error, the call succeeded`);
  assert.equal(result.error.status, status, `${what}: status (error was ${describeError(result.error)})`);
  assert.equal(result.error.code, code, `${what}: code (error was ${describeError(result.error)})`);
}

async function signUp(client, email, name = "Password User") {
  return ok(await client.signUp.email({ email, password: PASSWORD, name }), `signUp.email(${email})`);
}

async function currentSession(c, what) {
  const data = ok(await c.client.getSession(), `${what}: getSession()`);
  assert.ok(data && data.session && data.user, `${what}: expected {session, user}, got ${JSON.stringify(data)}`);
  return data;
}

async function assertNoSession(c, what) {
  assert.equal(c.jar.sessionCookie(), undefined, `${what}: the jar should hold no session cookie`);
  const res = await c.client.getSession();
  assert.equal(res.error, null, `${what}: getSession() should answer 200 null, got ${describeError(res.error)}`);
  assert.equal(res.data, null, `${what}: expected no session, got ${JSON.stringify(res.data)}`);
}

/** `signIn.social(body)`; checks `{url, redirect: true}` and returns the URL. */
async function startSignIn(c, body) {
  const data = ok(await c.client.signIn.social(body), `signIn.social(${JSON.stringify(body)})`);
  assert.equal(typeof data?.url, "string", `signIn.social: url (got ${JSON.stringify(data)})`);
  assert.equal(data.redirect, true, `signIn.social: redirect (got ${JSON.stringify(data)})`);
  return new URL(data.url);
}

/** `linkSocial(body)`; checks `{url, redirect: true}` and returns the URL. */
async function startLink(c, body) {
  const data = ok(await c.client.linkSocial(body), `linkSocial(${JSON.stringify(body)})`);
  assert.equal(typeof data?.url, "string", `linkSocial: url (got ${JSON.stringify(data)})`);
  assert.equal(data.redirect, true, `linkSocial: redirect (got ${JSON.stringify(data)})`);
  return new URL(data.url);
}

const isRedirect = (status) => status >= 300 && status < 400;

/** One browser navigation: GET `url`, no redirect followed. */
async function visit(c, url) {
  const res = await c.navigate(url, { redirect: "manual" });
  const body = await res.text();
  const location = res.headers.get("location");
  return { url: new URL(url), status: res.status, location: location && new URL(location, url), body };
}

/**
 * Follows `url` (the provider's authorization URL) as a browser does:
 * provider -> Warden's callback -> landing page. Returns the landing URL
 * (absolute; a relative Location is resolved against the callback) and the
 * hops taken. The landing page itself is not fetched (the app serves it).
 */
async function follow(c, url) {
  const hops = [];
  let next = new URL(url);
  for (let i = 0; i < 5; i++) {
    const hop = await visit(c, next);
    hops.push(hop);
    assert.ok(isRedirect(hop.status) && hop.location,
      `GET ${hop.url.href} should redirect, answered ${hop.status}: ${hop.body.slice(0, 300)}\n` +
        `--- server log tail ---\n${warden.logs(15)}`);
    next = hop.location;
    const atProvider = next.origin === new URL(op.issuer).origin;
    const atCallback = next.origin === new URL(warden.baseURL).origin && /\/callback\//.test(next.pathname);
    if (!atProvider && !atCallback) return { landing: next, hops };
  }
  assert.fail(`too many redirects: ${hops.map((h) => h.url.href).join(" -> ")}`);
}

/** Asserts the landing page is `path` with no `error`. */
function assertLanded(landing, pathName, what) {
  assert.equal(landing.searchParams.get("error"), null,
    `${what}: landed with error=${landing.searchParams.get("error")} (${landing.href})\n` +
      `--- server log tail ---\n${warden.logs(15)}`);
  assert.equal(landing.pathname, pathName, `${what}: landing page (${landing.href})`);
  assert.equal(landing.origin, new URL(warden.baseURL).origin, `${what}: landing origin (${landing.href})`);
}

/** A complete sign-in as `claims`; returns the landing URL. */
async function socialSignIn(c, claims, body) {
  const url = await startSignIn(c, body);
  await op.setNext(claims);
  return (await follow(c, url)).landing;
}

async function listAccounts(c, what) {
  const accounts = ok(await c.client.listAccounts(), `${what}: listAccounts()`);
  assert.ok(Array.isArray(accounts), `${what}: listAccounts() should be an array, got ${JSON.stringify(accounts)}`);
  return accounts;
}

/** unlinkAccount in BetterAuth 1.7.25's shape, `{accountId: <the account's
 * id from listAccounts>}` (Warden also takes `{providerId}`). */
async function unlink(c, account) {
  return c.client.unlinkAccount({ accountId: account.id });
}

// ------------------------------------------------------------------ tests

if (binaryProblem) {
  test("a Warden binary is available", () => {
    throw binaryProblem;
  });
} else {
  before(async () => {
    op = await startOidcProvider();
    warden = await startWarden({
      env: ({ baseURL }) => ({
        WARDEN_SOCIAL__ACME__ISSUER: op.issuer,
        WARDEN_SOCIAL__ACME__CLIENT_ID: CLIENT_ID,
        WARDEN_SOCIAL_ACME_CLIENT_SECRET: CLIENT_SECRET,
        WARDEN_SOCIAL__ACME__REDIRECT_URI: `${baseURL}/api/auth/callback/acme`,
        WARDEN_SOCIAL__GOOGLE__ISSUER: op.issuer,
        WARDEN_SOCIAL__GOOGLE__CLIENT_ID: CLIENT_ID,
        WARDEN_SOCIAL_GOOGLE_CLIENT_SECRET: CLIENT_SECRET,
      }),
    });
  }, { timeout: 120_000 });

  after(async () => {
    await warden?.stop();
    await op?.stop();
  });

  describe("social sign-in with BetterAuth's client", suite);
}

function suite() {
  test("1. signIn.social: provider -> callback -> callbackURL with a session for the provider's user", TEST, async () => {
    const c = newClient();
    const claims = identity("new");
    const url = await startSignIn(c, { provider: "acme", callbackURL: "/dashboard" });

    // The provider's authorization URL: code flow, PKCE S256, state, nonce.
    assert.equal(url.origin + url.pathname, `${op.issuer}/authorize`, `authorization URL ${url.href}`);
    const q = url.searchParams;
    assert.equal(q.get("client_id"), CLIENT_ID);
    assert.equal(q.get("response_type"), "code");
    assert.equal(q.get("code_challenge_method"), "S256");
    assert.match(q.get("code_challenge") ?? "", /^[A-Za-z0-9_-]{43}$/);
    assert.ok((q.get("state") ?? "").length >= 16, `state ${q.get("state")}`);
    assert.ok(q.get("nonce"), "an OpenID Connect request carries a nonce");
    assert.equal(q.get("redirect_uri"), `${warden.baseURL}/api/auth/callback/acme`);
    assert.deepEqual(
      ["openid", "email", "profile"].filter((s) => !(q.get("scope") ?? "").split(" ").includes(s)),
      [], `scope ${q.get("scope")}`);
    assert.ok(c.jar.names().some((n) => /\.(oauth_)?state$/.test(n)),
      `a state cookie binds the flow to this browser (cookies: ${c.jar.names().join(", ")})`);
    assert.equal(c.jar.sessionCookie(), undefined, "no session before the provider");

    await op.setNext(claims);
    const { landing, hops } = await follow(c, url);
    assert.equal(hops.length, 2, `provider, then callback: ${hops.map((h) => h.url.href).join(" -> ")}`);
    assert.equal(hops[1].url.origin + hops[1].url.pathname, `${warden.baseURL}/api/auth/callback/acme`);
    assert.equal(hops[1].url.searchParams.get("iss"), op.issuer, "the provider adds iss (RFC 9207)");
    assertLanded(landing, "/dashboard", "sign-in");
    assert.ok(c.jar.sessionCookie(), `the callback sets the session cookie (cookies: ${c.jar.names().join(", ")})`);
    assert.ok(!c.jar.names().some((n) => /\.(oauth_)?state$/.test(n)),
      `the callback clears the state cookie (cookies: ${c.jar.names().join(", ")})`);

    const { user } = await currentSession(c, "after social sign-in");
    assert.equal(user.email, claims.email);
    assert.equal(user.name, claims.name);
    assert.equal(user.image, claims.picture);
    assert.equal(user.emailVerified, true, "the provider said the email is verified");

    const accounts = await listAccounts(c, "social user");
    assert.deepEqual(accounts.map((a) => [a.providerId, a.accountId, a.userId]), [["acme", claims.sub, user.id]]);
    assert.ok(Array.isArray(accounts[0].scopes), `scopes ${JSON.stringify(accounts[0].scopes)}`);
  });

  test("2. the same sub signs in as the same user; newUserCallbackURL only for a new user", TEST, async () => {
    const claims = identity("again");
    const body = { provider: "acme", callbackURL: "/dashboard", newUserCallbackURL: "/welcome" };

    const first = newClient();
    assertLanded(await socialSignIn(first, claims, body), "/welcome", "first sign-in (new user)");
    const { user: u1 } = await currentSession(first, "first sign-in");

    // Another browser; the provider's name changed, the sub did not.
    const second = newClient();
    assertLanded(await socialSignIn(second, { ...claims, name: "Renamed At Provider" }, body),
      "/dashboard", "second sign-in (existing user)");
    const { user: u2, session: s2 } = await currentSession(second, "second sign-in");
    assert.equal(u2.id, u1.id, "same sub, same user");
    assert.equal(u2.email, claims.email);
    assert.equal(s2.userId, u1.id);
    assert.equal((await listAccounts(second, "after the second sign-in")).length, 1, "no second account");

    // Both sessions exist.
    const sessions = ok(await second.client.listSessions(), "listSessions()");
    assert.equal(sessions.length, 2, `two sessions (got ${sessions.length})`);
  });

  // BetterAuth creates such a user (emailVerified false); Warden refuses, so
  // that nobody can sign up in another's name through a provider that does
  // not check addresses (see the README's social sign-in section).
  test("3. no user from a provider email that is not verified: error=email_not_verified", TEST, async () => {
    const c = newClient();
    const claims = identity("unverified-at-provider", { email_verified: false });
    const landing = await socialSignIn(c, claims, { provider: "acme", callbackURL: "/dashboard", errorCallbackURL: "/sign-in-failed" });
    if (AGAINST_REFERENCE) {
      assertLanded(landing, "/dashboard", "sign-in");
      return;
    }
    assert.equal(landing.pathname, "/sign-in-failed", `landing ${landing.href}`);
    assert.equal(landing.searchParams.get("error"), "email_not_verified", `landing ${landing.href}`);
    await assertNoSession(c, "after an unverified provider email");
  });

  test("4. denied consent lands on errorCallbackURL with error=access_denied and no session", TEST, async () => {
    const c = newClient();
    const url = await startSignIn(c, { provider: "acme", callbackURL: "/dashboard", errorCallbackURL: "/sign-in-failed" });
    await op.setNext({ ...identity("denied"), deny: true });
    const { landing, hops } = await follow(c, url);
    assert.equal(hops[0].location.searchParams.get("error"), "access_denied", "the provider refused");
    assert.equal(landing.pathname, "/sign-in-failed", `landing ${landing.href}`);
    assert.equal(landing.searchParams.get("error"), "access_denied", `landing ${landing.href}`);
    await assertNoSession(c, "after a denied consent");
  });

  test("5. a tampered state, or a callback in another browser, ends with state_mismatch and no session", TEST, async () => {
    const c = newClient();
    const url = await startSignIn(c, { provider: "acme", callbackURL: "/dashboard", errorCallbackURL: "/sign-in-failed" });
    await op.setNext(identity("tampered"));
    const atProvider = await visit(c, url);
    assert.ok(isRedirect(atProvider.status), `the provider redirects (${atProvider.status})`);
    const callback = atProvider.location;
    const state = callback.searchParams.get("state");
    assert.equal(state, url.searchParams.get("state"), "the provider returns the state");

    // The callback, but with another state.
    const tampered = new URL(callback);
    tampered.searchParams.set("state", state.slice(0, -4) + (state.endsWith("AAAA") ? "BBBB" : "AAAA"));
    const r1 = await visit(c, tampered);
    assert.ok(isRedirect(r1.status) && r1.location, `tampered state: expected a redirect, got ${r1.status} ${r1.body}`);
    assert.equal(r1.location.searchParams.get("error"), "state_mismatch", `tampered state: ${r1.location.href}`);
    assert.equal(r1.location.pathname, "/api/auth/error", `tampered state: ${r1.location.href}`);
    await assertNoSession(c, "after a tampered state");

    // Another browser (no state cookie) following the first browser's flow.
    const other = newClient();
    const url2 = await startSignIn(c, { provider: "acme", callbackURL: "/dashboard" });
    await op.setNext(identity("other-browser"));
    const p2 = await visit(other, url2);
    const r2 = await visit(other, p2.location);
    assert.ok(isRedirect(r2.status) && r2.location, `other browser: expected a redirect, got ${r2.status} ${r2.body}`);
    assert.equal(r2.location.searchParams.get("error"), "state_mismatch", `other browser: ${r2.location.href}`);
    await assertNoSession(other, "the other browser");
    await assertNoSession(c, "the first browser");
  });

  test("6. a bad ID token (wrong nonce, expired) ends with an error and no session", TEST, async (t) => {
    for (const [overrides, code] of [
      [{ nonce: "not-the-nonce" }, "nonce_mismatch"],
      [{ exp: 1_000_000_000 }, "id_token_expired"],
    ]) {
      const c = newClient();
      const url = await startSignIn(c, { provider: "acme", callbackURL: "/dashboard", errorCallbackURL: "/sign-in-failed" });
      await op.setNext({ ...identity("bad-token"), id_token_overrides: overrides });
      const { landing } = await follow(c, url);
      const what = `id_token ${JSON.stringify(overrides)}`;
      assert.equal(landing.pathname, "/sign-in-failed", `${what}: landing ${landing.href}`);
      const error = landing.searchParams.get("error");
      assert.ok(error, `${what}: landing should carry an error (${landing.href})`);
      t.diagnostic(`${what}: error=${error}`);
      // BetterAuth reports either failure with a code of its own (see the README).
      if (!AGAINST_REFERENCE) assert.equal(error, code, `${what}: error code`);
      await assertNoSession(c, what);
    }
  });

  test("7. linkSocial links the provider to a signed-in email/password user; unlinkAccount; the last method stays", TEST, async () => {
    const c = newClient();
    const email = uniqueEmail("linker");
    const { user } = await signUp(c.client, email);
    const sessionBefore = c.jar.sessionCookie()?.value;

    const claims = identity("linked", { email });
    const url = await startLink(c, { provider: "acme", callbackURL: "/settings" });
    assert.equal(url.origin + url.pathname, `${op.issuer}/authorize`);
    await op.setNext(claims);
    const { landing } = await follow(c, url);
    assertLanded(landing, "/settings", "linkSocial");
    assert.equal(c.jar.sessionCookie()?.value, sessionBefore, "linking keeps the session");
    const { user: me } = await currentSession(c, "after linking");
    assert.equal(me.id, user.id);

    let accounts = await listAccounts(c, "after linking");
    assert.deepEqual(accounts.map((a) => a.providerId).sort(), ["acme", "credential"]);
    for (const a of accounts) {
      assert.equal(a.userId, user.id);
      for (const key of ["id", "providerId", "accountId", "userId", "scopes", "createdAt", "updatedAt"]) {
        assert.ok(key in a, `account.${key} missing (${JSON.stringify(a)})`);
      }
    }
    const acme = accounts.find((a) => a.providerId === "acme");
    assert.equal(acme.accountId, claims.sub);

    // The linked provider now signs in as that user, in another browser.
    const b = newClient();
    assertLanded(await socialSignIn(b, claims, { provider: "acme", callbackURL: "/dashboard" }), "/dashboard", "sign-in with the linked provider");
    assert.equal((await currentSession(b, "sign-in with the linked provider")).user.id, user.id);

    // Unlink it: only the password is left, and it cannot be unlinked.
    assert.deepEqual(ok(await unlink(c, acme), "unlinkAccount(acme)"), { status: true });
    accounts = await listAccounts(c, "after unlinking");
    assert.deepEqual(accounts.map((a) => a.providerId), ["credential"]);
    fails(await unlink(c, accounts[0]), 400, "FAILED_TO_UNLINK_LAST_ACCOUNT", "unlinkAccount(credential), the last one");
    assert.deepEqual((await listAccounts(c, "after the refusal")).map((a) => a.providerId), ["credential"]);

  });

  test("8. a social-only user cannot unlink the provider, the only way to sign in", TEST, async () => {
    const c = newClient();
    assertLanded(await socialSignIn(c, identity("only"), { provider: "acme", callbackURL: "/dashboard" }), "/dashboard", "sign-in");
    const accounts = await listAccounts(c, "social-only user");
    assert.deepEqual(accounts.map((a) => a.providerId), ["acme"]);
    fails(await unlink(c, accounts[0]), 400, "FAILED_TO_UNLINK_LAST_ACCOUNT", "unlinkAccount(acme), the only one");
    assert.equal((await listAccounts(c, "after the refusal")).length, 1);
  });

  test("9. an email/password user whose email is not verified is not linked automatically (account_not_linked)", TEST, async () => {
    const owner = newClient();
    const email = uniqueEmail("victim");
    const { user } = await signUp(owner.client, email);
    assert.equal(user.emailVerified, false);

    const attacker = newClient();
    const landing = await socialSignIn(attacker, identity("same-email", { email, email_verified: true }),
      { provider: "acme", callbackURL: "/dashboard", errorCallbackURL: "/sign-in-failed" });
    assert.equal(landing.pathname, "/sign-in-failed", `landing ${landing.href}`);
    assert.equal(landing.searchParams.get("error"), "account_not_linked", `landing ${landing.href}`);
    await assertNoSession(attacker, "the refused sign-in");
    assert.deepEqual((await listAccounts(owner, "the password user")).map((a) => a.providerId), ["credential"]);
  });

  test("10. the built-in google kind, pointed at the local provider, signs in", TEST, async () => {
    const c = newClient();
    const claims = identity("google");
    const url = await startSignIn(c, { provider: "google", callbackURL: "/dashboard" });
    assert.equal(url.origin + url.pathname, `${op.issuer}/authorize`);
    await op.setNext(claims);
    const { landing, hops } = await follow(c, url);
    assertLanded(landing, "/dashboard", "google sign-in");
    assert.match(hops[1].url.pathname, /\/callback\/google$/);
    const { user } = await currentSession(c, "google sign-in");
    assert.equal(user.email, claims.email);
    const accounts = await listAccounts(c, "google user");
    assert.deepEqual(accounts.map((a) => [a.providerId, a.accountId]), [["google", claims.sub]]);
  });

  test("11. an unknown provider is 404 PROVIDER_NOT_FOUND", TEST, async () => {
    const c = newClient();
    fails(await c.client.signIn.social({ provider: "nope", callbackURL: "/dashboard" }), 404, "PROVIDER_NOT_FOUND", "signIn.social(nope)");
    await signUp(c.client, uniqueEmail("nope"));
    fails(await c.client.linkSocial({ provider: "nope", callbackURL: "/settings" }), 404, "PROVIDER_NOT_FOUND", "linkSocial(nope)");
  });

  describe("BetterAuth's exact behaviour in the finer points", knownDifferences);
}

function knownDifferences() {
  test("D1. without errorCallbackURL an error lands on /api/auth/error, not on callbackURL",
    TEST, async () => {
      const c = newClient();
      const url = await startSignIn(c, { provider: "acme", callbackURL: "/dashboard" });
      await op.setNext({ ...identity("denied-default"), deny: true });
      const { landing } = await follow(c, url);
      assert.equal(landing.searchParams.get("error"), "access_denied", `landing ${landing.href}`);
      assert.equal(landing.pathname, "/api/auth/error", `landing ${landing.href}`);
    });

  test("D2. linkSocial refuses a provider identity whose email is not the user's (email_does_not_match)",
    TEST, async () => {
      const c = newClient();
      await signUp(c.client, uniqueEmail("link-other"));
      const url = await startLink(c, { provider: "acme", callbackURL: "/settings" });
      await op.setNext(identity("other-email"));
      const { landing } = await follow(c, url);
      assert.equal(landing.searchParams.get("error"), "email_does_not_match", `landing ${landing.href}`);
      assert.deepEqual((await listAccounts(c, "after the refusal")).map((a) => a.providerId), ["credential"]);
    });

  test("D3. unlinkAccount({accountId}) with the id listAccounts gives (BetterAuth 1.7.25's shape)",
    TEST, async () => {
      const c = newClient();
      const email = uniqueEmail("unlink-shape");
      await signUp(c.client, email);
      const url = await startLink(c, { provider: "acme", callbackURL: "/settings" });
      await op.setNext(identity("unlink-shape", { email }));
      assertLanded((await follow(c, url)).landing, "/settings", "linkSocial");
      const acme = (await listAccounts(c, "after linking")).find((a) => a.providerId === "acme");
      assert.ok(acme, "acme linked");
      assert.deepEqual(ok(await c.client.unlinkAccount({ accountId: acme.id }), "unlinkAccount({accountId})"), { status: true });
      assert.deepEqual((await listAccounts(c, "after unlinking")).map((a) => a.providerId), ["credential"]);
    });

  test("D4. signing in through a linked provider that says the user's email is verified marks it verified",
    TEST, async () => {
      const c = newClient();
      const email = uniqueEmail("verify-by-provider");
      await signUp(c.client, email);
      const claims = identity("verify-by-provider", { email, email_verified: true });
      const url = await startLink(c, { provider: "acme", callbackURL: "/settings" });
      await op.setNext(claims);
      assertLanded((await follow(c, url)).landing, "/settings", "linkSocial");
      const b = newClient();
      assertLanded(await socialSignIn(b, claims, { provider: "acme", callbackURL: "/dashboard" }), "/dashboard", "sign-in");
      const { user } = await currentSession(b, "sign-in with the linked provider");
      assert.equal(user.emailVerified, true, "emailVerified after a sign-in with the provider's verified email");
    });

  test("D5. linkSocial's errorCallbackURL receives a failed link",
    TEST, async () => {
      const c = newClient();
      const email = uniqueEmail("link-denied");
      await signUp(c.client, email);
      const url = await startLink(c, { provider: "acme", callbackURL: "/settings", errorCallbackURL: "/link-failed" });
      await op.setNext({ ...identity("link-denied", { email }), deny: true });
      const { landing } = await follow(c, url);
      assert.equal(landing.searchParams.get("error"), "access_denied", `landing ${landing.href}`);
      assert.equal(landing.pathname, "/link-failed", `landing ${landing.href}`);
      assert.deepEqual((await listAccounts(c, "after the denied link")).map((a) => a.providerId), ["credential"]);
    });
}
