// BetterAuth's admin client plugin (better-auth 1.7.25, `adminClient` from
// "better-auth/client/plugins") against Warden's /api/auth/admin/* endpoints.
//
// The contract is BetterAuth 1.7.25's admin plugin with its two default
// roles (node_modules/better-auth/dist/plugins/admin/routes.mjs): `admin`
// may do everything but impersonate other admins, `user` nothing.
//
// The first admin of each test is made the way an operator makes one:
// `warden user set-role <email> admin` on the running server's database
// (`makeAdmin` in harness.mjs; tools/reference-server.mjs has the same
// command). A session started before keeps the old role as far as these
// tests are concerned, so the new admin signs in again first.
//
// One Warden per file; every test makes its own users (emails and names
// carry a random tag), so the tests do not depend on each other or on their
// order.
//
// Where Warden deliberately differs from BetterAuth, a test checks each
// server's own answer (a branch on AGAINST_REFERENCE) or, when BetterAuth
// has nothing to check, is skipped against the reference server:
//   - list-users with an unknown sortBy or filterField: Warden 400
//     VALIDATION_ERROR naming the field; BetterAuth 200 {users: [], total: 0}.
//   - list-users without limit: Warden returns at most 100 users and says
//     limit: 100. BetterAuth 1.7.25 also returns at most 100 (its adapter's
//     defaultFindManyLimit) but gives no limit in the answer.
//   - an impersonation session cannot change the user's credentials
//     (changePassword, changeEmail, two-factor enable/disable, deleteUser) or
//     impersonate again: Warden 403 NOT_ALLOWED_WHILE_IMPERSONATING.
//   - list-user-sessions: Warden stores only token hashes, so a session's
//     `token` is its id (a handle for revoke-user-session, not a credential);
//     BetterAuth shows the real token. revokeUserSession takes either.
//   - set-user-password: Warden refuses a common password (400
//     PASSWORD_COMPROMISED); BetterAuth takes it.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { adminClient, twoFactorClient } from "better-auth/client/plugins";

import { makeClient } from "./client.mjs";
import { makeAdmin, startWarden, wardenBinary } from "./harness.mjs";

const TEST = { timeout: 30_000 };
const PASSWORD = "correct horse battery staple";

/** True when WARDEN_BIN is tools/reference-server.mjs (BetterAuth itself). */
const AGAINST_REFERENCE = path.basename(process.env.WARDEN_BIN ?? "") === "reference-server.mjs";

let warden;

