-- Passkeys, in the table BetterAuth's passkey plugin (@better-auth/passkey
-- 1.7) defines, as its migrator makes it on MySQL (its two CREATE INDEX
-- declared inline, as in migration 1). A database made by BetterAuth with
-- the plugin already has it; hence IF NOT EXISTS. MySQL ignores an inline
-- `references`, as it does for BetterAuth's own tables: deleting a user
-- deletes its passkeys explicitly (warden-store's delete_user).
create table if not exists `passkey` (`id` varchar(36) not null primary key, `name` text, `publicKey` text not null, `userId` varchar(36) not null references `user` (`id`) on delete cascade, `credentialID` varchar(255) not null, `counter` integer not null, `deviceType` text not null, `backedUp` boolean not null, `transports` text, `createdAt` timestamp(3), `aaguid` text, index `passkey_userId_idx` (`userId`), index `passkey_credentialID_idx` (`credentialID`));
