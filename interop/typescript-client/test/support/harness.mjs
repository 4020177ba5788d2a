// What the tests share: the warden binary (`gen client` and `serve`), tsc,
// npm, temporary folders, the development outbox and TOTP codes.
//
// The binary is $WARDEN_BIN, or else <repo>/target/debug/warden.
// Set WARDEN_TEST_VERBOSE=1 to echo the server's output to stderr as it runs.

import { execFile, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** interop/typescript-client */
export const PACKAGE_DIR = path.resolve(HERE, "..", "..");
/** The Warden repository: two levels up from the package folder. */
export const REPO_ROOT = path.resolve(PACKAGE_DIR, "..", "..");
/** The example app whose src/lib/client.ts is the generated client, committed. */
export const FRONTEND_DIR = path.join(REPO_ROOT, "examples", "frontend");
export const COMMITTED_CLIENT = path.join(FRONTEND_DIR, "src", "lib", "client.ts");
export const FIXTURES_DIR = path.join(PACKAGE_DIR, "test", "fixtures");

/** The command that writes the committed client (from the repository root). */
export const REGENERATE =
  "cargo build -p warden && target/debug/warden gen client --output examples/frontend/src/lib/client.ts";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- processes

/** The Warden binary to run; throws a helpful error if it is not there. */
export function wardenBinary() {
  const fromEnv = process.env.WARDEN_BIN;
  const bin = fromEnv ? path.resolve(fromEnv) : path.join(REPO_ROOT, "target", "debug", "warden");
  if (!fs.statSync(bin, { throwIfNoEntry: false })?.isFile()) {
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

/** This process's environment minus anything that would configure Warden
 * (every WARDEN_* variable and DATABASE_URL), plus `extra`. */
export function cleanEnv(extra = {}) {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith("WARDEN_") || key === "DATABASE_URL") continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

/** A new temporary folder; removed by `rm()`. */
export function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `warden-ts-${prefix}-`));
  return { dir, rm: () => fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 }) };
}

/**
 * Runs a command to its end. Resolves to {code, stdout, stderr} (code 0 or
 * not: the caller decides); rejects only if it cannot start or times out.
 */
export function run(file, args, { cwd, env, timeoutMs = 120_000 } = {}) {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { cwd, env: env ?? process.env, timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err && (err.killed || typeof err.code !== "number")) {
          const how = err.killed ? `no exit within ${timeoutMs} ms` : err.message;
          reject(new Error(`\`${file} ${args.join(" ")}\` failed (${how})\n${stdout}\n${stderr}`, { cause: err }));
        } else {
          resolve({ code: err ? err.code : 0, stdout, stderr });
        }
      },
    );
  });
}

/** Like `run`, but a non-zero exit is an error showing both streams. */
export async function runOk(file, args, options) {
  const res = await run(file, args, options);
  if (res.code !== 0) {
    throw new Error(
      `\`${path.basename(file)} ${args.join(" ")}\` exited with ${res.code}` +
        (options?.cwd ? ` (in ${options.cwd})` : "") +
        `\n--- stdout ---\n${res.stdout || "(none)"}\n--- stderr ---\n${res.stderr || "(none)"}\n--- end ---`,
    );
  }
  return res;
}

// ------------------------------------------------------------ warden gen client

/**
 * `warden gen client ...args`, run as from a fresh checkout: in an empty
 * folder (no warden.toml) with no WARDEN_* variables, so with the built-in
 * configuration. Resolves to its stdout.
 */
export async function genClient(args = []) {
  const bin = wardenBinary();
  const { dir, rm } = tempDir("gen");
  try {
    const res = await run(bin, ["gen", "client", ...args], { cwd: dir, env: cleanEnv(), timeoutMs: 60_000 });
    if (res.code !== 0) {
      throw new Error(
        `\`warden gen client ${args.join(" ")}\` exited with ${res.code}.\n` +
          `  binary: ${bin}\n` +
          "  (does this build have the command? rebuild with `cargo build -p warden`)\n" +
          `--- stderr ---\n${res.stderr || "(none)"}\n--- end ---`,
      );
    }
    if (res.stderr.trim() !== "" && process.env.WARDEN_TEST_VERBOSE) process.stderr.write(res.stderr);
    return res.stdout;
  } finally {
    rm();
  }
}

// ------------------------------------------------------------------ tsc, npm

const TSC = path.join(PACKAGE_DIR, "node_modules", "typescript", "bin", "tsc");

