// Passkeys: BetterAuth's passkeyClient() (@better-auth/passkey 1.7.6, beside
// better-auth 1.7.25) in Chromium, against Warden's /api/auth/passkey/*.
//
// The page (test/passkey-page/, its script bundled by esbuild from
// better-auth/client and @better-auth/passkey/client) is served by a small
// static server on http://localhost:<page port>; Warden is on
// http://localhost:<server port> (base URL, so the relying party id is
// `localhost`), another origin, trusted through
// WARDEN_CORS__ALLOW_ORIGINS_WITH_CREDENTIALS. Chromium (playwright-core,
// no downloaded browser) gets a CDP virtual authenticator: CTAP2, internal,
// resident keys, user verification.
//
// Chromium: $CHROMIUM, else /usr/bin/chromium (Debian's: apt-get install
// chromium). Without it the tests are skipped, unless CI is set.
// Screenshots: <repo>/target/tmp/betterauth-passkey/.

import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";

import * as esbuild from "esbuild";
import { chromium } from "playwright-core";
import { twoFactorClient } from "better-auth/client/plugins";

import { makeClient } from "./client.mjs";
import { AGAINST_REFERENCE, ok, turnOnTotp, uniqueEmail } from "./expect.mjs";
import { REPO_ROOT, freePort, startWarden, wardenBinary } from "./harness.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PAGE_DIR = path.join(HERE, "passkey-page");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SCREENSHOTS = path.join(REPO_ROOT, "target", "tmp", "betterauth-passkey");
const PASSWORD = "correct horse battery staple";
const TEST = { timeout: 60_000 };

const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium && process.env.CI) {
  throw new Error(`chromium not found at ${CHROMIUM}; CI needs it: apt-get install -y --no-install-recommends chromium`);
}

let binaryProblem = null;
try {
  wardenBinary();
} catch (err) {
  binaryProblem = err;
}
const skip = binaryProblem
  ? false // reported by the test below
  : haveChromium
    ? false
    : `chromium not found at ${CHROMIUM} (apt-get install -y --no-install-recommends chromium, or set CHROMIUM); skipped outside CI`;

let warden;
let serverURL; // http://localhost:<port>, Warden's base URL
let page0; // the static page server
let pageURL; // http://localhost:<port>
let browser;
let bundleDir;

