// `warden gen client`: what it prints is the committed client, always the
// same, compiles under tsc --strict, types the API so that wrong calls do not
// compile and the tutorial's snippet does; `--lang openapi` is the document.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import {
  COMMITTED_CLIENT,
  FIXTURES_DIR,
  REGENERATE,
  REPO_ROOT,
  STRICT_FLAGS,
  genClient,
  tempDir,
  tsc,
} from "./support/harness.mjs";

let client; // the TypeScript that `warden gen client` prints on stdout
let work; // a temporary folder: lib/client.ts and the fixtures beside it

before(async () => {
  client = await genClient();
  work = tempDir("typecheck");
  fs.mkdirSync(path.join(work.dir, "lib"));
  fs.writeFileSync(path.join(work.dir, "lib", "client.ts"), client);
});

after(() => work?.rm());

test("the output is the committed examples/frontend/src/lib/client.ts, byte for byte", () => {
  const committed = fs.readFileSync(COMMITTED_CLIENT, "utf8");
  if (committed === client) return;
  const a = committed.split("\n");
  const b = client.split("\n");
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  assert.fail(
    `${path.relative(REPO_ROOT, COMMITTED_CLIENT)} is not what \`warden gen client\` prints ` +
      `(first difference at line ${i + 1}:\n  committed: ${JSON.stringify(a[i] ?? "(end of file)")}\n` +
      `  generated: ${JSON.stringify(b[i] ?? "(end of file)")}).\n` +
      `Regenerate it, from the repository root with no warden.toml there and no WARDEN_* variables set:\n  ${REGENERATE}`,
  );
});

test("the output is deterministic: two more runs, and --output, write the same bytes", async () => {
  assert.equal(await genClient(), client, "a second run of `warden gen client` printed something else");
  const out = tempDir("output");
  try {
    const file = path.join(out.dir, "nested", "client.ts");
    fs.mkdirSync(path.dirname(file));
    const stdout = await genClient(["--output", file]);
    assert.equal(stdout, "", "with --output nothing goes to stdout");
    assert.equal(fs.readFileSync(file, "utf8"), client, "--output wrote something other than stdout");
  } finally {
    out.rm();
  }
});

test("it compiles under tsc --strict --noUnusedLocals (ES2022, DOM) with no diagnostic", async () => {
  const res = await tsc([...STRICT_FLAGS, "--noEmit", path.join(work.dir, "lib", "client.ts")]);
  assert.equal(res.output, "", `tsc reported:\n${res.output}`);
  assert.equal(res.code, 0);
});

// The fixtures next to lib/client.ts, as an app would have them.
const FIXTURE_FLAGS = [
  "--strict",
  "--target", "ES2022",
  "--lib", "ES2022,DOM,DOM.Iterable",
  "--module", "ESNext",
  "--moduleResolution", "bundler",
  "--pretty", "false",
  "--noEmit",
];

function copyFixture(name, transform = (s) => s) {
  const text = transform(fs.readFileSync(path.join(FIXTURES_DIR, name), "utf8"));
  const file = path.join(work.dir, name);
  fs.writeFileSync(file, text);
  return file;
}

test("fixtures/wrong-calls.ts: each marked call is a type error, the others compile", async () => {
  const file = copyFixture("wrong-calls.ts");
  const res = await tsc([...FIXTURE_FLAGS, file]);
  assert.equal(
    res.output,
    "",
    "wrong-calls.ts must compile as it is: TS2578 (unused '@ts-expect-error') means that wrong call " +
      `compiles, so the client's types let it through:\n${res.output}`,
  );
});

