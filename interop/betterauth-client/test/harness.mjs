// Starts a real Warden process for one test file and stops it afterwards.
//
//   const warden = await startWarden();      // { baseURL, stop(), logs() }
//   ...
//   await warden.stop();
//
// The binary is $WARDEN_BIN, or else <repo>/target/debug/warden.
// Set WARDEN_TEST_VERBOSE=1 to echo the server's output to stderr as it runs.

import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** interop/betterauth-client */
export const PACKAGE_DIR = path.resolve(HERE, "..");
/** The Warden repository: two levels up from the package folder. */
export const REPO_ROOT = path.resolve(PACKAGE_DIR, "..", "..");

const STARTUP_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const OUTPUT_LINES_KEPT = 400;
const FORWARDED_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"];

/** The Warden binary to run; throws a helpful error if it is not there. */
export function wardenBinary() {
  const fromEnv = process.env.WARDEN_BIN;
  const bin = fromEnv ? path.resolve(fromEnv) : path.join(REPO_ROOT, "target", "debug", "warden");
  let stat;
  try {
    stat = fs.statSync(bin);
  } catch {
    stat = null;
  }
  if (!stat || !stat.isFile()) {
    throw new Error(
      `Warden binary not found at ${bin}` +
        (fromEnv ? " (from WARDEN_BIN)" : "") +
        `.\nBuild warden first: run \`cargo build -p warden\` in ${REPO_ROOT}` +
        " (or set WARDEN_BIN to the path of a warden binary).",
    );
  }
  return bin;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** Keeps the last lines a child process printed, from both streams. */
class OutputTail {
  constructor(limit) {
    this.limit = limit;
    this.lines = [];
    this.partial = { stdout: "", stderr: "" };
  }

  push(stream, chunk) {
    const text = this.partial[stream] + chunk.toString("utf8");
    const parts = text.split("\n");
    this.partial[stream] = parts.pop();
    for (const line of parts) this.add(stream, line);
  }

  add(stream, line) {
    this.lines.push(`[${stream}] ${line.replace(/\r$/, "")}`);
    if (this.lines.length > this.limit) this.lines.splice(0, this.lines.length - this.limit);
  }

  flush() {
    for (const stream of ["stdout", "stderr"]) {
      if (this.partial[stream]) this.add(stream, this.partial[stream]);
      this.partial[stream] = "";
    }
  }

  tail(n = 60) {
    const lines = [...this.lines];
    for (const stream of ["stdout", "stderr"]) {
      if (this.partial[stream]) lines.push(`[${stream}] ${this.partial[stream]}`);
    }
    return lines.slice(-n).join("\n") || "(no output)";
  }
}

/** The environment for the child: this process's, minus anything that could
 * leak in Warden configuration (every WARDEN_* variable, e.g. WARDEN_BIN or
 * WARDEN_CONFIG, and DATABASE_URL), plus the test settings. */
function childEnv(settings) {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith("WARDEN_") || key === "DATABASE_URL") continue;
    env[key] = value;
  }
  return { ...env, ...settings };
}

// Runs in a separate small node process, its stdin a pipe from the test
// process. That pipe closes however the test process ends, even by SIGKILL;
// the watchdog then kills Warden and removes its temporary directory.
const WATCHDOG_SOURCE = `
const pid = Number(process.argv[1]);
const dir = process.argv[2];
const reap = () => {
  try { process.kill(pid, "SIGKILL"); } catch {}
  setTimeout(() => {
    try { require("node:fs").rmSync(dir, { recursive: true, force: true, maxRetries: 5 }); } catch {}
    process.exit(0);
  }, 200);
};
process.stdin.on("end", reap);
process.stdin.on("error", reap);
process.stdin.resume();
`;