/** The strict flags the generated client must pass with no diagnostic. */
export const STRICT_FLAGS = [
  "--strict",
  "--noUnusedLocals",
  "--noUnusedParameters",
  "--noFallthroughCasesInSwitch",
  "--isolatedModules",
  "--target", "ES2022",
  "--lib", "ES2022,DOM,DOM.Iterable",
  "--module", "ESNext",
  "--moduleResolution", "bundler",
  "--pretty", "false",
];

/** Runs tsc; resolves to {code, output, diagnostics: [{file, line, col, code, text}]}. */
export async function tsc(args, { cwd } = {}) {
  if (!fs.existsSync(TSC)) throw new Error(`${TSC} is missing: run \`npm ci\` in ${PACKAGE_DIR}`);
  const res = await run(process.execPath, [TSC, ...args], { cwd, timeoutMs: 120_000 });
  const output = (res.stdout + res.stderr).trim();
  const diagnostics = [];
  for (const line of output.split("\n")) {
    const m = /^(.*)\((\d+),(\d+)\): error (TS\d+): (.*)$/.exec(line.trim());
    if (m) diagnostics.push({ file: m[1], line: Number(m[2]), col: Number(m[3]), code: m[4], text: m[5] });
  }
  return { code: res.code, output, diagnostics };
}

/**
 * Compiles a generated client (its TypeScript source) to JavaScript in
 * `<dir>/lib/client.js` (with a package.json making `dir` ESM) and imports it.
 */
export async function compileClient(source, dir) {
  const lib = path.join(dir, "lib");
  fs.mkdirSync(lib, { recursive: true });
  fs.writeFileSync(path.join(dir, "package.json"), '{"type":"module"}\n');
  fs.writeFileSync(path.join(lib, "client.ts"), source);
  const res = await tsc([...STRICT_FLAGS, "--outDir", lib, path.join(lib, "client.ts")]);
  if (res.code !== 0) throw new Error(`tsc could not compile the generated client:\n${res.output}`);
  return import(pathToFileURL(path.join(lib, "client.js")).href);
}

/** Runs `npm ci` in `dir` when node_modules is missing or older than package-lock.json. */
export async function ensureNpmInstalled(dir) {
  const mtime = (f) => fs.statSync(f, { throwIfNoEntry: false })?.mtimeMs ?? null;
  const installed = mtime(path.join(dir, "node_modules", ".package-lock.json"));
  const locked = mtime(path.join(dir, "package-lock.json"));
  if (installed !== null && locked !== null && installed >= locked) return;
  const npm = process.env.WARDEN_TEST_NPM ?? (process.platform === "win32" ? "npm.cmd" : "npm");
  await runOk(npm, ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: dir, timeoutMs: 300_000 });
}

// -------------------------------------------------------------- warden serve

/** Keeps every line a child printed on stderr and stdout. */
class Output {
  constructor() {
    this.lines = [];
    this.partial = { stdout: "", stderr: "" };
  }
  push(stream, chunk) {
    const parts = (this.partial[stream] + chunk.toString("utf8")).split("\n");
    this.partial[stream] = parts.pop();
    for (const line of parts) this.lines.push({ stream, line: line.replace(/\r$/, "") });
  }
  tail(n = 60) {
    return this.lines.slice(-n).map((l) => `[${l.stream}] ${l.line}`).join("\n") || "(no output)";
  }
}

/**
 * Starts `warden serve` on a free port of 127.0.0.1 with a fresh SQLite
 * database in a temporary folder (its working directory), the dashboard off,
 * JSON logs and cheap password hashing, and waits for GET /healthz.
 *
 * @param {object} [options]
 * @param {Record<string,string> | ((where: {baseURL: string, port: number}) => Record<string,string>)} [options.env]
 *   extra WARDEN_* settings (last, so they override the defaults here)
 * @returns {Promise<{baseURL: string, port: number, stop: () => Promise<void>,
 *   logs: (n?: number) => string, mail: (query: {to: string, template?: string, after?: number}) => Promise<object>,
 *   mailCount: () => number}>}
 */
