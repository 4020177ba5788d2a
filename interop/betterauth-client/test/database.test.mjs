// A database made by BetterAuth itself works under Warden unchanged.
//
// For each backend (PostgreSQL through `pg`, MySQL/MariaDB through `mysql2`,
// SQLite through `better-sqlite3`):
//
//   1. make a fresh, empty database (PostgreSQL: a uniquely named database on
//      127.0.0.1:5432, user postgres, whose default time zone is not UTC;
//      MySQL: a uniquely named database on 127.0.0.1:3306, user root, no
//      password; SQLite: a file in a temporary directory);
//   2. run BetterAuth 1.7.25 in this process against it: create its schema
//      with its own migrator (`getMigrations(options).runMigrations()` from
//      "better-auth/db/migration", i.e. node_modules/better-auth/dist/db/
//      get-migration.mjs, what `npx auth migrate` runs), sign up two users
//      with `auth.api.signUpEmail` (so their passwords are BetterAuth scrypt
//      hashes) and rename one with `auth.api.updateUser`;
//   3. close BetterAuth's connection and start Warden on the same database
//      (Warden applies its own migrations at start-up);
//   4. through BetterAuth's client against Warden, the BetterAuth users sign
//      in with their passwords, and the usual account operations work.
//
// The tests assert what should happen. They do not work around Warden bugs:
// when one fails, its message carries the tail of Warden's log.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import { admin } from "better-auth/plugins/admin";
import { adminClient } from "better-auth/client/plugins";

import { makeClient } from "./client.mjs";
import { startWarden, wardenBinary } from "./harness.mjs";

const TEST = { timeout: 30_000 };
const SETUP = { timeout: 60_000 };
const TEARDOWN = { timeout: 30_000 };

const PG = { host: "127.0.0.1", port: 5432, user: "postgres" };
/** Databases to connect to for CREATE/DROP DATABASE, in order of preference. */
const PG_ADMIN_DATABASES = ["postgres", "test"];
const PG_TIMEOUT_MS = 5_000;
/** The new database's default time zone: deliberately not UTC (see create()). */
const PG_TIME_ZONE = "America/New_York";

const MYSQL = { host: "127.0.0.1", port: 3306, user: "root" };
const MYSQL_TIMEOUT_MS = 5_000;

const ALICE = {
  email: "alice@example.com",
  password: "alice's BetterAuth passphrase",
  name: "Alice (as signed up)",
  renamed: "Alice Liddell", // set through BetterAuth's updateUser before Warden starts
};
const BOB = {
  email: "bob@example.com",
  password: "bob's BetterAuth passphrase",
  name: "Bob Builder",
};
/** Banned by BetterAuth's admin plugin before Warden starts. */
const CAROL = {
  email: "carol@example.com",
  password: "carol's BetterAuth passphrase",
  name: "Carol",
};

// Without a binary, report that once (not as a cancelled test per backend).
let binaryProblem = null;
try {
  wardenBinary();
} catch (err) {
  binaryProblem = err;
}

// ------------------------------------------------------------- backends