function startWatchdog(pid, dir) {
  if (pid === undefined) return null; // the spawn failed; nothing to watch
  const dog = spawn(process.execPath, ["-e", WATCHDOG_SOURCE, String(pid), dir], {
    stdio: ["pipe", "ignore", "ignore"],
  });
  dog.on("error", () => {}); // best effort only
  // Neither the watchdog nor its pipe may keep the test process alive.
  dog.unref();
  dog.stdin.on("error", () => {});
  dog.stdin.unref?.();
  return dog;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ------------------------------------------------------- the development outbox

/** The message of the line Warden's development outbox logs for each mail. */
export const OUTBOX_MESSAGE = "email (development outbox; not sent)";
const MAIL_TIMEOUT_MS = 10_000;

/** Rust's Debug form of a list of strings (`["a", "b"]`, Warden's `links`) to an array. */
export function parseDebugList(text) {
  if (Array.isArray(text)) return text;
  if (typeof text !== "string") return [];
  try {
    const parsed = JSON.parse(text);
    if (Array.isArray(parsed)) return parsed.map(String);
  } catch {
    // Debug escapes that JSON lacks (\u{..}, \'): read the quoted strings one by one.
  }
  const out = [];
  const re = /"((?:[^"\\]|\\.)*)"/g;
  let m;
  while ((m = re.exec(text))) {
    out.push(m[1].replace(/\\u\{([0-9a-fA-F]+)\}/g, (_, h) => String.fromCodePoint(parseInt(h, 16)))
      .replace(/\\(.)/g, (_, c) => ({ n: "\n", r: "\r", t: "\t", 0: "\0" })[c] ?? c));
  }
  return out;
}

/**
 * The mails a server's development outbox logged, read from its output
 * (WARDEN_LOG__FORMAT=json: one JSON object a line, the event's fields at
 * the top level). Each mail is {to, subject, links, code, line}; `code` is
 * the one-time code, when the mail carries one.
 */
class MailLog {
  constructor() {
    this.mails = [];
    /** The mails `next` has handed out. */
    this.taken = new Set();
    this.waiters = new Set();
  }

  line(text) {
    if (!text.includes(OUTBOX_MESSAGE)) return;
    let event;
    try {
      event = JSON.parse(text);
    } catch {
      return;
    }
    const fields = event.fields && typeof event.fields === "object" ? { ...event, ...event.fields } : event;
    if (fields.message !== OUTBOX_MESSAGE) return;
    this.mails.push({
      to: String(fields.to ?? ""),
      subject: String(fields.subject ?? ""),
      links: parseDebugList(fields.links),
      code: fields.code === undefined || fields.code === null ? undefined : String(fields.code),
      line: text,
    });
    for (const wake of this.waiters) wake();
  }

  /** Every mail to `address` so far. */
  to(address) {
    const want = address.toLowerCase();
    return this.mails.filter((m) => m.to.toLowerCase() === want);
  }

  untaken(address, match) {
    return this.to(address).filter((m) => !this.taken.has(m) && (!match || match(m)));
  }

  /**
   * The first mail to `address` that `next` has not returned yet (and that
   * `match`, if given, accepts), waiting up to `timeoutMs` for it to be
   * logged. Resolves to {to, subject, links, code}; rejects, with the
   * server's last lines, if none comes.
   */
  async next(address, { match, timeoutMs = MAIL_TIMEOUT_MS, logs } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const [mail] = this.untaken(address, match);
      if (mail) {
        this.taken.add(mail);
        return mail;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`no${match ? " matching" : ""} mail to ${address} in the development outbox within ${timeoutMs} ms` +
          ` (${this.to(address).length} to it in all)` +
          (logs ? `\n--- last lines of server output ---\n${logs(30)}\n--- end ---` : ""));
      }
      await new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, 250));
        this.waiters.add(done);
      });
    }
  }

  /** Waits `ms`, then asserts no mail to `address` came beyond those `next` returned. */
  async none(address, { ms = 500, match } = {}) {
    await sleep(ms);
    const extra = this.untaken(address, match);
    if (extra.length) {
      throw new Error(`expected no mail to ${address}, got ${extra.length}: ${extra.map((m) => JSON.stringify(m.subject)).join(", ")}`);
    }
  }
}

/** Splits a stream's chunks into lines for `onLine`. */
function lineSplitter(onLine) {
  let partial = "";
  return (chunk) => {
    const parts = (partial + chunk.toString("utf8")).split("\n");
    partial = parts.pop();
    for (const line of parts) onLine(line.replace(/\r$/, ""));
  };
}

/**
 * The next mail to `address` in `server`'s development outbox (see
 * MailLog.next): {to, subject, links, code}. Each call hands out the next
 * one, so a test reads its mails in the order they were sent. Options:
 * `match(mail)` skips (and leaves for later) mails it refuses, `timeoutMs`.
 */
export function nextMail(server, address, options = {}) {
  return server.mail.next(address, { logs: server.logs, ...options });
}

