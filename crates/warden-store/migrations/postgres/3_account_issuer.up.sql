-- BetterAuth 1.7 keys accounts by (issuer, accountId) and requires
-- `account.issuer`. Databases from the tutorial's schema lack the column;
-- BetterAuth 1.7 databases have it. Credential accounts use "local:credential".
ALTER TABLE "account" ADD COLUMN IF NOT EXISTS "issuer" TEXT;
UPDATE "account" SET "issuer" = 'local:credential'
WHERE "providerId" = 'credential' AND "issuer" IS NULL;
