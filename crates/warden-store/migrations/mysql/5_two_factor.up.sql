-- Two-factor authentication, in BetterAuth's twoFactor plugin schema as
-- its migrator makes it on MySQL, so that a BetterAuth database's
-- two-factor users keep working. A database made by BetterAuth with the
-- plugin already has these; hence the checks.
-- `lastUsedStep` is Warden's: the last TOTP time step accepted, so that a
-- code is never accepted twice. It is nullable and BetterAuth ignores it.
set @ddl = if((select count(*) from information_schema.columns where table_schema = database() and table_name = 'user' and column_name = 'twoFactorEnabled') = 0,
  'alter table `user` add column `twoFactorEnabled` boolean default false', 'do 0');
prepare stmt from @ddl;
execute stmt;
deallocate prepare stmt;
create table if not exists `twoFactor` (`id` varchar(36) not null primary key, `secret` varchar(255) not null, `backupCodes` text not null, `userId` varchar(36) not null references `user` (`id`) on delete cascade, `verified` boolean, `failedVerificationCount` integer, `lockedUntil` timestamp(3), index `twoFactor_secret_idx` (`secret`), index `twoFactor_userId_idx` (`userId`));
set @ddl = if((select count(*) from information_schema.columns where table_schema = database() and table_name = 'twoFactor' and column_name = 'verified') = 0,
  'alter table `twoFactor` add column `verified` boolean default true', 'do 0');
prepare stmt from @ddl;
execute stmt;
deallocate prepare stmt;
set @ddl = if((select count(*) from information_schema.columns where table_schema = database() and table_name = 'twoFactor' and column_name = 'failedVerificationCount') = 0,
  'alter table `twoFactor` add column `failedVerificationCount` integer default 0', 'do 0');
prepare stmt from @ddl;
execute stmt;
deallocate prepare stmt;
set @ddl = if((select count(*) from information_schema.columns where table_schema = database() and table_name = 'twoFactor' and column_name = 'lockedUntil') = 0,
  'alter table `twoFactor` add column `lockedUntil` timestamp(3) null', 'do 0');
prepare stmt from @ddl;
execute stmt;
deallocate prepare stmt;
set @ddl = if((select count(*) from information_schema.columns where table_schema = database() and table_name = 'twoFactor' and column_name = 'lastUsedStep') = 0,
  'alter table `twoFactor` add column `lastUsedStep` bigint', 'do 0');
prepare stmt from @ddl;
execute stmt;
deallocate prepare stmt;
set @ddl = if((select count(*) from information_schema.statistics where table_schema = database() and table_name = 'twoFactor' and index_name = 'twoFactor_userId_idx') = 0,
  'create index `twoFactor_userId_idx` on `twoFactor` (`userId`)', 'do 0');
prepare stmt from @ddl;
execute stmt;
deallocate prepare stmt;
