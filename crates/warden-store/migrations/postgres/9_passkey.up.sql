-- Passkeys, in the table BetterAuth's passkey plugin (@better-auth/passkey
-- 1.7) defines, as its migrator makes it on PostgreSQL. A database made by
-- BetterAuth with the plugin already has it; hence IF NOT EXISTS.
CREATE TABLE IF NOT EXISTS "passkey" ("id" text not null primary key, "name" text, "publicKey" text not null, "userId" text not null references "user" ("id") on delete cascade, "credentialID" text not null, "counter" integer not null, "deviceType" text not null, "backedUp" boolean not null, "transports" text, "createdAt" timestamptz, "aaguid" text);
CREATE INDEX IF NOT EXISTS "passkey_userId_idx" ON "passkey" ("userId");
CREATE INDEX IF NOT EXISTS "passkey_credentialID_idx" ON "passkey" ("credentialID");