function uniqueName() {
  return `warden_ba_db_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;
}

/** A connected pg.Client on the first admin database that answers. */
async function pgAdminClient(pg) {
  const problems = [];
  for (const database of PG_ADMIN_DATABASES) {
    const client = new pg.Client({
      ...PG,
      database,
      connectionTimeoutMillis: PG_TIMEOUT_MS,
      query_timeout: 15_000,
    });
    client.on("error", () => {}); // a dropped connection must not crash the test process
    try {
      await client.connect();
      return client;
    } catch (err) {
      problems.push(`database "${database}": ${err.code ?? ""} ${err.message}`.trim());
      await client.end().catch(() => {});
    }
  }
  throw new Error(
    `PostgreSQL is not reachable at ${PG.host}:${PG.port} as user "${PG.user}" (no password). ` +
      `This test needs a local PostgreSQL server with trust authentication.\n  ` +
      problems.join("\n  "),
  );
}

const postgres = {
  name: "PostgreSQL",
  /** Creates an empty database; returns how to reach it and how to remove it. */
  async create() {
    const { default: pg } = await import("pg");
    const name = uniqueName();
    const admin = await pgAdminClient(pg);
    try {
      await admin.query(`CREATE DATABASE "${name}"`);
      // BetterAuth makes TIMESTAMPTZ columns. A server whose time zone is not
      // UTC (as many are) shows whether every timestamp keeps its instant
      // between BetterAuth and Warden; this machine's server runs in UTC.
      try {
        await admin.query(`ALTER DATABASE "${name}" SET timezone TO '${PG_TIME_ZONE}'`);
      } catch (err) {
        await admin.query(`DROP DATABASE IF EXISTS "${name}"`).catch(() => {});
        throw err;
      }
    } finally {
      await admin.end().catch(() => {});
    }
    return {
      label: `PostgreSQL database "${name}"`,
      databaseURL: `postgres://${PG.user}@${PG.host}:${PG.port}/${name}`,
      /** A pg Pool, what BetterAuth takes as `database`. */
      open() {
        const pool = new pg.Pool({
          ...PG,
          database: name,
          max: 2,
          connectionTimeoutMillis: PG_TIMEOUT_MS,
          query_timeout: 15_000,
        });
        pool.on("error", () => {});
        return { database: pool, close: () => pool.end() };
      },
      async drop() {
        const client = await pgAdminClient(pg);
        try {
          // FORCE: a Warden that did not stop cleanly may still hold connections.
          await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        } finally {
          await client.end().catch(() => {});
        }
      },
    };
  },
};

const mysql = {
  name: "MySQL",
  async create() {
    const mysql2 = await import("mysql2/promise");
    const name = uniqueName();
    let admin;
    try {
      admin = await mysql2.createConnection({ ...MYSQL, connectTimeout: MYSQL_TIMEOUT_MS });
    } catch (err) {
      throw new Error(
        `MySQL/MariaDB is not reachable at ${MYSQL.host}:${MYSQL.port} as user "${MYSQL.user}" (no password). ` +
          `This test needs a local MySQL or MariaDB server.\n  ${err.code ?? ""} ${err.message}`,
        { cause: err },
      );
    }
    try {
      await admin.query(`CREATE DATABASE \`${name}\``);
    } finally {
      await admin.end().catch(() => {});
    }
    return {
      label: `MySQL database "${name}"`,
      databaseURL: `mysql://${MYSQL.user}@${MYSQL.host}:${MYSQL.port}/${name}`,
      /** A mysql2 pool (promise API), what BetterAuth takes as `database`. */
      open() {
        const pool = mysql2.createPool({ ...MYSQL, database: name, connectionLimit: 2, connectTimeout: MYSQL_TIMEOUT_MS });
        pool.on("error", () => {});
        return { database: pool, close: () => pool.end() };
      },
      async drop() {
        const client = await mysql2.createConnection({ ...MYSQL, connectTimeout: MYSQL_TIMEOUT_MS });
        try {
          await client.query(`DROP DATABASE IF EXISTS \`${name}\``);
        } finally {
          await client.end().catch(() => {});
        }
      },
    };
  },
};

const sqlite = {
  name: "SQLite",
  async create() {
    let Database;
    try {
      ({ default: Database } = await import("better-sqlite3"));
    } catch (err) {
      throw new Error(`better-sqlite3 cannot be loaded (run \`npm ci\`): ${err.message}`, { cause: err });
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "warden-betterauth-db-"));
    const file = path.join(dir, "betterauth.db");
    return {
      label: `SQLite database ${file}`,
      databaseURL: `sqlite:${file}`,
      /** A better-sqlite3 Database, what BetterAuth takes as `database`. */
      open() {
        const db = new Database(file, { timeout: 5_000 });
        return { database: db, close: async () => db.close() };
      },
      async drop() {
        fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
      },
    };
  },
};

// ------------------------------------------------------ BetterAuth side

/** The cookie request header for the Set-Cookie headers of a response. */
function cookieHeaderFrom(headers) {
  return headers
    .getSetCookie()
    .map((c) => c.split(";")[0])
    .join("; ");
}

/**
 * Runs BetterAuth 1.7.25 against `database`: creates its schema with its own
 * migrator, signs up ALICE and BOB, and renames ALICE. Returns what
 * BetterAuth said about the users.
 */
