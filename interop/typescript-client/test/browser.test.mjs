// examples/frontend, built with Vite (its own `npm run build`: tsc --noEmit
// && vite build) and served by `vite preview`, in Chromium (playwright-core)
// against a live warden on another origin, as the tutorial runs it beside
// localhost:5173. Screenshots go to <repo>/target/tmp/frontend-screenshots/.
//
// Chromium: $CHROMIUM, else /usr/bin/chromium (Debian's: apt-get install
// chromium). Without it the test is skipped, unless CI is set.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import { chromium } from "playwright-core";

import {
  FRONTEND_DIR,
  REPO_ROOT,
  ensureNpmInstalled,
  freePort,
  runOk,
  startWarden,
  tempDir,
  totpCode,
  totpKey,
  totpStep,
} from "./support/harness.mjs";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SCREENSHOTS = path.join(REPO_ROOT, "target", "tmp", "frontend-screenshots");
const PASSWORD = "SecurePass123!";

const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium && process.env.CI) {
  throw new Error(`chromium not found at ${CHROMIUM}; CI needs it: apt-get install -y --no-install-recommends chromium`);
}
const skip = haveChromium
  ? false
  : `chromium not found at ${CHROMIUM} (apt-get install -y --no-install-recommends chromium, or set CHROMIUM); skipped outside CI`;

let warden;
let preview; // the `vite preview` child process
let appURL;
let dist;
let browser;

/** Starts `vite preview` of `outDir` on 127.0.0.1:port and waits for it to answer. */
async function startPreview(outDir, port) {
  const vite = path.join(FRONTEND_DIR, "node_modules", "vite", "bin", "vite.js");
  const child = spawn(
    process.execPath,
    [vite, "preview", "--outDir", outDir, "--host", "127.0.0.1", "--port", String(port), "--strictPort"],
    { cwd: FRONTEND_DIR, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout.on("data", (c) => (output += c));
  child.stderr.on("data", (c) => (output += c));
  const killOnExit = () => child.kill("SIGKILL");
  process.on("exit", killOnExit);
  let exited = false;
  const exitPromise = new Promise((resolve) => child.on("exit", () => resolve((exited = true))));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`vite preview ended early:\n${output}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`vite preview did not answer on ${url} within 30 s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    async stop() {
      process.off("exit", killOnExit);
      if (!exited) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await exitPromise;
        clearTimeout(timer);
      }
    },
  };
}

before(async () => {
  if (skip) return;
  const appPort = await freePort();
  appURL = `http://127.0.0.1:${appPort}`;
  // The app's origin may send credentials (the bearer token), as Warden's
  // default allows http://localhost:5173.
  warden = await startWarden({ env: { WARDEN_CORS__ALLOW_ORIGINS_WITH_CREDENTIALS: `["${appURL}"]` } });

  await ensureNpmInstalled(FRONTEND_DIR);
  dist = tempDir("dist");
  await runOk(process.env.WARDEN_TEST_NPM ?? "npm", ["run", "build", "--", "--outDir", dist.dir, "--emptyOutDir"], {
    cwd: FRONTEND_DIR,
    env: { ...process.env, VITE_WARDEN_URL: warden.baseURL },
  });
  preview = await startPreview(dist.dir, appPort);
  assert.equal(preview.url, appURL);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  fs.rmSync(SCREENSHOTS, { recursive: true, force: true });
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await preview?.stop();
  await warden?.stop();
  dist?.rm();
});

/** GET /profile with this token, from node: the status. */
async function profileStatus(token) {
  const res = await fetch(`${warden.baseURL}/profile`, { headers: { authorization: `Bearer ${token}` } });
  await res.arrayBuffer();
  return res.status;
}

