-- Two-factor authentication, in BetterAuth's twoFactor plugin schema, so
-- that a BetterAuth database's two-factor users keep working. A database
-- made by BetterAuth with the plugin already has these; hence IF NOT EXISTS.
-- "lastUsedStep" is Warden's: the last TOTP time step accepted, so that a
-- code is never accepted twice. It is nullable and BetterAuth ignores it.
ALTER TABLE "user" ADD COLUMN IF NOT EXISTS "twoFactorEnabled" BOOLEAN DEFAULT false;
CREATE TABLE IF NOT EXISTS "twoFactor" (
"id" TEXT PRIMARY KEY NOT NULL,
"secret" TEXT NOT NULL,
"backupCodes" TEXT NOT NULL,
"userId" TEXT NOT NULL REFERENCES "user"("id") ON DELETE CASCADE,
"verified" BOOLEAN DEFAULT true,
"failedVerificationCount" INTEGER DEFAULT 0,
"lockedUntil" TIMESTAMP
);
ALTER TABLE "twoFactor" ADD COLUMN IF NOT EXISTS "verified" BOOLEAN DEFAULT true;
ALTER TABLE "twoFactor" ADD COLUMN IF NOT EXISTS "failedVerificationCount" INTEGER DEFAULT 0;
ALTER TABLE "twoFactor" ADD COLUMN IF NOT EXISTS "lockedUntil" TIMESTAMP;
ALTER TABLE "twoFactor" ADD COLUMN IF NOT EXISTS "lastUsedStep" BIGINT;
CREATE INDEX IF NOT EXISTS "twoFactor_userId_idx" ON "twoFactor" ("userId");
