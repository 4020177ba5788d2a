-- BetterAuth 1.7.0-1.7.2 required `account.issuer`; 1.7.25 does not make
-- it. Warden keys social accounts by it: add a nullable one where missing.
-- Credential accounts use "local:credential".
set @ddl = if((select count(*) from information_schema.columns where table_schema = database() and table_name = 'account' and column_name = 'issuer') = 0,
  'alter table `account` add column `issuer` text', 'do 0');
prepare stmt from @ddl;
execute stmt;
deallocate prepare stmt;
update `account` set `issuer` = 'local:credential' where `providerId` = 'credential' and `issuer` is null;