test("the example app: sign up, reload, edit the profile, revoke a session, sign out, sign in with a code", { skip, timeout: 120_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  let shot = 0;
  const snap = (name) => page.screenshot({ path: path.join(SCREENSHOTS, `${String(++shot).padStart(2, "0")}-${name}.png`) });
  const token = () => page.evaluate(() => localStorage.getItem("authToken"));
  const sessionItems = page.locator("#sessions li");
  const address = `ada-${process.pid}-${Date.now()}@example.com`;

  try {
    await page.goto(appURL);
    await page.locator("#signed-out").waitFor();
    await snap("signed-out");

    // Sign up: the token goes to localStorage, the profile shows.
    const signUp = page.locator("#sign-up");
    await signUp.getByLabel("Name").fill("Ada Lovelace");
    await signUp.getByLabel("Email").fill(address);
    await signUp.getByLabel("Password").fill(PASSWORD);
    await signUp.getByRole("button", { name: "Sign up" }).click();
    await page.locator("#signed-in").waitFor();
    assert.equal(await page.locator("#profile-name").textContent(), "Ada Lovelace");
    assert.equal(await page.locator("#profile-email").textContent(), address);
    const first = await token();
    assert.match(first ?? "", /^[A-Za-z0-9]{32}$/, "the session token is in localStorage under authToken");
    assert.equal(await sessionItems.count(), 1);
    await snap("signed-up");

    // A reload keeps the session.
    await page.reload();
    await page.locator("#signed-in").waitFor();
    assert.equal(await page.locator("#profile-name").textContent(), "Ada Lovelace");
    assert.equal(await token(), first);
    await snap("reloaded");

    // Edit the name: shown, and saved on the server.
    await page.locator("#edit-name").fill("Ada King");
    await page.getByRole("button", { name: "Save" }).click();
    await page.locator("#profile-name", { hasText: "Ada King" }).waitFor();
    await page.locator("#message", { hasText: "Profile saved." }).waitFor();
    const me = await (await fetch(`${warden.baseURL}/profile`, { headers: { authorization: `Bearer ${first}` } })).json();
    assert.equal(me.name, "Ada King");
    await snap("profile-edited");

    // A second session, signed in from elsewhere (node), appears after a refresh.
    const res = await fetch(`${warden.baseURL}/auth/signin`, {
      method: "POST",
      headers: { "content-type": "application/json", "user-agent": "second-device/1.0" },
      body: JSON.stringify({ email: address, password: PASSWORD }),
    });
    assert.equal(res.status, 200);
    const second = (await res.json()).session.token;
    await page.getByRole("button", { name: "Refresh" }).click();
    await sessionItems.nth(1).waitFor();
    assert.equal(await sessionItems.count(), 2);
    const other = page.locator("#sessions li", { hasText: "second-device/1.0" });
    assert.equal(await other.count(), 1);
    assert.equal(await page.locator("#sessions li.current").count(), 1);
    await snap("two-sessions");

    // Revoke it in the UI: the list updates, the server refuses its token.
    await other.getByRole("button", { name: "Revoke" }).click();
    await page.locator("#message", { hasText: "Session revoked." }).waitFor();
    assert.equal(await sessionItems.count(), 1);
    assert.equal(await page.locator("#sessions li.current").count(), 1);
    assert.equal(await profileStatus(second), 401);
    assert.equal(await profileStatus(first), 200);
    await snap("session-revoked");

    // Sign out: back to the sign-in form, no token kept, the old one refused.
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.locator("#signed-out").waitFor();
    await page.locator("#sign-in").waitFor();
    assert.equal(await token(), null);
    assert.equal(await profileStatus(first), 401);
    await snap("signed-out-again");

    // And signing in again from the form works.
    const signIn = page.locator("#sign-in");
    await signIn.getByLabel("Email").fill(address);
    await signIn.getByLabel("Password").fill(PASSWORD);
    await signIn.getByRole("button", { name: "Sign in" }).click();
    await page.locator("#signed-in").waitFor();
    assert.equal(await page.locator("#profile-name").textContent(), "Ada King");
    await snap("signed-in");

    // Two-factor on (set up from node with the page's token): signing in
    // asks for the code, and the code completes it.
    const post = async (route, token, body) => {
      const r = await fetch(`${warden.baseURL}${route}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      });
      assert.equal(r.status, 200, `${route}: ${r.status}`);
      return r.json();
    };
    const key = totpKey((await post("/auth/two-factor/enable", await token(), { password: PASSWORD })).totpURI);
    const step = totpStep();
    await post("/auth/two-factor/confirm", await token(), { code: totpCode(key, step) });
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.locator("#sign-in").waitFor();
    await signIn.getByLabel("Email").fill(address);
    await signIn.getByLabel("Password").fill(PASSWORD);
    await signIn.getByRole("button", { name: "Sign in" }).click();
    const twoFactor = page.locator("#two-factor");
    await twoFactor.waitFor();
    assert.equal(await token(), null, "no session before the code");
    await snap("two-factor-code");
    await twoFactor.getByLabel(/code/i).fill(totpCode(key, step + 1)); // a code works once: the next step's
    await twoFactor.getByRole("button", { name: "Verify" }).click();
    await page.locator("#signed-in").waitFor();
    assert.equal(await page.locator("#profile-name").textContent(), "Ada King");
    assert.equal(await profileStatus(await token()), 200);
    await snap("signed-in-with-code");
  } catch (err) {
    await snap("failure").catch(() => {});
    err.message += `\n(screenshots in ${SCREENSHOTS}; warden's last lines:\n${warden.logs(20)})`;
    throw err;
  } finally {
    await context.close();
  }
  assert.deepEqual(problems, [], "the page logged errors");
});
