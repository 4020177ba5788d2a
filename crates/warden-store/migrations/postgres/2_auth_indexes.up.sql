-- Lookups by user (listing sessions, finding the credential account) and by
-- verification identifier. IF NOT EXISTS: a BetterAuth database may have them.
CREATE INDEX IF NOT EXISTS "session_userId_idx" ON "session" ("userId");
CREATE INDEX IF NOT EXISTS "account_userId_idx" ON "account" ("userId");
CREATE INDEX IF NOT EXISTS "verification_identifier_idx" ON "verification" ("identifier");