// Without a binary, report that once (not as a dozen cancelled tests).
let binaryProblem = null;
try {
  wardenBinary();
} catch (err) {
  binaryProblem = err;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- helpers

/** A random lower-case tag for the emails and names of one test. */
function newTag() {
  return `t${randomBytes(5).toString("hex")}`;
}

function uniqueEmail(tag) {
  return `${tag}-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}@example.com`;
}

/** A password no list of common passwords holds. */
function strongPassword() {
  return `Pw-${randomBytes(12).toString("base64url")}-9x`;
}

/** An id shaped like `id` (same length, same kinds of characters) that no user has. */
function lookalikeId(id) {
  const pick = (set) => set[randomBytes(1)[0] % set.length];
  return [...id]
    .map((ch) => {
      if (/[a-z]/.test(ch)) return pick("abcdefghijklmnopqrstuvwxyz");
      if (/[A-Z]/.test(ch)) return pick("ABCDEFGHIJKLMNOPQRSTUVWXYZ");
      if (/[0-9]/.test(ch)) return pick("0123456789");
      return ch;
    })
    .join("");
}

/** A browser-like BetterAuth client with the admin (and twoFactor) plugins. */
function newClient() {
  return makeClient(warden.baseURL, { plugins: [adminClient(), twoFactorClient()] });
}

function describeError(error) {
  if (!error) return "no error";
  const parts = [`HTTP ${error.status}`];
  if (error.code) parts.push(error.code);
  parts.push(JSON.stringify(error.message ?? error.statusText ?? ""));
  return parts.join(" ");
}

/** Asserts a client call succeeded and returns its data. */
function ok(result, what) {
  assert.ok(result && typeof result === "object" && "data" in result && "error" in result,
    `${what}: expected {data, error} from the client, got ${JSON.stringify(result)}`);
  if (result.error) {
    assert.fail(`${what} failed: ${describeError(result.error)}\n--- server log tail ---\n${warden.logs(15)}`);
  }
  return result.data;
}

/** Asserts a client call failed with this HTTP status and BetterAuth error code. */
function fails(result, status, code, what) {
  assert.equal(result.data, null, `${what}: expected no data, got ${JSON.stringify(result.data)}`);
  assert.ok(result.error, `${what}: expected an error, the call succeeded`);
  assert.equal(result.error.status, status, `${what}: status (error was ${describeError(result.error)})`);
  assert.equal(result.error.code, code, `${what}: code (error was ${describeError(result.error)})`);
  assert.equal(typeof result.error.message, "string", `${what}: error.message should be a string`);
  assert.ok(result.error.message.length > 0, `${what}: error.message should not be empty`);
}

/** Asserts a client call failed with this HTTP status (BetterAuth sends no code). */
function failsWithStatus(result, status, what) {
  assert.equal(result.data, null, `${what}: expected no data, got ${JSON.stringify(result.data)}`);
  assert.ok(result.error, `${what}: expected an error, the call succeeded`);
  assert.equal(result.error.status, status, `${what}: status (error was ${describeError(result.error)})`);
}

/** The current session ({session, user}); fails if there is none. */
async function currentSession(client, what) {
  const data = ok(await client.getSession(), `${what}: getSession()`);
  assert.ok(data && data.session && data.user, `${what}: expected {session, user}, got ${JSON.stringify(data)}`);
  return data;
}

/** Asserts getSession() answers "no session": 200 with JSON null. */
async function assertNoSession(client, what) {
  const res = await client.getSession();
  assert.equal(res.error, null, `${what}: getSession() should answer 200 null, got ${describeError(res.error)}`);
  assert.equal(res.data, null, `${what}: expected no session, got ${JSON.stringify(res.data)}`);
}

/** A new user signed up (and so signed in) with a client of its own. */
async function newUser(tag, { name = `Plain ${tag}`, email = uniqueEmail(tag), password = PASSWORD } = {}) {
  const c = newClient();
  const up = ok(await c.client.signUp.email({ email, password, name }), `signUp.email(${email})`);
  return { ...c, email, name, password, id: up.user.id };
}

/** A new client signed in as `email`. */
async function signIn(email, password = PASSWORD, what = `signIn.email(${email})`) {
  const c = newClient();
  const data = ok(await c.client.signIn.email({ email, password }), what);
  assert.equal(typeof data?.token, "string", `${what}: data.token, got ${JSON.stringify(data)}`);
  return { ...c, email, password, id: data.user.id };
}

/**
 * A new admin: signs up, `user set-role <email> admin` (makeAdmin), then
 * signs in again so that the session is an admin's. Returns that client.
 */
async function newAdmin(tag) {
  const u = await newUser(tag, { name: `Admin ${tag}` });
  await makeAdmin(warden, u.email);
  const a = await signIn(u.email, PASSWORD, "the new admin signs in again");
  const s = await currentSession(a.client, "the new admin's session");
  assert.equal(s.user.role, "admin", `after makeAdmin, session user.role, got ${JSON.stringify(s.user)}`);
  return { ...a, name: u.name, sessionId: s.session.id };
}

/** An admin client plus `n` users (each with a client of its own, signed in). */
async function adminAndUsers(tag, n = 1) {
  const admin = await newAdmin(`${tag}-admin`);
  const users = [];
  for (let i = 0; i < n; i++) users.push(await newUser(`${tag}-u${i}`));
  return { admin, users };
}

/** admin.getUser({query: {id}}) — BetterAuth answers the user itself. */
async function getUser(admin, id, what = "admin.getUser") {
  const user = ok(await admin.client.admin.getUser({ query: { id } }), what);
  assert.equal(user?.id, id, `${what}: the user itself, got ${JSON.stringify(user)}`);
  return user;
}

function assertSameTime(actual, expectedMs, slackMs, what) {
  assert.ok(actual instanceof Date, `${what}: should arrive as a date, got ${JSON.stringify(actual)}`);
  assert.ok(Math.abs(actual.getTime() - expectedMs) <= slackMs,
    `${what}: ${actual.toISOString()} should be within ${slackMs} ms of ${new Date(expectedMs).toISOString()}`);
}

/** Asserts the BetterAuth shape of a user in an admin answer. */
function assertAdminUser(user, { id, email, name, role = "user", banned = false }, what) {
  assert.ok(user && typeof user === "object", `${what}: expected a user, got ${JSON.stringify(user)}`);
  if (id !== undefined) assert.equal(user.id, id, `${what}: id`);
  if (email !== undefined) assert.equal(user.email, email, `${what}: email`);
  if (name !== undefined) assert.equal(user.name, name, `${what}: name`);
  assert.equal(user.role, role, `${what}: role, got ${JSON.stringify(user)}`);
  assert.equal(Boolean(user.banned), banned, `${what}: banned, got ${JSON.stringify(user)}`);
  assert.equal(typeof user.emailVerified, "boolean", `${what}: emailVerified, got ${JSON.stringify(user)}`);
  assert.ok(user.createdAt instanceof Date, `${what}: createdAt should arrive as a date, got ${JSON.stringify(user.createdAt)}`);
  assert.ok(user.updatedAt instanceof Date, `${what}: updatedAt should arrive as a date, got ${JSON.stringify(user.updatedAt)}`);
  assert.equal(user.password, undefined, `${what}: no password field`);
}

/** admin.hasPermission for the caller's own session; returns `success`. */
async function hasPermission(client, permissions, what) {
  const data = ok(await client.admin.hasPermission({ permissions }), what);
  assert.equal(typeof data?.success, "boolean", `${what}: data.success, got ${JSON.stringify(data)}`);
  assert.equal(data.error, null, `${what}: data.error, got ${JSON.stringify(data)}`);
  return data.success;
}

/** listUsers with a query; checks the answer's shape and returns it. */
async function listUsers(admin, query, what) {
  const data = ok(await admin.client.admin.listUsers({ query }), what);
  assert.ok(Array.isArray(data?.users), `${what}: data.users should be an array, got ${JSON.stringify(data)}`);
  assert.equal(typeof data.total, "number", `${what}: data.total should be a number, got ${JSON.stringify(data)}`);
  return data;
}

const emailsOf = (users) => users.map((u) => u.email);

/** The sessions listUserSessions shows for `userId`. */
async function userSessions(admin, userId, what) {
  const data = ok(await admin.client.admin.listUserSessions({ userId }), what);
  assert.ok(Array.isArray(data?.sessions), `${what}: data.sessions should be an array, got ${JSON.stringify(data)}`);
  return data.sessions;
}

// ------------------------------------------------------------------ tests

test("0. checkRolePermission answers on the client, from BetterAuth's default roles", () => {
  const { client } = makeClient("http://127.0.0.1:9", { plugins: [adminClient()] });
  const check = (role, permissions) => client.admin.checkRolePermission({ role, permissions });
  assert.equal(check("admin", { user: ["ban"] }), true, "admin may ban");
  assert.equal(check("admin", { user: ["create", "list", "set-role", "ban", "impersonate", "delete",
    "set-password", "set-email", "set-phone", "get", "update"], session: ["list", "revoke", "delete"] }), true,
  "admin may do every default action but impersonate-admins");
  assert.equal(check("admin", { user: ["impersonate-admins"] }), false, "admin may not impersonate admins");
  assert.equal(check("admin", { user: ["ban", "impersonate-admins"] }), false, "all actions asked for must be allowed");
  assert.equal(check("user", { user: ["ban"] }), false, "user may not ban");
  assert.equal(check("user", { session: ["list"] }), false, "user may not list sessions");
  assert.equal(check("user,admin", { user: ["ban"] }), true, "a role list is allowed what any of its roles is");
  assert.equal(check("nobody", { user: ["get"] }), false, "an unknown role may do nothing");
});

if (binaryProblem) {
  test("a Warden binary is available", () => {
    throw binaryProblem;
  });
} else {
  before(async () => {
    warden = await startWarden();
  }, { timeout: 60_000 });

  after(async () => {
    await warden?.stop();
  });

  describe("BetterAuth admin client against Warden", suite);
}

function suite() {
  test("1. makeAdmin (`user set-role <email> admin`) turns a signed-up user into an admin", TEST, async () => {
    const tag = newTag();
    const u = await newUser(tag);
    const s = await currentSession(u.client, "after signUp");
    assert.equal(s.user.role, "user", `a new user's role, got ${JSON.stringify(s.user)}`);
    assert.equal(Boolean(s.user.banned), false, `a new user is not banned, got ${JSON.stringify(s.user)}`);
    assert.equal(await hasPermission(u.client, { user: ["list"] }, "hasPermission before makeAdmin"), false);

    await makeAdmin(warden, u.email);
    const a = await signIn(u.email, PASSWORD, "sign-in after makeAdmin");
    const s2 = await currentSession(a.client, "after makeAdmin");
    assert.equal(s2.user.role, "admin", `role after makeAdmin, got ${JSON.stringify(s2.user)}`);
    assert.equal(await hasPermission(a.client, { user: ["list"] }, "hasPermission after makeAdmin"), true);
    const listed = await listUsers(a, { searchValue: u.email, searchField: "email" }, "the new admin lists users");
    assert.deepEqual(emailsOf(listed.users), [u.email]);
  });

  test("2. listUsers: search (field, operator), sort, limit/offset and filter; answer {users, total, limit, offset}", TEST, async () => {
    const tag = newTag();
    const admin = await newAdmin(newTag()); // its email must not hold `tag`
    const people = {};
    for (const first of ["ann", "bob", "cid"]) {
      const name = `${first[0].toUpperCase()}${first.slice(1)} ${tag}`;
      people[first] = await newUser(tag, { name, email: `${tag}-${first}@example.com` });
    }
    const all = [people.ann.email, people.bob.email, people.cid.email];

    // Search: searchField defaults to email, searchOperator to contains.
    let r = await listUsers(admin, { searchValue: tag, searchField: "email", searchOperator: "contains", sortBy: "email" },
      "search email contains");
    assert.deepEqual(emailsOf(r.users), all, "search email contains the tag");
    assert.equal(r.total, 3, "total counts the matches");
    for (const u of r.users) {
      const p = Object.values(people).find((x) => x.email === u.email);
      assertAdminUser(u, { id: p.id, email: p.email, name: p.name }, `listed user ${u.email}`);
      assert.equal(u.emailVerified, false, `listed user ${u.email}: emailVerified`);
    }
    r = await listUsers(admin, { searchValue: tag, sortBy: "email" }, "search with the default field and operator");
    assert.deepEqual(emailsOf(r.users), all, "searchField defaults to email, searchOperator to contains");
    r = await listUsers(admin, { searchValue: `${tag}-b`, searchOperator: "starts_with" }, "search email starts_with");
    assert.deepEqual(emailsOf(r.users), [people.bob.email], "email starts_with");
    r = await listUsers(admin, { searchValue: `${tag}-cid@example.com`, searchOperator: "ends_with" }, "search email ends_with");
    assert.deepEqual(emailsOf(r.users), [people.cid.email], "email ends_with");
    r = await listUsers(admin, { searchValue: ` ${tag}`, searchField: "name", searchOperator: "ends_with", sortBy: "name" },
      "search name ends_with");
    assert.deepEqual(r.users.map((u) => u.name), [people.ann.name, people.bob.name, people.cid.name], "name ends_with");
    r = await listUsers(admin, { searchValue: `Cid ${tag}`, searchField: "name", searchOperator: "starts_with" },
      "search name starts_with");
    assert.deepEqual(emailsOf(r.users), [people.cid.email], "name starts_with");
    r = await listUsers(admin, { searchValue: `${tag}-nobody`, searchField: "email" }, "search that matches nothing");
    assert.deepEqual(r.users, [], "no match: no users");
    assert.equal(r.total, 0, "no match: total 0");

    // Sort.
    r = await listUsers(admin, { searchValue: tag, sortBy: "email", sortDirection: "desc" }, "sort email desc");
    assert.deepEqual(emailsOf(r.users), [...all].reverse(), "sortDirection desc");
    r = await listUsers(admin, { searchValue: tag, sortBy: "name", sortDirection: "asc" }, "sort name asc");
    assert.deepEqual(emailsOf(r.users), all, "sortBy name asc");
    r = await listUsers(admin, { searchValue: tag, sortBy: "createdAt", sortDirection: "desc" }, "sort createdAt desc");
    assert.deepEqual(emailsOf(r.users), [...all].reverse(), "sortBy createdAt desc: newest first");

    // Pages: limit and offset come back as numbers; total is the whole count.
    r = await listUsers(admin, { searchValue: tag, sortBy: "email", limit: 2 }, "limit 2");
    assert.deepEqual(emailsOf(r.users), all.slice(0, 2), "limit 2: the first two");
    assert.equal(r.total, 3, "limit 2: total is still 3");
    assert.equal(r.limit, 2, `limit 2: data.limit, got ${JSON.stringify(r)}`);
    r = await listUsers(admin, { searchValue: tag, sortBy: "email", limit: 2, offset: 2 }, "limit 2 offset 2");
    assert.deepEqual(emailsOf(r.users), all.slice(2), "limit 2 offset 2: the last one");
    assert.equal(r.total, 3, "limit 2 offset 2: total");
    assert.equal(r.limit, 2, "limit 2 offset 2: data.limit");
    assert.equal(r.offset, 2, `limit 2 offset 2: data.offset, got ${JSON.stringify(r)}`);
    r = await listUsers(admin, { searchValue: tag, sortBy: "email", sortDirection: "desc", limit: 1, offset: 1 },
      "limit 1 offset 1, desc");
    assert.deepEqual(emailsOf(r.users), [people.bob.email], "limit 1 offset 1 desc: the middle one");
    assert.equal(r.offset, 1, "limit 1 offset 1: data.offset");
    r = await listUsers(admin, { searchValue: tag, sortBy: "email", limit: 10, offset: 5 }, "an offset past the end");
    assert.deepEqual(r.users, [], "offset past the end: no users");
    assert.equal(r.total, 3, "offset past the end: total");

    // Filter: filterOperator defaults to eq; it combines with the search.
    r = await listUsers(admin, { filterField: "email", filterValue: people.bob.email }, "filter email eq (default operator)");
    assert.deepEqual(emailsOf(r.users), [people.bob.email], "filter email eq");
    assert.equal(r.total, 1, "filter email eq: total");
    r = await listUsers(admin, { searchValue: tag, sortBy: "email", filterField: "email", filterOperator: "ne",
      filterValue: people.bob.email }, "search + filter email ne");
    assert.deepEqual(emailsOf(r.users), [people.ann.email, people.cid.email], "search + filter email ne");
    assert.equal(r.total, 2, "search + filter ne: total");
    r = await listUsers(admin, { filterField: "name", filterOperator: "contains", filterValue: `nn ${tag}` },
      "filter name contains");
    assert.deepEqual(emailsOf(r.users), [people.ann.email], "filter name contains");
    r = await listUsers(admin, { searchValue: tag, filterField: "role", filterValue: "admin" }, "filter role eq admin (none yet)");
    assert.deepEqual(r.users, [], "no admin among them yet");
    await makeAdmin(warden, people.cid.email);
    r = await listUsers(admin, { searchValue: tag, filterField: "role", filterOperator: "eq", filterValue: "admin" },
      "filter role eq admin");
    assert.deepEqual(emailsOf(r.users), [people.cid.email], "filter role eq admin");
    assert.equal(r.users[0].role, "admin");
    assert.equal(r.total, 1, "filter role eq admin: total");
  });

  test("3. listUsers with an unknown sortBy or filterField (Warden: 400 VALIDATION_ERROR; BetterAuth: 200, no users)", TEST, async () => {
    const tag = newTag();
    const { admin } = await adminAndUsers(tag, 1);
    const bogus = "favouriteColour";
    const sorted = await admin.client.admin.listUsers({ query: { searchValue: tag, sortBy: bogus } });
    const filtered = await admin.client.admin.listUsers({ query: { filterField: bogus, filterValue: "green" } });
    if (AGAINST_REFERENCE) {
      // BetterAuth's adapter throws on the unknown field; list-users catches
      // that and answers an empty page.
      for (const [r, what] of [[sorted, "sortBy"], [filtered, "filterField"]]) {
        const data = ok(r, `unknown ${what}`);
        assert.deepEqual(data, { users: [], total: 0 }, `BetterAuth: unknown ${what}`);
      }
      return;
    }
    fails(sorted, 400, "VALIDATION_ERROR", "unknown sortBy");
    assert.match(sorted.error.message, new RegExp(`${bogus}|sortBy`), "the error names the field");
    fails(filtered, 400, "VALIDATION_ERROR", "unknown filterField");
    assert.match(filtered.error.message, new RegExp(`${bogus}|filterField`), "the error names the field");
  });

  test("4. listUsers without limit: 100 users (Warden says limit: 100; BetterAuth gives no limit)", TEST, async () => {
    const tag = newTag();
    const admin = await newAdmin(newTag());
    const many = 101;
    const created = [];
    for (let i = 0; i < many; i++) {
      const email = `${tag}-many-${String(i).padStart(3, "0")}@example.com`;
      ok(await admin.client.admin.createUser({ email, name: `Many ${i} ${tag}` }), `createUser #${i}`);
      created.push(email);
    }
    const r = await listUsers(admin, { searchValue: `${tag}-many-`, sortBy: "email" }, "listUsers without limit");
    assert.equal(r.total, many, "total counts every match");
    if (AGAINST_REFERENCE) {
      // BetterAuth's adapter applies its own default (defaultFindManyLimit,
      // 100) but the answer does not say so.
      assert.equal(r.users.length, 100, "BetterAuth: the adapter's default of 100 users");
      assert.equal(r.limit, undefined, `BetterAuth: no limit, got ${r.limit}`);
    } else {
      assert.equal(r.users.length, 100, "Warden: at most 100 users");
      assert.equal(r.limit, 100, `Warden: data.limit, got ${JSON.stringify({ limit: r.limit, offset: r.offset })}`);
    }
    assert.deepEqual(emailsOf(r.users), created.slice(0, r.users.length), "the first page, in order");
    const rest = await listUsers(admin, { searchValue: `${tag}-many-`, sortBy: "email", limit: 100, offset: 100 },
      "the next page");
    assert.deepEqual(emailsOf(rest.users), created.slice(100), "the next page holds the rest");
  });

  test("5. getUser returns the user; an unknown id is 404 USER_NOT_FOUND", TEST, async () => {
    const tag = newTag();
    const { admin, users: [u] } = await adminAndUsers(tag, 1);
    const user = await getUser(admin, u.id);
    assertAdminUser(user, { id: u.id, email: u.email, name: u.name }, "getUser");
    assert.equal(user.emailVerified, false, "getUser: emailVerified");
    const self = await getUser(admin, admin.id, "getUser for the admin");
    assert.equal(self.role, "admin", "getUser for the admin: role");
    fails(await admin.client.admin.getUser({ query: { id: lookalikeId(u.id) } }), 404, "USER_NOT_FOUND",
      "getUser with an unknown id");
  });

  test("6. createUser: with a password (it signs in), without one (it cannot), with a role or roles; refusals", TEST, async () => {
    const tag = newTag();
    const admin = await newAdmin(`${tag}-admin`);

    const password = strongPassword();
    const mixedCase = `${tag}-Withpw@Example.com`;
    const withPw = ok(await admin.client.admin.createUser({ email: mixedCase, password, name: `With ${tag}` }),
      "createUser with a password");
    assertAdminUser(withPw?.user, { email: mixedCase.toLowerCase(), name: `With ${tag}` },
      `createUser with a password: data.user (got ${JSON.stringify(withPw)})`);
    assert.equal(withPw.user.emailVerified, false, "createUser: emailVerified defaults to false");
    assertAdminUser(await getUser(admin, withPw.user.id), { email: mixedCase.toLowerCase() }, "getUser of the new user");
    const signedIn = await signIn(mixedCase.toLowerCase(), password, "the created user signs in with its password");
    assert.equal(signedIn.id, withPw.user.id);

    const noPw = ok(await admin.client.admin.createUser({ email: `${tag}-nopw@example.com`, name: `NoPw ${tag}` }),
      "createUser without a password");
    assertAdminUser(noPw?.user, { email: `${tag}-nopw@example.com`, name: `NoPw ${tag}` }, "createUser without a password");
    const { client: c } = newClient();
    fails(await c.signIn.email({ email: `${tag}-nopw@example.com`, password: PASSWORD }), 401, "INVALID_EMAIL_OR_PASSWORD",
      "signIn for a user created without a password");

    const asAdmin = ok(await admin.client.admin.createUser({ email: `${tag}-adm@example.com`, password: strongPassword(),
      name: `Adm ${tag}`, role: "admin" }), "createUser with role admin");
    assert.equal(asAdmin?.user?.role, "admin", `createUser with role admin: role, got ${JSON.stringify(asAdmin)}`);
    assert.equal((await getUser(admin, asAdmin.user.id)).role, "admin", "getUser: role admin");
    const roles = ok(await admin.client.admin.createUser({ email: `${tag}-roles@example.com`, name: `Roles ${tag}`,
      role: ["user", "admin"] }), "createUser with roles [user, admin]");
    assert.equal(roles?.user?.role, "user,admin", `createUser with two roles: role, got ${JSON.stringify(roles)}`);

    fails(await admin.client.admin.createUser({ email: mixedCase, password: strongPassword(), name: "Again" }),
      400, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL", "createUser with a taken email");
    fails(await admin.client.admin.createUser({ email: `${tag}-ghost@example.com`, name: "Ghost", role: "superuser" }),
      400, "YOU_ARE_NOT_ALLOWED_TO_SET_NON_EXISTENT_VALUE", "createUser with an undefined role");
    fails(await admin.client.admin.createUser({ email: "not an email", name: "Bad" }), 400, "INVALID_EMAIL",
      "createUser with an invalid email");
    const none = await listUsers(admin, { searchValue: `${tag}-ghost` }, "after the refused createUser");
    assert.equal(none.total, 0, "a refused createUser creates no user");
  });

  test("7. updateUser changes name, email and role; refusals (no data, password, undefined role)", TEST, async () => {
    const tag = newTag();
    const { admin, users: [u] } = await adminAndUsers(tag, 1);
    const renamed = ok(await admin.client.admin.updateUser({ userId: u.id, data: { name: `Renamed ${tag}` } }),
      "updateUser({name})");
    // BetterAuth answers the user itself (not {user}).
    assertAdminUser(renamed, { id: u.id, email: u.email, name: `Renamed ${tag}` }, "updateUser answer");
    assert.equal((await getUser(admin, u.id)).name, `Renamed ${tag}`, "getUser after updateUser");
    assert.equal((await currentSession(u.client, "the user's own session")).user.name, `Renamed ${tag}`,
      "the user's own session shows the new name");

    const newEmail = `${tag}-moved@example.com`;
    const moved = ok(await admin.client.admin.updateUser({ userId: u.id, data: { email: newEmail } }), "updateUser({email})");
    assert.equal(moved.email, newEmail, "updateUser({email}): email");
    await signIn(newEmail, PASSWORD, "sign-in with the new email");

    const promoted = ok(await admin.client.admin.updateUser({ userId: u.id, data: { role: "admin" } }), "updateUser({role})");
    assert.equal(promoted.role, "admin", "updateUser({role: admin}): role");

    fails(await admin.client.admin.updateUser({ userId: u.id, data: {} }), 400, "NO_DATA_TO_UPDATE", "updateUser with no data");
    fails(await admin.client.admin.updateUser({ userId: u.id, data: { password: strongPassword() } }), 400,
      "PASSWORD_CANNOT_BE_UPDATED_VIA_UPDATE_USER", "updateUser with a password");
    fails(await admin.client.admin.updateUser({ userId: u.id, data: { role: "superuser" } }), 400,
      "YOU_ARE_NOT_ALLOWED_TO_SET_NON_EXISTENT_VALUE", "updateUser with an undefined role");
    const after = await getUser(admin, u.id);
    assertAdminUser(after, { id: u.id, email: newEmail, name: `Renamed ${tag}`, role: "admin" },
      "the refused updates changed nothing");
    await signIn(newEmail, PASSWORD, "the password is unchanged");
  });

  test("8. setRole with a string and with an array; undefined roles are refused (400)", TEST, async () => {
    const tag = newTag();
    const { admin, users: [u] } = await adminAndUsers(tag, 1);

    const one = ok(await admin.client.admin.setRole({ userId: u.id, role: "admin" }), "setRole(admin)");
    assert.equal(one?.user?.id, u.id, `setRole: data.user, got ${JSON.stringify(one)}`);
    assert.equal(one.user.role, "admin", "setRole(admin): role");
    assert.equal((await getUser(admin, u.id)).role, "admin", "getUser after setRole(admin)");
    let fresh = await signIn(u.email, PASSWORD, "sign-in after setRole(admin)");
    assert.equal((await currentSession(fresh.client, "after setRole(admin)")).user.role, "admin");
    assert.equal(await hasPermission(fresh.client, { user: ["ban"] }, "hasPermission after setRole(admin)"), true);

    const two = ok(await admin.client.admin.setRole({ userId: u.id, role: ["user", "admin"] }), "setRole([user, admin])");
    assert.equal(two?.user?.role, "user,admin", `setRole with an array: role, got ${JSON.stringify(two)}`);
    fresh = await signIn(u.email, PASSWORD, "sign-in after setRole([user, admin])");
    assert.equal(await hasPermission(fresh.client, { user: ["ban"] }, "hasPermission as user,admin"), true,
      "a role list is allowed what any of its roles is");

    const back = ok(await admin.client.admin.setRole({ userId: u.id, role: "user" }), "setRole(user)");
    assert.equal(back?.user?.role, "user", "setRole(user): role");
    fresh = await signIn(u.email, PASSWORD, "sign-in after setRole(user)");
    assert.equal(await hasPermission(fresh.client, { user: ["ban"] }, "hasPermission after setRole(user)"), false);
    fails(await fresh.client.admin.listUsers({ query: {} }), 403, "YOU_ARE_NOT_ALLOWED_TO_LIST_USERS",
      "listUsers after setRole(user)");

    fails(await admin.client.admin.setRole({ userId: u.id, role: "superuser" }), 400,
      "YOU_ARE_NOT_ALLOWED_TO_SET_NON_EXISTENT_VALUE", "setRole to an undefined role");
    fails(await admin.client.admin.setRole({ userId: u.id, role: ["admin", "superuser"] }), 400,
      "YOU_ARE_NOT_ALLOWED_TO_SET_NON_EXISTENT_VALUE", "setRole to a list with an undefined role");
    assert.equal((await getUser(admin, u.id)).role, "user", "the refused setRole changed nothing");
  });

  test("9. setUserPassword: the old password stops working, the new one signs in; too short is refused", TEST, async () => {
    const tag = newTag();
    const { admin, users: [u] } = await adminAndUsers(tag, 1);
    const newPassword = strongPassword();
    const data = ok(await admin.client.admin.setUserPassword({ userId: u.id, newPassword }), "setUserPassword");
    assert.deepEqual(data, { status: true }, "setUserPassword answer");
    const { client: c } = newClient();
    fails(await c.signIn.email({ email: u.email, password: PASSWORD }), 401, "INVALID_EMAIL_OR_PASSWORD",
      "sign-in with the old password");
    await signIn(u.email, newPassword, "sign-in with the password the admin set");

    fails(await admin.client.admin.setUserPassword({ userId: u.id, newPassword: "short" }), 400, "PASSWORD_TOO_SHORT",
      "setUserPassword with a short password");
    await signIn(u.email, newPassword, "the refused setUserPassword changed nothing");

    // A user created without a password gets one (a credential account).
    const bare = ok(await admin.client.admin.createUser({ email: `${tag}-bare@example.com`, name: `Bare ${tag}` }),
      "createUser without a password");
    const first = strongPassword();
    ok(await admin.client.admin.setUserPassword({ userId: bare.user.id, newPassword: first }),
      "setUserPassword for a user without a password");
    await signIn(`${tag}-bare@example.com`, first, "sign-in with the first password");
  });

  test("9b. setUserPassword with one of the most common passwords (Warden: 400 PASSWORD_COMPROMISED)", TEST, async () => {
    const tag = newTag();
    const { admin, users: [u] } = await adminAndUsers(tag, 1);
    const common = "password123";
    const r = await admin.client.admin.setUserPassword({ userId: u.id, newPassword: common });
    if (AGAINST_REFERENCE) {
      assert.deepEqual(ok(r, "BetterAuth: setUserPassword(password123)"), { status: true });
      return;
    }
    fails(r, 400, "PASSWORD_COMPROMISED", "setUserPassword(password123)");
    await signIn(u.email, PASSWORD, "the refused password changed nothing");
  });

  test("10. removeUser deletes the user and its sessions; an admin cannot remove themself", TEST, async () => {
    const tag = newTag();
    const { admin, users: [u] } = await adminAndUsers(tag, 1);
    const data = ok(await admin.client.admin.removeUser({ userId: u.id }), "removeUser");
    assert.deepEqual(data, { success: true }, "removeUser answer");
    fails(await admin.client.admin.getUser({ query: { id: u.id } }), 404, "USER_NOT_FOUND", "getUser after removeUser");
    await assertNoSession(u.client, "the removed user's session");
    const { client: c } = newClient();
    fails(await c.signIn.email({ email: u.email, password: PASSWORD }), 401, "INVALID_EMAIL_OR_PASSWORD",
      "sign-in as the removed user");
    fails(await admin.client.admin.removeUser({ userId: u.id }), 404, "USER_NOT_FOUND", "removeUser again");

    fails(await admin.client.admin.removeUser({ userId: admin.id }), 400, "YOU_CANNOT_REMOVE_YOURSELF",
      "the admin removes themself");
    const s = await currentSession(admin.client, "the admin after trying to remove themself");
    assert.equal(s.user.id, admin.id);
    await getUser(admin, admin.id, "the admin still exists");
  });

  test("11. banUser (reason, expiry) ends the user's sessions; signIn is refused with 403 BANNED_USER", TEST, async () => {
    const tag = newTag();
    const { admin, users: [u, v] } = await adminAndUsers(tag, 2);
    const second = await signIn(u.email, PASSWORD, "the user's second sign-in");
    const before = Date.now();
    const data = ok(await admin.client.admin.banUser({ userId: u.id, banReason: "spamming", banExpiresIn: 3600 }),
      "banUser({banReason, banExpiresIn: 3600})");
    assertAdminUser(data?.user, { id: u.id, email: u.email, banned: true }, `banUser: data.user (got ${JSON.stringify(data)})`);
    assert.equal(data.user.banReason, "spamming", "banUser: banReason");
    assertSameTime(data.user.banExpires, before + 3600_000, 30_000, "banUser: banExpires");

    await assertNoSession(u.client, "the banned user's first session");
    await assertNoSession(second.client, "the banned user's second session");
    assert.deepEqual(await userSessions(admin, u.id, "listUserSessions of the banned user"), []);
    const { client: c } = newClient();
    fails(await c.signIn.email({ email: u.email, password: PASSWORD }), 403, "BANNED_USER", "a banned user's signIn.email");
    await assertNoSession(c, "after the refused sign-in");

    const got = await getUser(admin, u.id);
    assert.equal(got.banned, true, "getUser: banned");
    assert.equal(got.banReason, "spamming", "getUser: banReason");
    const listed = await listUsers(admin, { filterField: "email", filterValue: u.email }, "listUsers shows the ban");
    assert.equal(listed.users[0]?.banned, true, "listUsers: banned");

    // Without a reason or an expiry: BetterAuth's default reason, no end.
    const plain = ok(await admin.client.admin.banUser({ userId: v.id }), "banUser with no reason or expiry");
    assert.equal(plain?.user?.banned, true, "banUser with defaults: banned");
    assert.equal(plain.user.banReason, "No reason", "banUser with defaults: banReason");
    assert.equal(plain.user.banExpires ?? null, null, "banUser with defaults: banExpires");
    fails(await c.signIn.email({ email: v.email, password: PASSWORD }), 403, "BANNED_USER", "a banned user's signIn.email");

    fails(await admin.client.admin.banUser({ userId: admin.id }), 400, "YOU_CANNOT_BAN_YOURSELF", "the admin bans themself");
    assert.equal((await currentSession(admin.client, "the admin after trying to ban themself")).user.id, admin.id);
    assert.equal((await getUser(admin, admin.id)).banned, false, "the admin is not banned");
  });

  test("12. unbanUser lets the user sign in again; an expired ban no longer counts", TEST, async () => {
    const tag = newTag();
    const { admin, users: [u, v] } = await adminAndUsers(tag, 2);
    ok(await admin.client.admin.banUser({ userId: u.id, banReason: "a while" }), "banUser");
    const { client: c } = newClient();
    fails(await c.signIn.email({ email: u.email, password: PASSWORD }), 403, "BANNED_USER", "signIn while banned");
    const data = ok(await admin.client.admin.unbanUser({ userId: u.id }), "unbanUser");
    assertAdminUser(data?.user, { id: u.id, banned: false }, `unbanUser: data.user (got ${JSON.stringify(data)})`);
    assert.equal(data.user.banReason ?? null, null, "unbanUser: banReason cleared");
    assert.equal(data.user.banExpires ?? null, null, "unbanUser: banExpires cleared");
    const back = await signIn(u.email, PASSWORD, "signIn after unbanUser");
    assert.equal((await currentSession(back.client, "after unbanUser")).user.banned, false);

    // A ban of one second: after it, the user signs in (and is unbanned).
    ok(await admin.client.admin.banUser({ userId: v.id, banExpiresIn: 1 }), "banUser({banExpiresIn: 1})");
    await sleep(1_500);
    const again = await signIn(v.email, PASSWORD, "signIn after the ban expired");
    assert.equal(again.id, v.id);
  });

  test("13. listUserSessions shows each session; revokeUserSession({sessionToken}) ends just that one", TEST, async () => {
    const tag = newTag();
    const { admin, users: [u] } = await adminAndUsers(tag, 1);
    const other = await signIn(u.email, PASSWORD, "the user's second sign-in");
    const mine = (await currentSession(u.client, "first client")).session;
    const theirs = (await currentSession(other.client, "second client")).session;

    const sessions = await userSessions(admin, u.id, "listUserSessions");
    assert.equal(sessions.length, 2, `two sessions, got ${JSON.stringify(sessions)}`);
    for (const s of sessions) {
      assert.equal(s.userId, u.id, "session.userId");
      assert.equal(typeof s.id, "string", "session.id");
      assert.equal(typeof s.token, "string", "session.token");
      assert.ok(s.token.length > 0, "session.token is not empty");
      assert.ok(s.expiresAt instanceof Date && s.expiresAt.getTime() > Date.now(), `session.expiresAt ${s.expiresAt}`);
      assert.ok(s.createdAt instanceof Date, "session.createdAt");
      assert.ok(!s.impersonatedBy, `an ordinary session has no impersonatedBy, got ${s.impersonatedBy}`);
    }
    assert.deepEqual(sessions.map((s) => s.id).sort(), [mine.id, theirs.id].sort(), "the sessions are the two sign-ins");
    const target = sessions.find((s) => s.id === mine.id);
    if (AGAINST_REFERENCE) {
      // BetterAuth shows the token itself (the cookie is `<token>.<signature>`).
      assert.ok(u.jar.sessionCookie().value.startsWith(`${target.token}.`), "BetterAuth: token is the cookie's token");
    } else {
      // Warden stores only token hashes: the token field is the session id.
      assert.equal(target.token, target.id, "Warden: session.token is the session id");
      assert.ok(!u.jar.sessionCookie().value.includes(target.token), "Warden: the listed token is not the credential");
    }

    const data = ok(await admin.client.admin.revokeUserSession({ sessionToken: target.token }), "revokeUserSession");
    assert.deepEqual(data, { success: true }, "revokeUserSession answer");
    await assertNoSession(u.client, "the revoked session");
    assert.equal((await currentSession(other.client, "the other session")).session.id, theirs.id, "the other session stays");
    const left = await userSessions(admin, u.id, "listUserSessions after revokeUserSession");
    assert.deepEqual(left.map((s) => s.id), [theirs.id], "one session left");
    assert.equal((await currentSession(admin.client, "the admin's session")).user.id, admin.id);
  });

  test("14. revokeUserSessions ends every session of the user (getSession then answers null)", TEST, async () => {
    const tag = newTag();
    const { admin, users: [u, v] } = await adminAndUsers(tag, 2);
    const other = await signIn(u.email, PASSWORD, "the user's second sign-in");
    assert.equal((await userSessions(admin, u.id, "before")).length, 2);
    const data = ok(await admin.client.admin.revokeUserSessions({ userId: u.id }), "revokeUserSessions");
    assert.deepEqual(data, { success: true }, "revokeUserSessions answer");
    await assertNoSession(u.client, "the user's first session");
    await assertNoSession(other.client, "the user's second session");
    assert.deepEqual(await userSessions(admin, u.id, "after"), [], "no sessions left");
    assert.equal((await currentSession(v.client, "another user")).user.id, v.id, "other users keep their sessions");
    assert.equal((await currentSession(admin.client, "the admin")).user.id, admin.id, "the admin keeps theirs");
    await signIn(u.email, PASSWORD, "the user signs in again");
  });

  test("15. impersonateUser: getSession shows the target with impersonatedBy; stopImpersonating restores the admin", TEST, async () => {
    const tag = newTag();
    const { admin, users: [u] } = await adminAndUsers(tag, 1);
    const watcher = await signIn(admin.email, PASSWORD, "the admin's second client");
    const own = (await currentSession(u.client, "the target's own session")).session;

    const before = Date.now();
    const imp = ok(await admin.client.admin.impersonateUser({ userId: u.id }), "impersonateUser");
    assert.equal(imp?.user?.id, u.id, `impersonateUser: data.user, got ${JSON.stringify(imp)}`);
    assert.equal(imp.session?.userId, u.id, "impersonateUser: data.session.userId");
    assert.equal(imp.session.impersonatedBy, admin.id, "impersonateUser: data.session.impersonatedBy");
    const impExpires = new Date(imp.session.expiresAt).getTime();
    assert.ok(impExpires > before && impExpires <= before + 3600_000 + 60_000,
      `an impersonation session lasts an hour, expiresAt ${imp.session.expiresAt}`);

    const s = await currentSession(admin.client, "while impersonating");
    assert.equal(s.user.id, u.id, "getSession shows the target user");
    assert.equal(s.user.email, u.email);
    assert.equal(s.session.impersonatedBy, admin.id, "session.impersonatedBy is the admin");
    assert.equal(s.session.id, imp.session.id, "the session is the one impersonateUser returned");

    // The target's own listSessions does not show the impersonation.
    const theirs = ok(await u.client.listSessions(), "the target's listSessions");
    assert.deepEqual(theirs.map((x) => x.id), [own.id], "the target sees only their own session");
    assert.ok(theirs.every((x) => !x.impersonatedBy), "no impersonation session in the target's list");
    // An admin's listUserSessions does.
    const listed = await userSessions(watcher, u.id, "listUserSessions while impersonating");
    const impListed = listed.find((x) => x.id === imp.session.id);
    assert.ok(impListed, `listUserSessions shows the impersonation session, got ${JSON.stringify(listed)}`);
    assert.equal(impListed.impersonatedBy, admin.id, "listUserSessions: impersonatedBy");

    const stop = ok(await admin.client.admin.stopImpersonating(), "stopImpersonating");
    assert.equal(stop?.user?.id, admin.id, `stopImpersonating: data.user, got ${JSON.stringify(stop)}`);
    assert.equal(stop.session?.id, admin.sessionId, "stopImpersonating: the admin's own session");
    const back = await currentSession(admin.client, "after stopImpersonating");
    assert.equal(back.user.id, admin.id, "getSession shows the admin again");
    assert.equal(back.session.id, admin.sessionId, "the admin's session from before the impersonation");
    assert.ok(!back.session.impersonatedBy, "the admin's session is not an impersonation");
    const after = await userSessions(watcher, u.id, "listUserSessions after stopImpersonating");
    assert.deepEqual(after.map((x) => x.id), [own.id], "the impersonation session is gone");
    assert.equal((await currentSession(u.client, "the target afterwards")).session.id, own.id, "the target's session stays");

    failsWithStatus(await admin.client.admin.stopImpersonating(), 400, "stopImpersonating when not impersonating");
    assert.equal((await currentSession(admin.client, "after the refused stop")).user.id, admin.id);
  });

  test("16. impersonating an admin is refused (YOU_CANNOT_IMPERSONATE_ADMINS), so is a banned user", TEST, async () => {
    const tag = newTag();
    const { admin, users: [u] } = await adminAndUsers(tag, 1);
    const other = await newAdmin(`${tag}-other`);
    fails(await admin.client.admin.impersonateUser({ userId: other.id }), 403, "YOU_CANNOT_IMPERSONATE_ADMINS",
      "impersonate another admin");
    fails(await admin.client.admin.impersonateUser({ userId: admin.id }), 403, "YOU_CANNOT_IMPERSONATE_ADMINS",
      "impersonate yourself (an admin)");
    ok(await admin.client.admin.setRole({ userId: u.id, role: ["user", "admin"] }), "setRole([user, admin])");
    fails(await admin.client.admin.impersonateUser({ userId: u.id }), 403, "YOU_CANNOT_IMPERSONATE_ADMINS",
      "impersonate a user with the admin role among others");
    ok(await admin.client.admin.setRole({ userId: u.id, role: "user" }), "setRole(user)");
    ok(await admin.client.admin.banUser({ userId: u.id }), "banUser");
    fails(await admin.client.admin.impersonateUser({ userId: u.id }), 403, "BANNED_USER", "impersonate a banned user");

    const s = await currentSession(admin.client, "after the refusals");
    assert.equal(s.user.id, admin.id, "the admin is still themself");
    assert.equal(s.session.id, admin.sessionId, "with the same session");
  });

  test("17. while impersonating, credential changes and another impersonation are refused (Warden: 403 NOT_ALLOWED_WHILE_IMPERSONATING)", TEST, async () => {
    const tag = newTag();
    const { admin, users: [u, v] } = await adminAndUsers(tag, 2);
    ok(await admin.client.admin.impersonateUser({ userId: u.id }), "impersonateUser");
    const c = admin.client;
    const newPassword = strongPassword();
    if (AGAINST_REFERENCE) {
      // BetterAuth lets the impersonation session change the password.
      ok(await c.changePassword({ currentPassword: PASSWORD, newPassword }), "BetterAuth: changePassword while impersonating");
      return;
    }
    const code = "NOT_ALLOWED_WHILE_IMPERSONATING";
    fails(await c.changePassword({ currentPassword: PASSWORD, newPassword }), 403, code, "changePassword");
    fails(await c.changeEmail({ newEmail: `${tag}-elsewhere@example.com` }), 403, code, "changeEmail");
    fails(await c.twoFactor.enable({ password: PASSWORD }), 403, code, "twoFactor.enable");
    fails(await c.twoFactor.disable({ password: PASSWORD }), 403, code, "twoFactor.disable");
    fails(await c.deleteUser({ password: PASSWORD }), 403, code, "deleteUser");
    // The impersonation session acts as the (non-admin) target, so BetterAuth
    // would refuse this too (YOU_ARE_NOT_ALLOWED_TO_IMPERSONATE_USERS);
    // Warden may name its own reason.
    const again = await c.admin.impersonateUser({ userId: v.id });
    assert.equal(again.error?.status, 403, `impersonateUser from the impersonation: ${describeError(again.error)}`);
    assert.ok([code, "YOU_ARE_NOT_ALLOWED_TO_IMPERSONATE_USERS"].includes(again.error.code),
      `impersonateUser from the impersonation: code (${describeError(again.error)})`);

    const s = await currentSession(c, "still impersonating");
    assert.equal(s.user.id, u.id);
    ok(await c.admin.stopImpersonating(), "stopImpersonating");
    const target = await getUser(admin, u.id, "the target afterwards");
    assert.equal(target.email, u.email, "the email is unchanged");
    await signIn(u.email, PASSWORD, "the target's password is unchanged");
    const fresh = await signIn(u.email, PASSWORD, "the target signs in");
    assert.equal((await currentSession(fresh.client, "the target")).user.twoFactorEnabled, false, "2FA still off");
  });

  test("18. hasPermission: an admin may ban but not impersonate admins; a plain user may not ban", TEST, async () => {
    const tag = newTag();
    const { admin, users: [u] } = await adminAndUsers(tag, 1);
    assert.equal(await hasPermission(admin.client, { user: ["ban"] }, "admin {user: [ban]}"), true);
    assert.equal(await hasPermission(admin.client, { user: ["ban"], session: ["revoke"] }, "admin {user: [ban], session: [revoke]}"), true);
    assert.equal(await hasPermission(admin.client, { user: ["impersonate-admins"] }, "admin {user: [impersonate-admins]}"), false);
    assert.equal(await hasPermission(admin.client, { user: ["ban", "impersonate-admins"] }, "admin {user: [ban, impersonate-admins]}"), false);
    assert.equal(await hasPermission(u.client, { user: ["ban"] }, "plain user {user: [ban]}"), false);
    assert.equal(await hasPermission(u.client, { session: ["list"] }, "plain user {session: [list]}"), false);
    const { client: anonymous } = newClient();
    failsWithStatus(await anonymous.admin.hasPermission({ permissions: { user: ["ban"] } }), 401, "hasPermission without a session");
  });

  test("19. every admin method called by a non-admin is refused with 403 and BetterAuth's code", TEST, async () => {
    const tag = newTag();
    const { admin, users: [u, v] } = await adminAndUsers(tag, 2);
    const a = u.client.admin;
    const vSession = (await currentSession(v.client, "the other user")).session;
    const calls = [
      ["listUsers", () => a.listUsers({ query: {} }), "YOU_ARE_NOT_ALLOWED_TO_LIST_USERS"],
      ["getUser", () => a.getUser({ query: { id: v.id } }), "YOU_ARE_NOT_ALLOWED_TO_GET_USER"],
      ["createUser", () => a.createUser({ email: `${tag}-made@example.com`, password: strongPassword(), name: "Made" }),
        "YOU_ARE_NOT_ALLOWED_TO_CREATE_USERS"],
      ["updateUser", () => a.updateUser({ userId: v.id, data: { name: "Hijacked" } }), "YOU_ARE_NOT_ALLOWED_TO_UPDATE_USERS"],
      ["setRole", () => a.setRole({ userId: v.id, role: "admin" }), "YOU_ARE_NOT_ALLOWED_TO_CHANGE_USERS_ROLE"],
      ["setUserPassword", () => a.setUserPassword({ userId: v.id, newPassword: strongPassword() }),
        "YOU_ARE_NOT_ALLOWED_TO_SET_USERS_PASSWORD"],
      ["removeUser", () => a.removeUser({ userId: v.id }), "YOU_ARE_NOT_ALLOWED_TO_DELETE_USERS"],
      ["banUser", () => a.banUser({ userId: v.id, banReason: "because" }), "YOU_ARE_NOT_ALLOWED_TO_BAN_USERS"],
      ["unbanUser", () => a.unbanUser({ userId: v.id }), "YOU_ARE_NOT_ALLOWED_TO_BAN_USERS"],
      ["listUserSessions", () => a.listUserSessions({ userId: v.id }), "YOU_ARE_NOT_ALLOWED_TO_LIST_USERS_SESSIONS"],
      ["revokeUserSession", () => a.revokeUserSession({ sessionToken: vSession.token ?? vSession.id }),
        "YOU_ARE_NOT_ALLOWED_TO_REVOKE_USERS_SESSIONS"],
      ["revokeUserSessions", () => a.revokeUserSessions({ userId: v.id }), "YOU_ARE_NOT_ALLOWED_TO_REVOKE_USERS_SESSIONS"],
      ["impersonateUser", () => a.impersonateUser({ userId: v.id }), "YOU_ARE_NOT_ALLOWED_TO_IMPERSONATE_USERS"],
    ];
    for (const [name, call, code] of calls) fails(await call(), 403, code, `admin.${name} by a non-admin`);

    // Nothing changed.
    const got = await getUser(admin, v.id, "the other user afterwards");
    assertAdminUser(got, { id: v.id, email: v.email, name: v.name }, "the other user is unchanged");
    assert.equal((await currentSession(v.client, "the other user afterwards")).session.id, vSession.id,
      "the other user's session stays");
    await signIn(v.email, PASSWORD, "the other user's password is unchanged");
    assert.equal((await listUsers(admin, { searchValue: `${tag}-made` }, "no user made")).total, 0);
    assert.equal((await currentSession(u.client, "the caller afterwards")).user.id, u.id, "the caller is still themself");
  });

  test("20. a non-admin cannot make themself an admin (setRole, updateUser or createUser)", TEST, async () => {
    const tag = newTag();
    const { admin, users: [u] } = await adminAndUsers(tag, 1);
    const a = u.client.admin;
    fails(await a.setRole({ userId: u.id, role: "admin" }), 403, "YOU_ARE_NOT_ALLOWED_TO_CHANGE_USERS_ROLE", "setRole on themself");
    fails(await a.setRole({ userId: u.id, role: ["user", "admin"] }), 403, "YOU_ARE_NOT_ALLOWED_TO_CHANGE_USERS_ROLE",
      "setRole([user, admin]) on themself");
    fails(await a.updateUser({ userId: u.id, data: { role: "admin" } }), 403, "YOU_ARE_NOT_ALLOWED_TO_UPDATE_USERS",
      "admin.updateUser on themself with role admin");
    fails(await a.createUser({ email: `${tag}-sock@example.com`, password: strongPassword(), name: "Sock", role: "admin" }),
      403, "YOU_ARE_NOT_ALLOWED_TO_CREATE_USERS", "createUser with role admin");

    assert.equal((await getUser(admin, u.id)).role, "user", "the role is unchanged");
    const fresh = await signIn(u.email, PASSWORD, "a fresh sign-in");
    assert.equal((await currentSession(fresh.client, "fresh session")).user.role, "user", "the new session's role");
    assert.equal(await hasPermission(fresh.client, { user: ["set-role"] }, "hasPermission after the attempts"), false);
  });

  test("21. a user's own signUp and updateUser cannot set role or banned (400 FIELD_NOT_ALLOWED)", TEST, async () => {
    const tag = newTag();
    const { admin, users: [u] } = await adminAndUsers(tag, 1);
    const withName = await u.client.updateUser({ name: `Me ${tag}`, role: "admin" });
    const bannedOnly = await u.client.updateUser({ banned: true });
    const { client: c } = newClient();
    const email = uniqueEmail(`${tag}-self`);
    const signUp = await c.signUp.email({ email, password: PASSWORD, name: "Self Made", role: "admin" });

    // First what matters most: nobody got the admin role.
    const got = await getUser(admin, u.id);
    assert.equal(got.role, "user", "the user's role is unchanged");
    assert.equal(got.banned, false, "the user is not banned");
    const made = await listUsers(admin, { searchValue: email }, "after the sign-up with a role");
    assert.ok(made.users.every((x) => x.role === "user"), `a sign-up cannot choose its role, got ${JSON.stringify(made.users)}`);
    // Then BetterAuth's exact answers: the fields are input: false.
    fails(withName, 400, "FIELD_NOT_ALLOWED", "updateUser({name, role: admin})");
    fails(bannedOnly, 400, "FIELD_NOT_ALLOWED", "updateUser({banned: true})");
    fails(signUp, 400, "FIELD_NOT_ALLOWED", "signUp.email with role admin");
    assert.equal(made.total, 0, "the refused sign-up made no user");
    assertAdminUser(got, { id: u.id, name: u.name, role: "user" }, "the refused updateUser changed nothing");
  });

  test("22. without a session every admin method answers 401", TEST, async () => {
    const tag = newTag();
    const { users: [u] } = await adminAndUsers(tag, 1);
    const { client: anonymous } = newClient();
    const a = anonymous.admin;
    const calls = [
      ["listUsers", () => a.listUsers({ query: {} })],
      ["getUser", () => a.getUser({ query: { id: u.id } })],
      ["createUser", () => a.createUser({ email: `${tag}-anon@example.com`, password: strongPassword(), name: "Anon" })],
      ["updateUser", () => a.updateUser({ userId: u.id, data: { name: "Anon" } })],
      ["setRole", () => a.setRole({ userId: u.id, role: "admin" })],
      ["setUserPassword", () => a.setUserPassword({ userId: u.id, newPassword: strongPassword() })],
      ["removeUser", () => a.removeUser({ userId: u.id })],
      ["banUser", () => a.banUser({ userId: u.id })],
      ["unbanUser", () => a.unbanUser({ userId: u.id })],
      ["listUserSessions", () => a.listUserSessions({ userId: u.id })],
      ["revokeUserSession", () => a.revokeUserSession({ sessionToken: "x".repeat(32) })],
      ["revokeUserSessions", () => a.revokeUserSessions({ userId: u.id })],
      ["impersonateUser", () => a.impersonateUser({ userId: u.id })],
      ["stopImpersonating", () => a.stopImpersonating()],
      ["hasPermission", () => a.hasPermission({ permissions: { user: ["list"] } })],
    ];
    for (const [name, call] of calls) failsWithStatus(await call(), 401, `admin.${name} without a session`);
    await currentSession(u.client, "the user is untouched");
  });

  test("23. an unknown user id answers 404 USER_NOT_FOUND", TEST, async () => {
    const tag = newTag();
    const { admin, users: [u] } = await adminAndUsers(tag, 1);
    const ghost = lookalikeId(u.id);
    const a = admin.client.admin;
    const calls = [
      ["getUser", () => a.getUser({ query: { id: ghost } })],
      ["updateUser", () => a.updateUser({ userId: ghost, data: { name: "Ghost" } })],
      ["setRole", () => a.setRole({ userId: ghost, role: "admin" })],
      ["setUserPassword", () => a.setUserPassword({ userId: ghost, newPassword: strongPassword() })],
      ["removeUser", () => a.removeUser({ userId: ghost })],
      ["banUser", () => a.banUser({ userId: ghost })],
      ["unbanUser", () => a.unbanUser({ userId: ghost })],
      ["impersonateUser", () => a.impersonateUser({ userId: ghost })],
    ];
    for (const [name, call] of calls) fails(await call(), 404, "USER_NOT_FOUND", `admin.${name} for an unknown id`);
    assert.deepEqual(await userSessions(admin, ghost, "listUserSessions for an unknown id"), [],
      "listUserSessions for an unknown id: no sessions");
    assert.equal((await currentSession(admin.client, "the admin afterwards")).session.id, admin.sessionId);
  });
}
