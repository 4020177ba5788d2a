-- Administration, in BetterAuth's admin plugin schema. The columns a
-- BetterAuth database may already have ("user"."role", "banned",
-- "banReason", "banExpires", "session"."impersonatedBy") are added in code:
-- SQLite has no ADD COLUMN IF NOT EXISTS.

-- Warden's audit trail of administrative actions. No credential is ever
-- written here (not even a new password): "detail" holds what changed by
-- name only.
-- "seq" orders rows as they were written (timestamps can tie).
CREATE TABLE IF NOT EXISTS "warden_audit" (
"seq" INTEGER PRIMARY KEY AUTOINCREMENT,
"id" TEXT NOT NULL UNIQUE,
"at" TEXT NOT NULL,
"actorId" TEXT,
"actor" TEXT NOT NULL,
"action" TEXT NOT NULL,
"targetId" TEXT,
"ipAddress" TEXT,
"userAgent" TEXT,
"detail" TEXT NOT NULL DEFAULT '{}'
);

-- Users whose cached sessions every instance must drop at once (a ban, a
-- revocation, a role change made by another process: another server, or
-- the CLI). Rows are only useful for a few seconds and are purged.
CREATE TABLE IF NOT EXISTS "warden_revocation" (
"seq" INTEGER PRIMARY KEY AUTOINCREMENT,
"userId" TEXT NOT NULL,
"at" TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS "warden_revocation_at_idx" ON "warden_revocation" ("at");
