// The page script of passkey.test.mjs, bundled by esbuild into the page:
// BetterAuth's own client with the passkey plugin, as an app would use them.
// `window.auth(baseURL)` makes the client; the test then calls its methods
// through page.evaluate. Every call is written to the page (#log), so the
// screenshots show what happened.

import { createAuthClient } from "better-auth/client";
import { passkeyClient } from "@better-auth/passkey/client";
import { startAuthentication } from "@simplewebauthn/browser";

const log = (line) => {
  const el = document.getElementById("log");
  el.textContent += `${line}\n`;
};

window.auth = (baseURL) => {
  window.authClient = createAuthClient({
    baseURL,
    plugins: [passkeyClient()],
    // The server is on another origin: send and accept its cookies.
    fetchOptions: { credentials: "include" },
  });
  log(`client for ${baseURL}`);
  return true;
};

/** Runs `authClient.<path>(...args)` and logs the outcome; returns {data, error}. */
window.call = async (path, ...args) => {
  let target = window.authClient;
  const parts = path.split(".");
  const name = parts.pop();
  for (const p of parts) target = target[p];
  const result = await target[name](...args);
  const { data, error } = result ?? {};
  log(`${path}: ${error ? `error ${error.status} ${error.code ?? ""} ${error.message ?? ""}` : "ok"}`);
  if (data?.user?.email) document.getElementById("who").textContent = `signed in as ${data.user.email}`;
  if (path === "signOut" && !error) document.getElementById("who").textContent = "signed out";
  // Plain JSON: what crosses into the test.
  return JSON.parse(JSON.stringify({ data: data ?? null, error: error ?? null }));
};

/**
 * The passkey sign-in by hand, as passkeyClient() does it (options, then the
 * authenticator, then verify-authentication), but with the same signed
 * answer sent twice: the second must be refused (single-use challenge).
 */
window.replayAssertion = async (baseURL) => {
  const api = `${baseURL}/api/auth/passkey`;
  const options = await (await fetch(`${api}/generate-authenticate-options`, { credentials: "include" })).json();
  const { clientExtensionResults, ...response } = await startAuthentication({ optionsJSON: options });
  const post = async () => {
    const res = await fetch(`${api}/verify-authentication`, {
      method: "POST",
      credentials: "include",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ response }),
    });
    return { status: res.status, body: await res.json().catch(() => null) };
  };
  const first = await post();
  const second = await post();
  log(`verify-authentication twice: ${first.status}, then ${second.status}`);
  return { first, second };
};
