-- Two-factor authentication, in BetterAuth's twoFactor plugin schema. The
-- columns a BetterAuth database may lack ("user"."twoFactorEnabled", and
-- "twoFactor"."lastUsedStep", Warden's replay guard) are added in code:
-- SQLite has no ADD COLUMN IF NOT EXISTS.
CREATE TABLE IF NOT EXISTS "twoFactor" (
"id" TEXT PRIMARY KEY NOT NULL,
"secret" TEXT NOT NULL,
"backupCodes" TEXT NOT NULL,
"userId" TEXT NOT NULL REFERENCES "user"("id") ON DELETE CASCADE,
"verified" INTEGER DEFAULT 1,
"failedVerificationCount" INTEGER DEFAULT 0,
"lockedUntil" TEXT,
"lastUsedStep" INTEGER
);
CREATE INDEX IF NOT EXISTS "twoFactor_userId_idx" ON "twoFactor" ("userId");