/** Serves `dir` (index.html, page.js) on 127.0.0.1:port. */
async function startStatic(dir, port) {
  const types = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8" };
  const server = http.createServer((req, res) => {
    const name = new URL(req.url, "http://x").pathname === "/" ? "index.html" : path.basename(new URL(req.url, "http://x").pathname);
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": types[path.extname(file)] ?? "application/octet-stream" });
    res.end(fs.readFileSync(file));
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  return { stop: () => new Promise((resolve) => server.close(resolve)) };
}

/** The base64url form of a base64 or base64url credential id (CDP gives base64). */
const b64url = (id) => Buffer.from(id.replace(/-/g, "+").replace(/_/g, "/"), "base64").toString("base64url");

/** A page with BetterAuth's client for Warden and a virtual authenticator. */
async function openPage(tag) {
  const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
  context.setDefaultTimeout(20_000);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  await page.goto(pageURL);
  assert.equal(await page.evaluate((url) => window.auth(url), serverURL), true, "the page script loaded");
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  let shot = 0;
  return {
    page,
    problems,
    /** authClient.<path>(...args) in the page: {data, error}. */
    call: (p, ...args) => page.evaluate(([p2, a]) => window.call(p2, ...a), [p, args]),
    credentials: async () => (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials,
    /** Puts `credential` back with another signature counter (a clone of the authenticator). */
    resetCounter: async (credential, signCount) => {
      await cdp.send("WebAuthn.removeCredential", { authenticatorId, credentialId: credential.credentialId });
      const { credentialId, isResidentCredential, rpId, privateKey, userHandle } = credential;
      await cdp.send("WebAuthn.addCredential", {
        authenticatorId,
        credential: { credentialId, isResidentCredential, rpId, privateKey, userHandle, signCount },
      });
    },
    snap: (name) => page.screenshot({ path: path.join(SCREENSHOTS, `${tag}-${String(++shot).padStart(2, "0")}-${name}.png`) }),
    close: () => context.close(),
  };
}

function okIn(result, what) {
  assert.ok(result && "data" in result && "error" in result, `${what}: expected {data, error}, got ${JSON.stringify(result)}`);
  if (result.error) {
    assert.fail(`${what} failed in the page: ${JSON.stringify(result.error)}\n--- server log tail ---\n${warden.logs(20)}`);
  }
  return result.data;
}

function failsIn(result, status, code, what) {
  assert.equal(result.data, null, `${what}: expected no data, got ${JSON.stringify(result.data)}`);
  assert.ok(result.error, `${what}: expected an error, the call succeeded`);
  assert.equal(result.error.status, status, `${what}: status (${JSON.stringify(result.error)})`);
  if (code !== undefined) assert.equal(result.error.code, code, `${what}: code (${JSON.stringify(result.error)})`);
}

if (binaryProblem) {
  test("a Warden binary is available", () => {
    throw binaryProblem;
  });
} else {
  before(async () => {
    if (skip) return;
    const pagePort = await freePort();
    pageURL = `http://localhost:${pagePort}`;
    warden = await startWarden({
      env: ({ port }) => ({
        WARDEN_BASE_URL: `http://localhost:${port}`,
        WARDEN_CORS__ALLOW_ORIGINS_WITH_CREDENTIALS: JSON.stringify([pageURL]),
      }),
    });
    serverURL = `http://localhost:${warden.port}`;

    bundleDir = fs.mkdtempSync(path.join(warden.dir, "page-"));
    await esbuild.build({
      entryPoints: [path.join(PAGE_DIR, "page.mjs")],
      bundle: true,
      format: "iife",
      platform: "browser",
      target: "es2022",
      outfile: path.join(bundleDir, "page.js"),
      logLevel: "error",
    });
    fs.copyFileSync(path.join(PAGE_DIR, "index.html"), path.join(bundleDir, "index.html"));
    page0 = await startStatic(bundleDir, pagePort);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    });
    fs.rmSync(SCREENSHOTS, { recursive: true, force: true });
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
  }, { timeout: 120_000 });

  after(async () => {
    await browser?.close();
    await page0?.stop();
    await warden?.stop();
  });

  describe("BetterAuth passkeyClient in Chromium against Warden", { skip }, suite);
}

function suite() {
  test("1. sign up, addPasskey, sign out, signIn.passkey, list, rename, delete; then the deleted passkey no longer signs in", TEST, async () => {
    const p = await openPage("lifecycle");
    const email = uniqueEmail("passkey");
    try {
      const up = okIn(await p.call("signUp.email", { email, password: PASSWORD, name: "Passkey Person" }), "signUp.email");
      const userId = up.user.id;
      assert.ok(okIn(await p.call("getSession"), "getSession after sign-up")?.user, "signed in after sign-up (cookie from the other origin)");

      // Registration options: BetterAuth's shape, rp id from the base URL.
      const options = await p.page.evaluate(async (url) => {
        const res = await fetch(`${url}/api/auth/passkey/generate-register-options`, { credentials: "include" });
        return { status: res.status, body: await res.json() };
      }, serverURL);
      assert.equal(options.status, 200, `generate-register-options: ${JSON.stringify(options.body)}`);
      assert.equal(options.body.rp?.id, "localhost", "rp.id is the host of the base URL");
      assert.equal(typeof options.body.challenge, "string");
      assert.ok(Array.isArray(options.body.pubKeyCredParams) && options.body.pubKeyCredParams.length > 0, "pubKeyCredParams");
      const algs = options.body.pubKeyCredParams.map((x) => x.alg);
      assert.ok(algs.includes(-8) && algs.includes(-7), `EdDSA (-8) and ES256 (-7) are offered, got ${JSON.stringify(algs)}`);
      assert.deepEqual(options.body.excludeCredentials, [], "no passkeys yet");
      assert.equal(options.body.authenticatorSelection?.userVerification, AGAINST_REFERENCE ? "preferred" : "required",
        "user verification: BetterAuth's default preferred, Warden's required");

      const added = okIn(await p.call("passkey.addPasskey", { name: "Laptop" }), "passkey.addPasskey");
      assert.equal(added.name, "Laptop", `addPasskey: name, got ${JSON.stringify(added)}`);
      assert.equal(added.userId, userId, "addPasskey: userId");
      assert.equal(typeof added.id, "string");
      const creds = await p.credentials();
      assert.equal(creds.length, 1, "the authenticator holds one credential");
      assert.equal(creds[0].rpId, "localhost");
      assert.equal(creds[0].isResidentCredential, true, "a discoverable credential");
      assert.equal(b64url(added.credentialID), b64url(creds[0].credentialId), "the stored credential id is the authenticator's");
      // Chromium takes the first algorithm it supports: with BetterAuth's
      // order (-8, -7, -257) an Ed25519 key, which the server must verify.
      const keyType = createPrivateKey({ key: Buffer.from(creds[0].privateKey, "base64"), format: "der", type: "pkcs8" }).asymmetricKeyType;
      const wantKey = { [-8]: "ed25519", [-7]: "ec", [-257]: "rsa" }[algs.find((a) => [-8, -7, -257].includes(a))];
      assert.equal(keyType, wantKey, `the authenticator's key follows the first offered algorithm (${algs[0]})`);
      await p.snap("added");

      okIn(await p.call("signOut"), "signOut");
      assert.equal(okIn(await p.call("getSession"), "getSession after sign-out"), null, "signed out");

      const signedIn = okIn(await p.call("signIn.passkey"), "signIn.passkey");
      assert.equal(signedIn.user?.id, userId, `signIn.passkey: the user, got ${JSON.stringify(signedIn)}`);
      assert.equal(typeof signedIn.session?.id, "string", "signIn.passkey: a session");
      const s = okIn(await p.call("getSession"), "getSession after signIn.passkey");
      assert.equal(s?.user?.id, userId, "the passkey sign-in's session");
      assert.ok((await p.credentials())[0].signCount >= 1, "the authenticator counted a signature");
      await p.snap("signed-in-with-passkey");

      const list = okIn(await p.call("passkey.listUserPasskeys"), "passkey.listUserPasskeys");
      assert.equal(list.length, 1, `one passkey, got ${JSON.stringify(list)}`);
      assert.equal(list[0].id, added.id);
      assert.equal(list[0].name, "Laptop");
      assert.equal(list[0].userId, userId);
      assert.equal(b64url(list[0].credentialID), b64url(creds[0].credentialId));
      assert.equal(typeof list[0].publicKey, "string");
      assert.ok(list[0].counter >= 1, `the stored counter follows the authenticator's, got ${list[0].counter}`);

      const renamed = okIn(await p.call("passkey.updatePasskey", { id: added.id, name: "Work laptop" }), "passkey.updatePasskey");
      assert.equal(renamed.passkey?.name, "Work laptop", `updatePasskey: {passkey}, got ${JSON.stringify(renamed)}`);
      assert.equal(okIn(await p.call("passkey.listUserPasskeys"), "list after rename")[0].name, "Work laptop");

      failsIn(await p.call("passkey.updatePasskey", { id: "no-such-passkey", name: "x" }), 404, "PASSKEY_NOT_FOUND",
        "updatePasskey of an unknown id");
      const deleted = okIn(await p.call("passkey.deletePasskey", { id: added.id }), "passkey.deletePasskey");
      assert.deepEqual(deleted, { status: true });
      assert.deepEqual(okIn(await p.call("passkey.listUserPasskeys"), "list after delete"), []);

      okIn(await p.call("signOut"), "signOut");
      // The authenticator still offers the credential; the server no longer knows it.
      const refused = await p.call("signIn.passkey");
      failsIn(refused, 401, "PASSKEY_NOT_FOUND", "signIn.passkey with the deleted passkey");
      assert.equal(okIn(await p.call("getSession"), "getSession after the refused sign-in"), null, "no session");
      await p.snap("deleted-passkey-refused");
      assert.deepEqual(p.problems.filter((x) => !/Failed to load resource/.test(x)), [], "no page errors");
    } finally {
      await p.close();
    }
  });

  test("2. without a session: no registration options (401), and another user's passkey cannot be renamed or deleted", TEST, async () => {
    const p = await openPage("refusals");
    try {
      const none = await p.call("passkey.addPasskey", { name: "x" });
      failsIn(none, 401, undefined, "addPasskey without a session");
      failsIn(await p.call("passkey.listUserPasskeys"), 401, undefined, "listUserPasskeys without a session");

      okIn(await p.call("signUp.email", { email: uniqueEmail("pk-owner"), password: PASSWORD, name: "Owner" }), "signUp (owner)");
      const mine = okIn(await p.call("passkey.addPasskey", { name: "Owner key" }), "addPasskey (owner)");
      okIn(await p.call("signOut"), "signOut");
      okIn(await p.call("signUp.email", { email: uniqueEmail("pk-other"), password: PASSWORD, name: "Other" }), "signUp (other)");
      assert.deepEqual(okIn(await p.call("passkey.listUserPasskeys"), "the other user's list"), [], "another user's list is their own");
      failsIn(await p.call("passkey.updatePasskey", { id: mine.id, name: "stolen" }), 401, undefined, "renaming another user's passkey");
      failsIn(await p.call("passkey.deletePasskey", { id: mine.id }), 401, undefined, "deleting another user's passkey");
    } finally {
      await p.close();
    }
  });

  test("3. a passkey sign-in is complete for a user with two-factor on: no TOTP challenge after it", TEST, async () => {
    const p = await openPage("two-factor");
    const email = uniqueEmail("pk-2fa");
    try {
      const up = okIn(await p.call("signUp.email", { email, password: PASSWORD, name: "Two Factor" }), "signUp.email");
      okIn(await p.call("passkey.addPasskey", { name: "Key" }), "addPasskey");
      okIn(await p.call("signOut"), "signOut");
      // Two-factor on, from node (the password and TOTP flow of two-factor.test.mjs).
      // (It talks to 127.0.0.1 as the base URL's origin, localhost, would.)
      const node = makeClient(warden.baseURL, { origin: serverURL, plugins: [twoFactorClient()] });
      ok(await node.client.signIn.email({ email, password: PASSWORD }), "signIn.email (node)", warden);
      await turnOnTotp(node.client, PASSWORD, warden);

      const signedIn = okIn(await p.call("signIn.passkey"), "signIn.passkey for a two-factor user");
      assert.equal(signedIn.twoFactorRedirect, undefined, `no second step after a passkey, got ${JSON.stringify(signedIn)}`);
      assert.equal(signedIn.user?.id, up.user.id);
      const s = okIn(await p.call("getSession"), "getSession");
      assert.equal(s?.user?.id, up.user.id);
      assert.equal(s.user.twoFactorEnabled, true);
      await p.snap("two-factor-user-signed-in");
    } finally {
      await p.close();
    }
  });

  test("4. a signature counter that goes backwards (a cloned authenticator) is refused, and no session starts", TEST, async () => {
    const p = await openPage("clone");
    const email = uniqueEmail("pk-clone");
    try {
      okIn(await p.call("signUp.email", { email, password: PASSWORD, name: "Cloned" }), "signUp.email");
      okIn(await p.call("passkey.addPasskey", { name: "Key" }), "addPasskey");
      okIn(await p.call("signOut"), "signOut");
      okIn(await p.call("signIn.passkey"), "first signIn.passkey");
      okIn(await p.call("signOut"), "signOut");
      okIn(await p.call("signIn.passkey"), "second signIn.passkey");
      const [cred] = await p.credentials();
      assert.ok(cred.signCount >= 2, `the authenticator has signed twice, signCount ${cred.signCount}`);
      const stored = okIn(await p.call("passkey.listUserPasskeys"), "listUserPasskeys")[0].counter;
      assert.equal(stored, cred.signCount, "the server stored the authenticator's counter");
      okIn(await p.call("signOut"), "signOut");

      // The same key with its counter back at 0: the next signature says 1.
      await p.resetCounter(cred, 0);
      const refused = await p.call("signIn.passkey");
      assert.equal(refused.data, null, `a counter that went backwards should be refused, got ${JSON.stringify(refused.data)}`);
      assert.ok(refused.error, "a counter that went backwards should be refused");
      assert.ok([400, 401].includes(refused.error.status), `refused with 400 or 401, got ${JSON.stringify(refused.error)}`);
      if (AGAINST_REFERENCE) assert.equal(refused.error.code, "AUTHENTICATION_FAILED");
      assert.equal(okIn(await p.call("getSession"), "getSession after the refusal"), null, "no session");
      await p.snap("cloned-counter-refused");
    } finally {
      await p.close();
    }
  });

  test("5. a signed passkey answer works once: sent again, it is refused (single-use challenge)", TEST, async () => {
    const p = await openPage("replay");
    const email = uniqueEmail("pk-replay");
    try {
      const up = okIn(await p.call("signUp.email", { email, password: PASSWORD, name: "Replay" }), "signUp.email");
      okIn(await p.call("passkey.addPasskey", { name: "Key" }), "addPasskey");
      okIn(await p.call("signOut"), "signOut");
      const { first, second } = await p.page.evaluate((url) => window.replayAssertion(url), serverURL);
      assert.equal(first.status, 200, `the first verify-authentication: ${JSON.stringify(first)}`);
      assert.equal(first.body?.user?.id, up.user.id, "the first answer signs the user in");
      assert.ok(second.status >= 400 && second.status < 500, `the same answer again should be refused, got ${JSON.stringify(second)}`);
      if (AGAINST_REFERENCE) assert.equal(second.body?.code, "CHALLENGE_NOT_FOUND");
    } finally {
      await p.close();
    }
  });
}
