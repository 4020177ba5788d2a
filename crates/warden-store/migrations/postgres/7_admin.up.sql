-- Administration, in BetterAuth's admin plugin schema (a database made by
-- BetterAuth with the plugin already has these columns; hence IF NOT EXISTS):
-- roles (comma-separated), bans, and the admin behind an impersonation.
ALTER TABLE "user" ADD COLUMN IF NOT EXISTS "role" TEXT;
ALTER TABLE "user" ADD COLUMN IF NOT EXISTS "banned" BOOLEAN DEFAULT false;
ALTER TABLE "user" ADD COLUMN IF NOT EXISTS "banReason" TEXT;
ALTER TABLE "user" ADD COLUMN IF NOT EXISTS "banExpires" TIMESTAMP;
ALTER TABLE "session" ADD COLUMN IF NOT EXISTS "impersonatedBy" TEXT;

-- Warden's audit trail of administrative actions. No credential is ever
-- written here (not even a new password): "detail" holds what changed by
-- name only.
-- "seq" orders rows as they were written (timestamps can tie).
CREATE TABLE IF NOT EXISTS "warden_audit" (
"seq" BIGSERIAL PRIMARY KEY,
"id" TEXT NOT NULL UNIQUE,
"at" TIMESTAMP NOT NULL,
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
"seq" BIGSERIAL PRIMARY KEY,
"userId" TEXT NOT NULL,
"at" TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS "warden_revocation_at_idx" ON "warden_revocation" ("at");
