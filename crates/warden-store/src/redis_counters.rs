//! Rate-limit counters in Redis: fixed windows with `INCR` + `PEXPIRE` in one
//! Lua script, so that concurrent instances never lose a hit or leave a key
//! without expiry.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use warden_core::{Counters, Hit, StoreError};

const HIT: &str = r#"
local c = redis.call('INCR', KEYS[1])
if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {c, ttl}
"#;

pub struct RedisCounters {
    conn: ConnectionManager,
    prefix: String,
    hit: redis::Script,
}

fn err(e: redis::RedisError) -> StoreError {
    StoreError::Backend(format!("redis: {e}"))
}

impl RedisCounters {
    /// Connects to `url` (`redis://host:6379/0`); keys are `<prefix><key>`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(err)?;
        let conn = ConnectionManager::new(client).await.map_err(err)?;
        Ok(RedisCounters {
            conn,
            prefix: prefix.to_owned(),
            hit: redis::Script::new(HIT),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait]
impl Counters for RedisCounters {
    async fn hit(&self, key: &str, window: Duration) -> Result<Hit, StoreError> {
        let ms = u64::try_from(window.as_millis())
            .unwrap_or(u64::MAX / 4)
            .max(1);
        let mut conn = self.conn.clone();
        let (count, ttl): (u64, i64) = self
            .hit
            .key(self.key(key))
            .arg(ms)
            .invoke_async(&mut conn)
            .await
            .map_err(err)?;
        Ok(Hit {
            count,
            reset_in: Duration::from_millis(u64::try_from(ttl).unwrap_or(0)),
        })
    }

    async fn peek(&self, key: &str) -> Result<Option<Hit>, StoreError> {
        let mut conn = self.conn.clone();
        let (count, ttl): (Option<u64>, i64) = redis::pipe()
            .get(self.key(key))
            .pttl(self.key(key))
            .query_async(&mut conn)
            .await
            .map_err(err)?;
        Ok(match (count, ttl) {
            (Some(count), ttl) if ttl > 0 => Some(Hit {
                count,
                reset_in: Duration::from_millis(ttl as u64),
            }),
            _ => None,
        })
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("DEL")
            .arg(self.key(key))
            .query_async::<()>(&mut conn)
            .await
            .map_err(err)
    }
}