async function seedWithBetterAuth(database, baseURL) {
  const secret = randomBytes(32).toString("hex");
  const options = {
    database,
    baseURL,
    secret,
    emailAndPassword: { enabled: true },
    telemetry: { enabled: false },
    logger: { level: "error" },
    // The admin plugin's columns (user.role, banned, banReason, banExpires;
    // session.impersonatedBy) in BetterAuth's own types.
    plugins: [admin()],
  };

  const { runMigrations } = await getMigrations(options);
  await runMigrations();

  const auth = betterAuth(options);
  const alice = await auth.api.signUpEmail({
    body: { email: ALICE.email, password: ALICE.password, name: ALICE.name },
    returnHeaders: true,
  });
  const cookie = cookieHeaderFrom(alice.headers);
  assert.ok(cookie, "BetterAuth's sign-up should set a session cookie");
  const renamed = await auth.api.updateUser({ body: { name: ALICE.renamed }, headers: new Headers({ cookie }) });
  assert.equal(renamed?.status, true, `BetterAuth's updateUser: ${JSON.stringify(renamed)}`);
  const aliceNow = await auth.api.getSession({ headers: new Headers({ cookie }) });
  assert.equal(aliceNow?.user?.name, ALICE.renamed, "BetterAuth should see the new name");

  const bob = await auth.api.signUpEmail({ body: { email: BOB.email, password: BOB.password, name: BOB.name } });

  // Alice is BetterAuth's admin; Carol is banned for a day, by BetterAuth.
  const ctx = await auth.$context;
  await ctx.internalAdapter.updateUser(aliceNow.user.id, { role: "admin" });
  const carol = await auth.api.signUpEmail({ body: { email: CAROL.email, password: CAROL.password, name: CAROL.name } });
  const banExpires = new Date(Date.now() + 24 * 3600 * 1000);
  await ctx.internalAdapter.updateUser(carol.user.id, { banned: true, banReason: "seeded by BetterAuth", banExpires });

  // Alice's signed cookie and Bob's bearer token are live BetterAuth
  // sessions that Warden must keep.
  return { alice: aliceNow.user, bob: bob.user, carol: carol.user, banExpires, aliceCookie: cookie, bobToken: bob.token, secret };
}

// ------------------------------------------------------------- helpers

function uniqueEmail(tag) {
  return `${tag}-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}@example.com`;
}

function describeError(error) {
  if (!error) return "no error";
  const parts = [`HTTP ${error.status}`];
  if (error.code) parts.push(error.code);
  parts.push(JSON.stringify(error.message ?? error.statusText ?? ""));
  return parts.join(" ");
}

function asTime(value, what) {
  const d = value instanceof Date ? value : new Date(value);
  assert.ok(value !== null && value !== undefined && !Number.isNaN(d.getTime()),
    `${what} should be a date, got ${JSON.stringify(value)}`);
  return d.getTime();
}

// ---------------------------------------------------------------- suite

