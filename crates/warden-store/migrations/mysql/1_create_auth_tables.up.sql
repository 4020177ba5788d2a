-- BetterAuth 1.7.25's core tables as its own migrator makes them on MySQL
-- (`npx auth migrate`, no plugins): a database made by BetterAuth already
-- has them, hence IF NOT EXISTS. The indexes it makes with CREATE INDEX are
-- declared inline (MySQL 8 has no CREATE INDEX IF NOT EXISTS); SHOW CREATE
-- TABLE gives the same result either way.
-- Every statement here and in the later migrations works on MySQL 8 and
-- MariaDB alike: a column or index that may already exist is added through
-- a prepared statement after a look in information_schema.
create table if not exists `user` (`id` varchar(36) not null primary key, `name` varchar(255) not null, `email` varchar(255) not null unique, `emailVerified` boolean not null, `image` text, `createdAt` timestamp(3) default CURRENT_TIMESTAMP(3) not null, `updatedAt` timestamp(3) default CURRENT_TIMESTAMP(3) not null);

create table if not exists `session` (`id` varchar(36) not null primary key, `expiresAt` timestamp(3) not null, `token` varchar(255) not null unique, `createdAt` timestamp(3) default CURRENT_TIMESTAMP(3) not null, `updatedAt` timestamp(3) not null, `ipAddress` text, `userAgent` text, `userId` varchar(36) not null references `user` (`id`) on delete cascade, index `session_userId_idx` (`userId`));

create table if not exists `account` (`id` varchar(36) not null primary key, `accountId` text not null, `providerId` text not null, `userId` varchar(36) not null references `user` (`id`) on delete cascade, `accessToken` text, `refreshToken` text, `idToken` text, `accessTokenExpiresAt` timestamp(3), `refreshTokenExpiresAt` timestamp(3), `scope` text, `password` text, `createdAt` timestamp(3) default CURRENT_TIMESTAMP(3) not null, `updatedAt` timestamp(3) not null, index `account_userId_idx` (`userId`));

create table if not exists `verification` (`id` varchar(36) not null primary key, `identifier` varchar(255) not null, `value` text not null, `expiresAt` timestamp(3) not null, `createdAt` timestamp(3) default CURRENT_TIMESTAMP(3) not null, `updatedAt` timestamp(3) default CURRENT_TIMESTAMP(3) not null, index `verification_identifier_idx` (`identifier`));

-- Warden accepts names of up to 256 characters (warden-core validate.rs),
-- one more than BetterAuth's varchar(255): widen it (BetterAuth is
-- unaffected), so that such a name is stored rather than refused with an
-- error.
alter table `user` modify `name` varchar(256) not null;

-- Instants chosen outside Warden (a provider's token expiry) may lie past
-- January 2038, where BetterAuth's timestamp(3) ends: datetime(3), in UTC
-- like the rest (every connection runs with time_zone '+00:00', so the
-- conversion keeps each instant).
alter table `account` modify `accessTokenExpiresAt` datetime(3) null, modify `refreshTokenExpiresAt` datetime(3) null;
