//! Counters for rate limits and sign-in throttling: fixed windows, keyed by
//! strings. One trait, three stores: in memory (one instance), the database
//! and Redis (several instances sharing limits; in `warden-store`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::store::StoreError;

/// The state of a key's current window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Hits in the current window, this one included.
    pub count: u64,
    /// Until the window ends.
    pub reset_in: Duration,
}

#[async_trait]
pub trait Counters: Send + Sync + 'static {
    /// Counts one hit on `key` in its current window (a new window of length
    /// `window` starts when the last one has ended).
    async fn hit(&self, key: &str, window: Duration) -> Result<Hit, StoreError>;

    /// The current window of `key` without counting, if one is open.
    async fn peek(&self, key: &str) -> Result<Option<Hit>, StoreError>;

    /// Forgets `key`.
    async fn reset(&self, key: &str) -> Result<(), StoreError>;

    /// Deletes finished windows (for stores that do not expire keys).
    async fn purge(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

type Shard = Mutex<HashMap<String, (u64, Instant)>>;

const SHARDS: usize = 16;

/// Counters in this process, in 16 independently locked shards so that
/// concurrent requests rarely wait for each other. At most `capacity` keys
/// in all: when a shard is full, finished windows are dropped first, then
/// the windows closest to ending.
pub struct MemoryCounters {
    shards: Vec<Shard>,
    capacity_per_shard: usize,
}

impl MemoryCounters {
    pub fn new(capacity: usize) -> Self {
        MemoryCounters {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            capacity_per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, key: &str) -> &Shard {
        use std::hash::{BuildHasher, RandomState};
        static SEED: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
        let h = SEED.get_or_init(RandomState::new).hash_one(key);
        &self.shards[(h as usize) % SHARDS]
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap().len()).sum()
    }
}

impl Default for MemoryCounters {
    fn default() -> Self {
        Self::new(100_000)
    }
}

#[async_trait]
impl Counters for MemoryCounters {
    async fn hit(&self, key: &str, window: Duration) -> Result<Hit, StoreError> {
        let now = Instant::now();
        let mut map = self.shard(key).lock().expect("not poisoned");
        if map.len() >= self.capacity_per_shard && !map.contains_key(key) {
            map.retain(|_, (_, end)| *end > now);
            if map.len() >= self.capacity_per_shard {
                // Still full of live windows: drop the ones closest to ending.
                let mut ends: Vec<Instant> = map.values().map(|(_, e)| *e).collect();
                ends.sort_unstable();
                let cut = ends[ends.len() / 10];
                map.retain(|_, (_, end)| *end > cut);
            }
        }
        let entry = map.entry(key.to_owned()).or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 += 1;
        Ok(Hit {
            count: entry.0,
            reset_in: entry.1 - now,
        })
    }

    async fn peek(&self, key: &str) -> Result<Option<Hit>, StoreError> {
        let now = Instant::now();
        let map = self.shard(key).lock().expect("not poisoned");
        Ok(map
            .get(key)
            .filter(|(_, end)| *end > now)
            .map(|(count, end)| Hit {
                count: *count,
                reset_in: *end - now,
            }))
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        self.shard(key).lock().expect("not poisoned").remove(key);
        Ok(())
    }

    async fn purge(&self) -> Result<(), StoreError> {
        let now = Instant::now();
        for shard in &self.shards {
            shard
                .lock()
                .expect("not poisoned")
                .retain(|_, (_, end)| *end > now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fixed_windows() {
        // Room for both keys in any shard: with a capacity of 10 (one key
        // per shard), "a" and "b" hashing to the same shard (1 in 16 runs)
        // evicted "a".
        let c = MemoryCounters::new(1000);
        let w = Duration::from_millis(300);
        assert_eq!(c.hit("a", w).await.unwrap().count, 1);
        assert_eq!(c.hit("a", w).await.unwrap().count, 2);
        assert_eq!(c.hit("b", w).await.unwrap().count, 1);
        assert_eq!(c.peek("a").await.unwrap().unwrap().count, 2);
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(c.peek("a").await.unwrap(), None);
        assert_eq!(c.hit("a", w).await.unwrap().count, 1);
        c.reset("a").await.unwrap();
        assert_eq!(c.peek("a").await.unwrap(), None);
    }

    #[tokio::test]
    async fn capacity_is_bounded() {
        let c = MemoryCounters::new(100);
        for i in 0..1000 {
            c.hit(&format!("k{i}"), Duration::from_secs(60))
                .await
                .unwrap();
        }
        assert!(c.len() <= 112, "{}", c.len());
    }
}