/**
 * Starts `warden serve` on a free port and waits for GET /healthz to answer
 * 200. By default the database is a fresh SQLite file in a temporary
 * directory; `databaseURL` points Warden at an existing one instead
 * (`postgres://user@host:port/db` or `sqlite:/path/to/file.db`). Either way
 * Warden applies its own migrations at start-up. The temporary directory
 * (Warden's working directory) is removed by `stop()`; a database given by
 * `databaseURL` is left alone.
 *
 * @param {object} [options]
 * @param {string} [options.databaseURL] sets WARDEN_DATABASE_URL
 * @param {Record<string,string> | ((where: {baseURL: string, port: number}) => Record<string,string>)} [options.env]
 *   extra environment variables (applied last, so they override everything,
 *   WARDEN_DATABASE_URL too); a function gets the address Warden will have
 *   (e.g. for a redirect URI) and returns them
 * @param {number} [options.startupTimeoutMs]
 * @returns {Promise<{baseURL: string, port: number, dir: string,
 *   databaseURL: string, bin: string, env: Record<string,string>,
 *   stop: () => Promise<void>, logs: (n?: number) => string}>}
 */
export async function startWarden({ databaseURL, env = {}, startupTimeoutMs = STARTUP_TIMEOUT_MS } = {}) {
  const bin = wardenBinary();
  const port = await freePort();
  const baseURL = `http://127.0.0.1:${port}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "warden-betterauth-"));

  const settings = {
    WARDEN_LISTEN: `127.0.0.1:${port}`,
    WARDEN_DATABASE_URL: databaseURL ?? `sqlite:${path.join(dir, "warden.db")}`,
    WARDEN_BASE_URL: baseURL,
    WARDEN_ENV: "development",
    WARDEN_PASSWORD__ARGON2__MEMORY_KIB: "1024",
    WARDEN_PASSWORD__ARGON2__ITERATIONS: "1",
    WARDEN_USER__ALLOW_DELETE: "true",
    WARDEN_LOG__FORMAT: "json",
    ...(typeof env === "function" ? env({ baseURL, port }) : env),
  };

  const output = new OutputTail(OUTPUT_LINES_KEPT);
  const verbose = Boolean(process.env.WARDEN_TEST_VERBOSE);
  const serverEnv = childEnv(settings);
  const child = spawn(bin, ["serve"], {
    cwd: dir,
    env: serverEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });

  let exited = null; // { code, signal } once the child has gone
  let spawnError = null;
  const exitPromise = new Promise((resolve) => {
    child.on("exit", (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
    child.on("error", (err) => {
      spawnError = err;
      // "exit" may never come when the spawn itself failed.
      if (child.pid === undefined) {
        exited = { code: null, signal: null };
        resolve(exited);
      }
    });
  });
  const mail = new MailLog();
  for (const stream of ["stdout", "stderr"]) {
    const split = lineSplitter((line) => mail.line(line));
    child[stream].on("data", (chunk) => {
      output.push(stream, chunk);
      split(chunk);
      if (verbose) process.stderr.write(`[warden ${stream}] ${chunk}`);
    });
  }

  // Never leave a server behind, even if the test process dies, is
  // interrupted, or is forced to exit before `stop()` runs. The handlers
  // below cover a normal exit and SIGINT/SIGTERM/SIGHUP; the watchdog covers
  // a test process that is killed outright (node --test does that to a test
  // file's process when the runner itself dies, e.g. `npm test | head`).
  const watchdog = startWatchdog(child.pid, dir);
  const killOnExit = () => {
    if (!exited) child.kill("SIGKILL");
  };
  const killOnSignal = (signal) => {
    killOnExit();
    removeSignalHandlers();
    process.kill(process.pid, signal); // die of the signal as we would have
  };
  const removeSignalHandlers = () => {
    for (const signal of FORWARDED_SIGNALS) process.off(signal, killOnSignal);
  };
  process.on("exit", killOnExit);
  for (const signal of FORWARDED_SIGNALS) process.on(signal, killOnSignal);

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      if (!exited) {
        child.kill("SIGTERM");
        let timer;
        const timeout = new Promise((resolve) => {
          timer = setTimeout(() => resolve("timeout"), STOP_TIMEOUT_MS);
        });
        const outcome = await Promise.race([exitPromise, timeout]);
        clearTimeout(timer); // a pending timer would keep the test process alive
        if (outcome === "timeout") {
          child.kill("SIGKILL");
          await exitPromise;
        }
      }
    } finally {
      watchdog?.kill("SIGKILL");
      process.off("exit", killOnExit);
      removeSignalHandlers();
      output.flush();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };

  const describeFailure = (why) =>
    new Error(
      `Warden did not start: ${why}\n` +
        `  binary: ${bin}\n  url: ${baseURL}\n  dir: ${dir}\n` +
        `  database: ${settings.WARDEN_DATABASE_URL}\n` +
        `--- last lines of warden output ---\n${output.tail(60)}\n--- end of warden output ---`,
    );

  const deadline = Date.now() + startupTimeoutMs;
  let lastProblem = "no answer yet";
  for (;;) {
    if (spawnError && child.pid === undefined) {
      await stop();
      throw describeFailure(`could not spawn ${bin}: ${spawnError.message}`);
    }
    if (exited) {
      const how = exited.signal ? `signal ${exited.signal}` : `exit code ${exited.code}`;
      await stop();
      throw describeFailure(`the process ended early (${how})`);
    }
    try {
      const res = await fetch(`${baseURL}/healthz`, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status === 200) break;
      lastProblem = `GET /healthz answered ${res.status}`;
    } catch (err) {
      lastProblem = `GET /healthz failed: ${err.cause?.code ?? err.cause?.message ?? err.message}`;
    }
    if (Date.now() > deadline) {
      await stop();
      throw describeFailure(`no 200 from GET /healthz within ${startupTimeoutMs} ms (last: ${lastProblem})`);
    }
    await sleep(100);
  }

  return {
    baseURL,
    port,
    dir,
    databaseURL: settings.WARDEN_DATABASE_URL,
    /** The binary and the environment the server runs with (for `runWarden`). */
    bin,
    env: serverEnv,
    stop,
    /** The last `n` lines the server printed (for failure messages). */
    logs: (n = 60) => output.tail(n),
    /** The development outbox's mails (see `nextMail`). */
    mail,
  };
}

// ------------------------------------------------------ the command line

const COMMAND_TIMEOUT_MS = 20_000;

/**
 * Runs `<binary> ...args` once, as an operator would next to the running
 * `server` (from startWarden): same binary, same environment (so the same
 * database and settings), same working directory. Resolves to its
 * {stdout, stderr}; rejects, with both, if it fails or takes longer than
 * 20 s.
 */
export function runWarden(server, args, { timeoutMs = COMMAND_TIMEOUT_MS } = {}) {
  return new Promise((resolve, reject) => {
    execFile(server.bin, args, { cwd: server.dir, env: server.env, timeout: timeoutMs, killSignal: "SIGKILL" },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr });
        const how = err.killed ? `no exit within ${timeoutMs} ms` : err.code !== undefined ? `exit code ${err.code}` : err.message;
        reject(new Error(
          `\`${path.basename(server.bin)} ${args.join(" ")}\` failed (${how})\n` +
            `--- stdout ---\n${stdout || "(none)"}\n--- stderr ---\n${stderr || "(none)"}\n--- end ---`,
          { cause: err },
        ));
      });
  });
}