export async function startWarden({ env = {} } = {}) {
  const bin = wardenBinary();
  const port = await freePort();
  const baseURL = `http://127.0.0.1:${port}`;
  const { dir, rm } = tempDir("serve");
  const settings = {
    WARDEN_BASE_URL: baseURL,
    WARDEN_ENV: "development",
    WARDEN_DASHBOARD__ENABLED: "false",
    WARDEN_LOG__FORMAT: "json",
    WARDEN_PASSWORD__ARGON2__MEMORY_KIB: "1024",
    WARDEN_PASSWORD__ARGON2__ITERATIONS: "1",
    ...(typeof env === "function" ? env({ baseURL, port }) : env),
  };
  const args = ["serve", "--listen", `127.0.0.1:${port}`, "--database-url", `sqlite:${path.join(dir, "warden.db")}`];
  const child = spawn(bin, args, { cwd: dir, env: cleanEnv(settings), stdio: ["ignore", "pipe", "pipe"] });

  const output = new Output();
  const verbose = Boolean(process.env.WARDEN_TEST_VERBOSE);
  for (const stream of ["stdout", "stderr"]) {
    child[stream].on("data", (chunk) => {
      output.push(stream, chunk);
      if (verbose) process.stderr.write(`[warden ${stream}] ${chunk}`);
    });
  }
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.on("exit", (code, signal) => resolve((exited = { code, signal })));
    child.on("error", (err) => resolve((exited = { code: null, signal: null, err })));
  });
  // Never leave a server behind, even when the test process dies.
  const killOnExit = () => {
    if (!exited) child.kill("SIGKILL");
  };
  process.on("exit", killOnExit);

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.off("exit", killOnExit);
    if (!exited) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exitPromise;
      clearTimeout(timer);
    }
    rm();
  };

  const deadline = Date.now() + 30_000;
  let last = "no answer yet";
  for (;;) {
    if (exited) {
      const why = exited.err ? exited.err.message : exited.signal ? `signal ${exited.signal}` : `exit code ${exited.code}`;
      await stop();
      throw new Error(`warden serve ended early (${why})\n--- its output ---\n${output.tail()}\n--- end ---`);
    }
    try {
      const res = await fetch(`${baseURL}/healthz`, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status === 200) break;
      last = `GET /healthz answered ${res.status}`;
    } catch (err) {
      last = `GET /healthz failed: ${err.cause?.code ?? err.message}`;
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`warden serve did not answer within 30 s (${last})\n--- its output ---\n${output.tail()}\n--- end ---`);
    }
    await sleep(100);
  }

  /** The development outbox's log lines, parsed: {to, subject, template, links}. */
  const mails = () =>
    output.lines
      .filter((l) => l.line.includes("development outbox"))
      .map((l) => {
        try {
          return JSON.parse(l.line);
        } catch {
          return null;
        }
      })
      .filter((e) => e && typeof e.to === "string" && e.links !== undefined)
      .map((e) => ({
        to: e.to,
        subject: e.subject,
        template: e.span?.template ?? e.template,
        // `links` is logged as a debug list: "[\"http://...\"]".
        links: (Array.isArray(e.links) ? e.links.join(" ") : String(e.links)).match(/https?:\/\/[^\s"\\\]]+/g) ?? [],
      }));

  return {
    baseURL,
    port,
    stop,
    logs: (n) => output.tail(n),
    /** How many outbox messages were logged so far (for `mail({after})`). */
    mailCount: () => mails().length,
    /**
     * Waits (5 s at most) for an outbox message to `to` (and of `template`:
     * password-reset, verify-email, change-email, ...) logged after the
     * first `after` ones; resolves to it, with `token`: its link's `token`.
     */
    async mail({ to, template, after = 0 }) {
      const until = Date.now() + 5_000;
      for (;;) {
        const found = mails()
          .slice(after)
          .find((m) => m.to === to && (template === undefined || m.template === template));
        if (found) {
          const link = found.links.find((l) => l.includes("token="));
          return { ...found, token: link ? new URL(link).searchParams.get("token") : null };
        }
        if (Date.now() > until) {
          throw new Error(
            `no outbox mail to ${to}${template ? ` (${template})` : ""} within 5 s; ` +
              `seen: ${JSON.stringify(mails())}\n--- warden output ---\n${output.tail(30)}`,
          );
        }
        await sleep(50);
      }
    },
  };
}

// ---------------------------------------------------------------------- TOTP

function base32Decode(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of text.replace(/=+$/, "").toUpperCase()) {
    const i = alphabet.indexOf(c);
    if (i < 0) throw new Error(`not base32: ${text}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** RFC 6238 TOTP (HMAC-SHA1, 30 s steps): the code of `step` for a key. */
export function totpCode(key, step, digits = 6) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const binary =
    ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
  return String(binary % 10 ** digits).padStart(digits, "0");
}

/** The secret of an `otpauth://totp/...?secret=BASE32` URI, as bytes. */
export function totpKey(uri) {
  const secret = new URL(uri).searchParams.get("secret");
  if (!secret) throw new Error(`no secret in ${uri}`);
  return base32Decode(secret);
}

/** The current 30-second step. */
export const totpStep = () => Math.floor(Date.now() / 1000 / 30);
