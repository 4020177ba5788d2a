-- Social accounts are keyed by (provider, provider's user id): one identity
-- can belong to one user only, even under concurrent sign-ins. Both are
-- BetterAuth `text` columns, which MySQL indexes by a prefix only: 191 and
-- 500 characters (2764 of an index's 3072 bytes). Provider ids are short
-- names and OpenID Connect subjects are at most 255 characters.
set @ddl = if((select count(*) from information_schema.statistics where table_schema = database() and table_name = 'account' and index_name = 'account_providerId_accountId_uidx') = 0,
  'create unique index `account_providerId_accountId_uidx` on `account` (`providerId`(191), `accountId`(500))', 'do 0');
prepare stmt from @ddl;
execute stmt;
deallocate prepare stmt;