/**
 * Makes the user with this email an admin: `warden user set-role <email>
 * admin` on the server's database while it runs. Sessions made before may
 * still carry the old role; sign the user in again before admin calls.
 */
export async function makeAdmin(server, email) {
  return runWarden(server, ["user", "set-role", email, "admin"]);
}

// ------------------------------------------------- local OpenID Connect provider

/** crates/warden/tests/support/oidc: the local provider (see its README.md). */
export const OIDC_PROVIDER_DIR = path.join(REPO_ROOT, "crates", "warden", "tests", "support", "oidc");

function mtime(file) {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return null;
  }
}

/** Runs `npm ci` in the provider's folder when its node_modules is missing or
 * older than package-lock.json (as crates/warden/tests/it/oidc_provider.rs does). */
async function ensureOidcProviderInstalled() {
  const installed = mtime(path.join(OIDC_PROVIDER_DIR, "node_modules", ".package-lock.json"));
  const locked = mtime(path.join(OIDC_PROVIDER_DIR, "package-lock.json"));
  if (installed !== null && locked !== null && installed >= locked) return;
  const npm = process.env.WARDEN_TEST_NPM ?? (process.platform === "win32" ? "npm.cmd" : "npm");
  await new Promise((resolve, reject) => {
    const child = spawn(npm, ["ci", "--no-audit", "--no-fund", "--loglevel=error"], {
      cwd: OIDC_PROVIDER_DIR,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (out += c));
    child.on("error", (err) => reject(new Error(`cannot run \`${npm} ci\` in ${OIDC_PROVIDER_DIR}: ${err.message}`)));
    child.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`\`${npm} ci\` in ${OIDC_PROVIDER_DIR} failed (exit ${code}):\n${out}`)),
    );
  });
}

