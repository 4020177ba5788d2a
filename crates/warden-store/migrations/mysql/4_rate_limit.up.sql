-- Fixed-window counters for rate limits and sign-in throttling, shared by
-- every instance using this database (rate_limit.storage = "database").
-- `resetAt` is when the key's current window ends, in Unix milliseconds.
-- Keys compare exactly (binary collation); a key longer than 255
-- characters is stored as its SHA-256 (store_impl.rs, counter_key).
create table if not exists `warden_rate_limit` (
  `key` varchar(255) character set utf8mb4 collate utf8mb4_bin not null primary key,
  `count` bigint not null,
  `resetAt` bigint not null
);
