//! Session-cache invalidations over Redis pub/sub, for databases that
//! cannot announce changes themselves (MySQL), or by choice.
//!
//! Unlike PostgreSQL's NOTIFY, a message here is published by the instance
//! after its change committed. Publishing queues (it never blocks a
//! request); one task sends the queue in order. Listening follows the same
//! rules as PostgreSQL's (`peers.rs`): a heartbeat twice a second, and a lost
//! link empties and bypasses the cache until it is back.

use std::sync::Arc;

use redis::aio::ConnectionManager;
use tokio::sync::mpsc;
use warden_core::{Invalidation, InvalidationBus, StoreError, Warden};

use crate::peers::{follow, Connect, Link, Publish};

/// How many invalidations may wait to be published. Beyond it they are
/// dropped with an error log: other instances then see the change when
/// their cached entries expire.
const QUEUE: usize = 65_536;

pub struct RedisBus {
    client: redis::Client,
    conn: ConnectionManager,
    channel: String,
    queue: mpsc::Sender<String>,
}

struct Publisher {
    queue: mpsc::Sender<String>,
}

impl InvalidationBus for Publisher {
    fn publish(&self, invalidation: &Invalidation) {
        if self.queue.try_send(invalidation.encode()).is_err() {
            tracing::error!("invalidation not published: the Redis queue is full or closed");
        }
    }
}

fn err(e: redis::RedisError) -> StoreError {
    StoreError::Backend(format!("redis: {e}"))
}

impl RedisBus {
    /// Connects to `url`; the channel is `<prefix>invalidate`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(err)?;
        let conn = ConnectionManager::new(client.clone()).await.map_err(err)?;
        let channel = format!("{prefix}invalidate");
        let (queue, mut rx) = mpsc::channel::<String>(QUEUE);
        let (mut c, ch) = (conn.clone(), channel.clone());
        tokio::spawn(async move {
            while let Some(message) = rx.recv().await {
                let sent: Result<i64, _> = redis::cmd("PUBLISH")
                    .arg(&ch)
                    .arg(&message)
                    .query_async(&mut c)
                    .await;
                if let Err(e) = sent {
                    tracing::error!(error = %e, "invalidation not published to Redis");
                }
            }
        });
        Ok(RedisBus {
            client,
            conn,
            channel,
            queue,
        })
    }

    /// What the instance publishes through ([`Warden::with_invalidation_bus`]).
    pub fn publisher(&self) -> Arc<dyn InvalidationBus> {
        Arc::new(Publisher {
            queue: self.queue.clone(),
        })
    }

    /// Follows other instances until the task is dropped.
    pub async fn run(self, warden: Arc<Warden>) {
        let (client, channel) = (self.client.clone(), self.channel.clone());
        let connect: Connect = Box::new(move || {
            let (client, channel) = (client.clone(), channel.clone());
            Box::pin(async move {
                let mut pubsub = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
                pubsub
                    .subscribe(&channel)
                    .await
                    .map_err(|e| e.to_string())?;
                let (tx, messages) = mpsc::channel(4096);
                let reader = tokio::spawn(async move {
                    use futures_util::StreamExt;
                    let mut stream = pubsub.into_on_message();
                    while let Some(m) = stream.next().await {
                        let Ok(payload) = m.get_payload::<String>() else {
                            continue;
                        };
                        if tx.send(payload).await.is_err() {
                            break;
                        }
                    }
                });
                Ok(Link { messages, reader })
            })
        });
        let (conn, channel) = (self.conn.clone(), self.channel.clone());
        let send: Publish = Arc::new(move |message| {
            let (mut conn, channel) = (conn.clone(), channel.clone());
            Box::pin(async move {
                redis::cmd("PUBLISH")
                    .arg(&channel)
                    .arg(&message)
                    .query_async::<i64>(&mut conn)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            })
        });
        follow(warden, "redis", connect, send).await
    }
}