/**
 * Starts the local OpenID Connect provider (crates/warden/tests/support/oidc,
 * `node server.mjs --exit-with-stdin`) on a random port of 127.0.0.1, after
 * `npm ci` there if needed. It exits when this process ends (its stdin closes).
 *
 * @returns {Promise<{issuer: string, port: number,
 *   setNext: (control: object) => Promise<object>, stats: () => Promise<object>,
 *   stop: () => Promise<void>}>}
 *   `setNext` POSTs to `/__control`: the claims (`sub`, `email`,
 *   `email_verified`, `name`, `picture`), `deny`, `id_token_overrides`, ...
 *   for the next authorization only.
 */
export async function startOidcProvider({ startupTimeoutMs = STARTUP_TIMEOUT_MS } = {}) {
  await ensureOidcProviderInstalled();
  const node = process.env.WARDEN_TEST_NODE ?? process.execPath;
  const child = spawn(node, ["server.mjs", "--exit-with-stdin"], {
    cwd: OIDC_PROVIDER_DIR,
    stdio: ["pipe", "pipe", "pipe"],
  });
  const output = new OutputTail(100);
  child.stderr.on("data", (chunk) => output.push("stderr", chunk));
  // Its stdin is a pipe from this process: it closes however this process ends.
  child.stdin.on("error", () => {});
  const killOnExit = () => child.kill("SIGKILL");
  process.on("exit", killOnExit);

  let exited = false;
  const exitPromise = new Promise((resolve) => child.on("exit", () => resolve((exited = true))));
  const ready = await new Promise((resolve, reject) => {
    let buffered = "";
    const timer = setTimeout(() => finish(new Error(`no ready line within ${startupTimeoutMs} ms`)), startupTimeoutMs);
    const finish = (err, value) => {
      clearTimeout(timer);
      child.stdout.off("data", onData);
      child.off("exit", onExit);
      child.stdout.resume(); // keep draining stdout
      if (err) {
        child.kill("SIGKILL");
        reject(new Error(`the OIDC provider did not start: ${err.message}\n${output.tail(30)}`));
      } else resolve(value);
    };
    const onData = (chunk) => {
      buffered += chunk.toString("utf8");
      const nl = buffered.indexOf("\n");
      if (nl < 0) return;
      try {
        finish(null, JSON.parse(buffered.slice(0, nl)));
      } catch (err) {
        finish(new Error(`unexpected first line ${JSON.stringify(buffered.slice(0, nl))}: ${err.message}`));
      }
    };
    const onExit = (code, signal) => finish(new Error(`it exited (${signal ?? `code ${code}`})`));
    child.stdout.on("data", onData);
    child.on("exit", onExit);
    child.on("error", (err) => finish(err));
  });
  const issuer = ready.issuer;

  const call = async (method, pathName, body) => {
    const res = await fetch(`${issuer}${pathName}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`OIDC provider: ${method} ${pathName} answered ${res.status}: ${text}`);
    return JSON.parse(text);
  };

  return {
    issuer,
    port: ready.port,
    /** Sets what the next authorization returns (POST /__control). */
    setNext: (control) => call("POST", "/__control", control),
    /** Request counters (GET /__stats). */
    stats: () => call("GET", "/__stats"),
    async stop() {
      process.off("exit", killOnExit);
      if (!exited) {
        child.stdin.end();
        child.kill("SIGTERM");
        let timer;
        const timeout = new Promise((resolve) => {
          timer = setTimeout(resolve, STOP_TIMEOUT_MS);
        });
        await Promise.race([exitPromise, timeout]);
        clearTimeout(timer); // a pending timer would keep the test process alive
        if (!exited) {
          child.kill("SIGKILL");
          await exitPromise;
        }
      }
    },
  };
}