test("fixtures/wrong-calls.ts: without the directives, each marked line fails with its code and no other line fails", async () => {
  const source = fs.readFileSync(path.join(FIXTURES_DIR, "wrong-calls.ts"), "utf8");
  const expected = new Map(); // line number (1-based) of the wrong call -> {code, why}
  source.split("\n").forEach((line, i) => {
    const m = /\/\/ @ts-expect-error (TS\d+) (.*)$/.exec(line);
    if (m) expected.set(i + 2, { code: m[1], why: m[2] });
  });
  assert.ok(expected.size >= 10, `expected at least 10 marked wrong calls, found ${expected.size}`);
  // Same line numbers: the directive becomes a plain comment.
  const file = copyFixture("wrong-calls.ts", (s) => s.replace(/\/\/ @ts-expect-error /g, "// expected: "));
  const res = await tsc([...FIXTURE_FLAGS, file]);
  const got = new Map();
  for (const d of res.diagnostics) {
    assert.ok(expected.has(d.line), `line ${d.line} of wrong-calls.ts is not marked but fails: ${d.code} ${d.text}`);
    got.set(d.line, [...(got.get(d.line) ?? []), d]);
  }
  for (const [line, { code, why }] of expected) {
    const ds = got.get(line) ?? [];
    assert.ok(
      ds.some((d) => d.code === code),
      `line ${line} of wrong-calls.ts (${why}) should fail with ${code}; ` +
        (ds.length ? `tsc said: ${ds.map((d) => `${d.code} ${d.text}`).join("; ")}` : "it compiles"),
    );
  }
});

test("fixtures/tutorial.ts: the tutorial's snippet (with its null guard) compiles under --strict", async () => {
  const file = copyFixture("tutorial.ts");
  const res = await tsc([...FIXTURE_FLAGS, file]);
  assert.equal(res.output, "", `tsc reported:\n${res.output}`);
});

/** The lines between the snippet markers of a fixture. */
function snippet(name) {
  const text = fs.readFileSync(path.join(FIXTURES_DIR, name), "utf8");
  const m = /\/\/ --- the tutorial's snippet ---\n([\s\S]*?)\/\/ --- end of the snippet ---/.exec(text);
  assert.ok(m, `${name} has no snippet markers`);
  return m[1].trimEnd().split("\n");
}

test("fixtures/tutorial.ts is tutorial.mjs (the verbatim snippet) plus only the null guard", () => {
  const ts = snippet("tutorial.ts");
  const js = snippet("tutorial.mjs");
  const guards = ts.filter((l) => !js.includes(l));
  assert.deepEqual(guards, ['if (!session) throw new Error("verify your email first"); // added: session is null when email verification is required']);
  assert.deepEqual(ts.filter((l) => js.includes(l)), js);
  assert.equal(ts.indexOf(guards[0]), ts.findIndex((l) => l.includes("client.auth.signUp(")) + 1, "the guard follows signUp");
});

/** The text of `export namespace <name> {` up to its closing brace (at the start of a line). */
function namespaceBlock(name) {
  const start = client.indexOf(`\nexport namespace ${name} {\n`);
  if (start < 0) return "";
  const end = client.indexOf("\n}\n", start);
  return client.slice(start, end < 0 ? undefined : end);
}

test("--lang openapi prints the OpenAPI 3.1 document, and the client has a method for each operation", async () => {
  const text = await genClient(["--lang", "openapi"]);
  let doc;
  assert.doesNotThrow(() => (doc = JSON.parse(text)), "--lang openapi did not print JSON");
  assert.match(String(doc.openapi), /^3\.1(\.\d+)?$/, `openapi is ${JSON.stringify(doc.openapi)}`);
  for (const p of ["/auth/signup", "/auth/signin", "/auth/signout", "/profile", "/sessions", "/sessions/{id}"]) {
    assert.ok(doc.paths?.[p], `the document has no ${p}`);
  }
  const camel = (s) => s.replace(/[^A-Za-z0-9]+([A-Za-z0-9])/g, (_, c) => c.toUpperCase());
  const missing = [];
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!["get", "post", "put", "patch", "delete"].includes(method)) continue;
      const tag = op.tags?.[0];
      if (!tag || tag === "betterauth") continue; // BetterAuth's API has BetterAuth's own client
      const service = camel(tag);
      const id = op.operationId;
      const name = id.startsWith(service) && /^[A-Z]/.test(id.slice(service.length))
        ? id[service.length].toLowerCase() + id.slice(service.length + 1)
        : id;
      if (!namespaceBlock(service).includes(`public async ${name}(`)) missing.push(`${method.toUpperCase()} ${p} (${id}) as ${service}.${name}`);
    }
  }
  assert.deepEqual(missing, [], "operations the client has no method for");
});
