-- Administration, in BetterAuth's admin plugin schema as its migrator makes
-- it on MySQL (a database made by BetterAuth with the plugin already has
-- these columns; hence the checks): roles (comma-separated), bans, and the
-- admin behind an impersonation.
set @ddl = if((select count(*) from information_schema.columns where table_schema = database() and table_name = 'user' and column_name = 'role') = 0,
  'alter table `user` add column `role` text', 'do 0');
prepare stmt from @ddl;
execute stmt;
deallocate prepare stmt;
set @ddl = if((select count(*) from information_schema.columns where table_schema = database() and table_name = 'user' and column_name = 'banned') = 0,
  'alter table `user` add column `banned` boolean default false', 'do 0');
prepare stmt from @ddl;
execute stmt;
deallocate prepare stmt;
set @ddl = if((select count(*) from information_schema.columns where table_schema = database() and table_name = 'user' and column_name = 'banReason') = 0,
  'alter table `user` add column `banReason` text', 'do 0');
prepare stmt from @ddl;
execute stmt;
deallocate prepare stmt;
set @ddl = if((select count(*) from information_schema.columns where table_schema = database() and table_name = 'user' and column_name = 'banExpires') = 0,
  'alter table `user` add column `banExpires` datetime(3) null', 'do 0');
prepare stmt from @ddl;
execute stmt;
deallocate prepare stmt;
set @ddl = if((select count(*) from information_schema.columns where table_schema = database() and table_name = 'session' and column_name = 'impersonatedBy') = 0,
  'alter table `session` add column `impersonatedBy` text', 'do 0');
prepare stmt from @ddl;
execute stmt;
deallocate prepare stmt;

-- A ban's end is an admin's choice, possibly past January 2038 where
-- BetterAuth's timestamp(3) ends: datetime(3), in UTC (see migration 1).
alter table `user` modify `banExpires` datetime(3) null;

-- Warden's audit trail of administrative actions. No credential is ever
-- written here (not even a new password): `detail` holds what changed by
-- name only.
-- `seq` orders rows as they were written (timestamps can tie).
create table if not exists `warden_audit` (
  `seq` bigint not null auto_increment primary key,
  `id` varchar(36) not null unique,
  `at` timestamp(3) not null default current_timestamp(3),
  `actorId` text,
  `actor` text not null,
  `action` text not null,
  `targetId` text,
  `ipAddress` text,
  `userAgent` text,
  `detail` text not null
);

-- Users whose cached sessions every instance must drop at once (a ban, a
-- revocation, a role change made by another process: another server, or
-- the CLI). Rows are only useful for a few seconds and are purged.
create table if not exists `warden_revocation` (
  `seq` bigint not null auto_increment primary key,
  `userId` text not null,
  `at` timestamp(3) not null default current_timestamp(3),
  index `warden_revocation_at_idx` (`at`)
);
