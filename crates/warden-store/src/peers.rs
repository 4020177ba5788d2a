//! Hearing other instances' session-cache invalidations (see warden-core's
//! `invalidate.rs`): PostgreSQL `LISTEN` on the channel its triggers notify
//! (migration 8), or a Redis channel (`redis_bus.rs`).
//!
//! One loop serves both: connect and subscribe, report the link up, hand
//! every message to the instance, and prove the link twice a second with a
//! heartbeat sent through the same channel. When the connection ends, or a
//! heartbeat is not heard back within 1.5 s (a network that drops
//! packets without closing anything), the link is reported down: the
//! instance empties its cache and bypasses it, because what was sent
//! meanwhile is lost. Then it reconnects, with backoff.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use warden_core::{Invalidation, Warden};

/// The PostgreSQL channel (and, prefixed, the Redis one).
pub const CHANNEL: &str = "warden_invalidate";

/// How often the link is proved, and how long a heartbeat may take to come
/// back before the link counts as lost.
const HEARTBEAT: Duration = Duration::from_millis(500);
const HEARTBEAT_DEADLINE: Duration = Duration::from_millis(1500);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A subscribed connection: its messages, and the task that reads them
/// (aborted when the link is given up).
pub(crate) struct Link {
    pub messages: mpsc::Receiver<String>,
    pub reader: tokio::task::JoinHandle<()>,
}

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
/// Connects and subscribes.
pub(crate) type Connect = Box<dyn FnMut() -> BoxFuture<Result<Link, String>> + Send>;
/// Sends a message on the channel (the heartbeat), through another
/// connection than the subscribed one.
pub(crate) type Publish = Arc<dyn Fn(String) -> BoxFuture<Result<(), String>> + Sync + Send>;

/// Follows the channel until the task is dropped.
pub(crate) async fn follow(
    warden: Arc<Warden>,
    what: &'static str,
    mut connect: Connect,
    send: Publish,
) {
    let me = warden_core::token::new_id();
    let mut backoff = Duration::from_millis(100);
    loop {
        // A network that drops everything would hold a connection attempt
        // forever.
        let attempt = tokio::time::timeout(CONNECT_TIMEOUT, connect())
            .await
            .unwrap_or_else(|_| Err("connection attempt timed out".to_owned()));
        match attempt {
            Ok(mut link) => {
                backoff = Duration::from_millis(100);
                warden.invalidation_link_up();
                tracing::info!(via = what, "listening for other instances' invalidations");
                let why = listen(&warden, &me, &mut link, &send).await;
                link.reader.abort();
                tracing::warn!(via = what, reason = why, "invalidation link lost");
                warden.invalidation_link_down();
            }
            Err(e) => {
                warden.invalidation_link_down();
                tracing::debug!(via = what, error = %e, "invalidation link not established");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Hands messages to the instance until the link fails; says why.
async fn listen(warden: &Warden, me: &str, link: &mut Link, send: &Publish) -> &'static str {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq: u64 = 0;
    // The heartbeat in flight, and when it was sent.
    let mut waiting: Option<(String, Instant)> = None;
    loop {
        tokio::select! {
            message = link.messages.recv() => {
                let Some(message) = message else {
                    return "connection closed";
                };
                if let Some(ping) = message.strip_prefix("ping:") {
                    if waiting.as_ref().is_some_and(|(w, _)| w == ping) {
                        waiting = None;
                    }
                } else if let Some(i) = Invalidation::decode(&message) {
                    warden.apply_peer_invalidation(&i);
                } else {
                    tracing::debug!("unrecognised message on the invalidation channel ignored");
                }
            }
            _ = tick.tick() => {
                match &waiting {
                    Some((_, sent)) if sent.elapsed() > HEARTBEAT_DEADLINE => {
                        return "heartbeat not heard back";
                    }
                    Some(_) => {}
                    None => {
                        seq += 1;
                        let ping = format!("{me}:{seq}");
                        let send = send.clone();
                        let message = format!("ping:{ping}");
                        tokio::spawn(async move {
                            if let Err(e) = send(message).await {
                                tracing::debug!(error = %e, "heartbeat not sent");
                            }
                        });
                        waiting = Some((ping, Instant::now()));
                    }
                }
            }
        }
    }
}

/// PostgreSQL: `LISTEN warden_invalidate` on a connection of its own (not
/// one of the pool's), heartbeats through the pool.
pub struct PgPeers {
    pool: sqlx::PgPool,
}

impl PgPeers {
    pub(crate) fn new(pool: sqlx::PgPool) -> Self {
        PgPeers { pool }
    }

    /// Follows other instances until the task is dropped.
    pub async fn run(self, warden: Arc<Warden>) {
        let options = self.pool.connect_options().as_ref().clone();
        let own = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy_with(options);
        let connect: Connect = Box::new(move || {
            let own = own.clone();
            Box::pin(async move {
                let mut listener = sqlx::postgres::PgListener::connect_with(&own)
                    .await
                    .map_err(|e| e.to_string())?;
                listener.ignore_pool_close_event(true);
                listener.eager_reconnect(false);
                listener.listen(CHANNEL).await.map_err(|e| e.to_string())?;
                let (tx, messages) = mpsc::channel(4096);
                let reader = tokio::spawn(async move {
                    // `Ok(None)`: the connection was lost; an error: likewise.
                    while let Ok(Some(n)) = listener.try_recv().await {
                        if tx.send(n.payload().to_owned()).await.is_err() {
                            break;
                        }
                    }
                });
                Ok(Link { messages, reader })
            })
        });
        let pool = self.pool.clone();
        let send: Publish = Arc::new(move |message| {
            let pool = pool.clone();
            Box::pin(async move {
                tokio::time::timeout(
                    HEARTBEAT_DEADLINE,
                    sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(CHANNEL)
                        .bind(message)
                        .execute(&pool),
                )
                .await
                .map_err(|_| "timed out".to_owned())?
                .map(drop)
                .map_err(|e| e.to_string())
            })
        });
        follow(warden, "postgres", connect, send).await
    }
}
