-- Fixed-window counters for rate limits and sign-in throttling, shared by
-- every instance using this database (rate_limit.storage = "database").
-- "resetAt" is when the key's current window ends, in Unix milliseconds.
CREATE TABLE IF NOT EXISTS "warden_rate_limit" (
"key" TEXT PRIMARY KEY NOT NULL,
"count" BIGINT NOT NULL,
"resetAt" BIGINT NOT NULL
);
