-- Social accounts are keyed by (provider, provider's user id): one identity
-- can belong to one user only, even under concurrent sign-ins.
CREATE UNIQUE INDEX IF NOT EXISTS "account_providerId_accountId_uidx" ON "account" ("providerId", "accountId");