function backendSuite(backend) {
  /** @type {Awaited<ReturnType<typeof startWarden>>|undefined} */
  let warden;
  let db; // what backend.create() returned
  let seeded; // { alice, bob } as BetterAuth returned them

  const logTail = () => (warden ? `\n--- warden log tail (${db.label}) ---\n${warden.logs(20)}` : "");

  function ok(result, what) {
    assert.ok(result && typeof result === "object" && "data" in result && "error" in result,
      `${what}: expected {data, error} from the client, got ${JSON.stringify(result)}`);
    if (result.error) assert.fail(`${what} failed: ${describeError(result.error)}${logTail()}`);
    return result.data;
  }

  function fails(result, status, code, what) {
    const more = `(error was ${describeError(result.error)})${result.error?.status >= 500 ? logTail() : ""}`;
    assert.equal(result.data, null, `${what}: expected no data, got ${JSON.stringify(result.data)}`);
    assert.ok(result.error, `${what}: expected an error, the call succeeded`);
    assert.equal(result.error.status, status, `${what}: status ${more}`);
    assert.equal(result.error.code, code, `${what}: code ${more}`);
  }

  async function currentSession(client, what) {
    const data = ok(await client.getSession(), `${what}: getSession()`);
    assert.ok(data && data.session && data.user, `${what}: expected {session, user}, got ${JSON.stringify(data)}`);
    return data;
  }

  const newClient = () => makeClient(warden.baseURL);

  before(async () => {
    db = await backend.create();
    const conn = db.open();
    try {
      // BetterAuth's own baseURL does not matter here: nothing is sent to it.
      seeded = await seedWithBetterAuth(conn.database, "http://127.0.0.1:3000");
    } finally {
      await conn.close();
    }
    // The same secret and cookie names as BetterAuth: browsers keep their cookies.
    warden = await startWarden({
      databaseURL: db.databaseURL,
      env: { WARDEN_SECRET: seeded.secret, WARDEN_SESSION__COOKIE_PREFIX: "better-auth" },
    });
  }, SETUP);

  after(async () => {
    try {
      await warden?.stop();
    } finally {
      await db?.drop();
    }
  }, TEARDOWN);

  test("sessions BetterAuth created stay signed in under Warden (cookie and bearer)", TEST, async () => {
    const url = `${warden.baseURL}/api/auth/get-session`;
    const byCookie = await fetch(url, { headers: { cookie: seeded.aliceCookie } });
    assert.equal(byCookie.status, 200);
    const a = await byCookie.json();
    assert.equal(a?.user?.id, seeded.alice.id, `Alice's BetterAuth cookie: ${JSON.stringify(a)}${logTail()}`);
    const byBearer = await fetch(url, { headers: { authorization: `Bearer ${seeded.bobToken}` } });
    const bb = await byBearer.json();
    assert.equal(bb?.user?.id, seeded.bob.id, `Bob's BetterAuth token: ${JSON.stringify(bb)}${logTail()}`);
    // Converted on first use, and still working afterwards.
    const again = await (await fetch(url, { headers: { authorization: `Bearer ${seeded.bobToken}` } })).json();
    assert.equal(again?.user?.id, seeded.bob.id);
  });

  test("a BetterAuth user signs in with the password BetterAuth hashed; getSession sees it", TEST, async () => {
    const { client, jar } = newClient();
    const data = ok(await client.signIn.email({ email: ALICE.email, password: ALICE.password }),
      "signIn.email with the BetterAuth password");
    assert.equal(data.user?.id, seeded.alice.id, "the user id BetterAuth created");
    assert.equal(data.user.email, ALICE.email);
    assert.equal(data.user.name, ALICE.renamed, "the name BetterAuth stored (after its updateUser)");
    assert.equal(data.user.emailVerified, false, "emailVerified as BetterAuth stored it");
    assert.equal(asTime(data.user.createdAt, "user.createdAt"), asTime(seeded.alice.createdAt, "BetterAuth's createdAt"),
      "user.createdAt should be the instant BetterAuth stored");
    assert.ok(jar.sessionCookie(), `jar should hold a *.session_token cookie, has: [${jar.names().join(", ")}]`);

    const s = await currentSession(client, "after sign-in");
    assert.equal(s.user.id, seeded.alice.id);
    assert.equal(s.user.name, ALICE.renamed);
    assert.equal(s.session.userId, seeded.alice.id);
    assert.ok(asTime(s.session.expiresAt, "session.expiresAt") > Date.now(), "session.expiresAt should be in the future");
  });

  test("BetterAuth's admin columns work unchanged: its admin administers, its ban holds", TEST, async () => {
    const { client } = makeClient(warden.baseURL, { plugins: [adminClient()] });
    ok(await client.signIn.email({ email: ALICE.email, password: ALICE.password }), "Alice signs in");
    const list = ok(await client.admin.listUsers({ query: { searchValue: "carol", searchField: "email" } }),
      "BetterAuth's admin lists users");
    assert.equal(list.total, 1, JSON.stringify(list));
    const carol = list.users[0];
    assert.equal(carol.id, seeded.carol.id);
    assert.equal(carol.banned, true);
    assert.equal(carol.banReason, "seeded by BetterAuth");
    assert.equal(asTime(carol.banExpires, "banExpires"), seeded.banExpires.getTime(),
      "banExpires should be the instant BetterAuth stored");
    assert.equal(carol.role, "user", "the default role BetterAuth gave");
    const { client: carolClient } = newClient();
    fails(await carolClient.signIn.email({ email: CAROL.email, password: CAROL.password }), 403, "BANNED_USER",
      "the user BetterAuth banned signs in");
    ok(await client.admin.unbanUser({ userId: seeded.carol.id }), "Alice unbans Carol");
    ok(await carolClient.signIn.email({ email: CAROL.email, password: CAROL.password }), "Carol signs in after the unban");
  });

  test("updateUser and changePassword work for a BetterAuth user; the new password signs in", TEST, async () => {
    const { client } = newClient();
    ok(await client.signIn.email({ email: ALICE.email, password: ALICE.password }), "signIn.email");

    const updated = ok(await client.updateUser({ name: "Alice Updated By Warden" }), "updateUser({name})");
    assert.equal(updated.status, true, `updateUser: data.status, got ${JSON.stringify(updated)}`);
    const s = await currentSession(client, "after updateUser");
    assert.equal(s.user.name, "Alice Updated By Warden");
    assert.equal(s.user.id, seeded.alice.id);

    const newPassword = "alice's password chosen under Warden";
    const changed = ok(await client.changePassword({ currentPassword: ALICE.password, newPassword }),
      "changePassword from the BetterAuth password");
    assert.equal(changed.user?.id, seeded.alice.id, `changePassword: user, got ${JSON.stringify(changed)}`);

    const other = newClient();
    fails(await other.client.signIn.email({ email: ALICE.email, password: ALICE.password }), 401,
      "INVALID_EMAIL_OR_PASSWORD", "sign in with the old (BetterAuth) password after changePassword");
    const again = ok(await other.client.signIn.email({ email: ALICE.email, password: newPassword }),
      "signIn.email with the new password");
    assert.equal(again.user.id, seeded.alice.id);
    await currentSession(other.client, "after signing in with the new password");
  });

  test("a wrong password gives 401; signing up a BetterAuth user's email again gives 422", TEST, async () => {
    const { client } = newClient();
    fails(await client.signIn.email({ email: BOB.email, password: "not bob's password" }), 401,
      "INVALID_EMAIL_OR_PASSWORD", "sign in with a wrong password");
    fails(await client.signUp.email({ email: BOB.email, password: "another passphrase", name: "Impostor" }), 422,
      "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL", "sign up with the email of a BetterAuth user");

    const data = ok(await client.signIn.email({ email: BOB.email, password: BOB.password }),
      "signIn.email with bob's BetterAuth password");
    assert.equal(data.user.id, seeded.bob.id);
    assert.equal(data.user.name, BOB.name);
  });

  // Warden inserts into BetterAuth's user, account and session tables. (The
  // account table BetterAuth 1.7.25 makes has no `issuer` column: only
  // 1.7.0-1.7.2 had one, see @better-auth/core dist/db/schema-diff.mjs.
  // Warden adds a nullable one at start-up.)
  test("a new user signs up through Warden on the BetterAuth database and signs in again", TEST, async () => {
    const email = uniqueEmail("new");
    const password = "a password set under Warden";
    const { client } = newClient();
    const up = ok(await client.signUp.email({ email, password, name: "New Under Warden" }), "signUp.email");
    assert.equal(up.user?.email, email);
    assert.notEqual(up.user.id, seeded.alice.id);
    assert.notEqual(up.user.id, seeded.bob.id);
    const s = await currentSession(client, "after sign-up");
    assert.equal(s.user.id, up.user.id);

    const second = newClient();
    const inAgain = ok(await second.client.signIn.email({ email, password }), "signIn.email of the new user");
    assert.equal(inAgain.user.id, up.user.id);
  });
}

// ---------------------------------------------------------------- tests

if (binaryProblem) {
  test("a Warden binary is available", () => {
    throw binaryProblem;
  });
} else {
  // tools/reference-server.mjs keeps its database in memory and ignores
  // WARDEN_DATABASE_URL: it cannot open BetterAuth's database, so these
  // tests say nothing about it.
  const skip = path.basename(process.env.WARDEN_BIN ?? "") === "reference-server.mjs"
    && "the reference server (BetterAuth in memory) cannot open a database: these tests are about Warden opening BetterAuth's";
  for (const backend of [postgres, mysql, sqlite]) {
    describe(`${backend.name}: a database made by BetterAuth 1.7.25, opened by Warden`, { skip }, () => backendSuite(backend));
  }
}
