//! Keeping several instances' session caches right.
//!
//! Every instance caches validated sessions for `session.cache_ttl`. A
//! change that ends a session or changes what it resolves to (sign-out,
//! revocation, a password change, a ban, a profile update...) must reach
//! every instance's cache at once, not when the entry expires:
//!
//! - an [`Invalidation`] names what to drop: one session (by the hash of
//!   its token, which is what the database holds), every session of a user,
//!   or everything;
//! - this process drops it from its own cache when it makes the change and,
//!   when an [`InvalidationBus`] is set (Redis), publishes it;
//! - on PostgreSQL, the database publishes it itself: triggers on `session`
//!   and `user` call `pg_notify` inside the transaction that changes the
//!   row, so a change is announced exactly when it commits, whoever makes
//!   it (another instance, the command line, BetterAuth itself);
//! - a listener (in `warden-store`) hands what it hears to
//!   [`Warden::apply_peer_invalidation`], and reports its link with
//!   [`Warden::invalidation_link_down`] / [`Warden::invalidation_link_up`].
//!   While the link is down, notifications may be lost: the cache is
//!   flushed and not used until the link is back.
//!
//! A read that started before an invalidation must not put what it read
//! back into the cache after it: every invalidation bumps a generation,
//! and an entry read under an older generation is dropped again (see
//! `Warden::check_session`).

use std::sync::atomic::Ordering;

use crate::service::Warden;
use warden_telemetry::metrics::{PeerKind, PeerLabels};

/// Which cached sessions to drop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// The session whose token has this hash (`TokenHash`, 64 hex digits).
    Session(String),
    /// Every session of this user id.
    User(String),
    /// Every session.
    All,
}

/// The longest message accepted (a user id is at most 256 bytes).
const MAX_MESSAGE: usize = 300;

impl Invalidation {
    /// The wire form, shared by PostgreSQL's triggers and Redis:
    /// `s:<token hash>`, `u:<user id>` or `*`.
    pub fn encode(&self) -> String {
        match self {
            Invalidation::Session(h) => format!("s:{h}"),
            Invalidation::User(id) => format!("u:{id}"),
            Invalidation::All => "*".to_owned(),
        }
    }

    /// Reads the wire form; `None` for anything else (a heartbeat, noise).
    pub fn decode(message: &str) -> Option<Invalidation> {
        if message.len() > MAX_MESSAGE {
            return None;
        }
        if message == "*" {
            return Some(Invalidation::All);
        }
        match message.split_once(':')? {
            ("s", h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(Invalidation::Session(h.to_ascii_lowercase()))
            }
            ("u", id) if !id.is_empty() => Some(Invalidation::User(id.to_owned())),
            _ => None,
        }
    }

    fn kind(&self) -> PeerKind {
        match self {
            Invalidation::Session(_) => PeerKind::Session,
            Invalidation::User(_) => PeerKind::User,
            Invalidation::All => PeerKind::All,
        }
    }
}

/// Carries this process's invalidations to the other instances, after the
/// change committed. Publishing must not block: an implementation queues.
/// Not needed on PostgreSQL, where the database announces changes itself.
pub trait InvalidationBus: Send + Sync {
    fn publish(&self, invalidation: &Invalidation);
}

impl Warden {
    /// Drops a change made by this process from the cache, and tells the
    /// other instances when a bus is set.
    pub(crate) fn invalidate(&self, invalidation: Invalidation) {
        self.drop_cached(&invalidation);
        if let Some(bus) = &self.bus {
            bus.publish(&invalidation);
        }
    }

    /// An invalidation heard from another instance (or from the database).
    pub fn apply_peer_invalidation(&self, invalidation: &Invalidation) {
        self.metrics
            .peer_invalidations
            .get_or_create(&PeerLabels {
                kind: invalidation.kind(),
            })
            .inc();
        self.drop_cached(invalidation);
    }

    /// The listener lost its link: what it would have heard may be lost,
    /// so the cache is emptied and bypassed until [`Self::invalidation_link_up`].
    pub fn invalidation_link_down(&self) {
        let was_up = self.cache_live.swap(false, Ordering::SeqCst);
        self.drop_cached(&Invalidation::All);
        self.metrics.invalidation_link_up.set(0);
        if was_up {
            tracing::warn!("invalidation listener lost: session cache emptied and bypassed until it listens again");
        }
    }

    /// The listener listens: the cache may be used again. What was cached
    /// before is gone (see [`Self::invalidation_link_down`]).
    pub fn invalidation_link_up(&self) {
        self.drop_cached(&Invalidation::All);
        if !self.cache_live.swap(true, Ordering::SeqCst) {
            tracing::info!("invalidation listener listening: session cache in use");
        }
        self.metrics.invalidation_link_up.set(1);
    }

    /// Sets where this process's invalidations go (Redis). Call before the
    /// instance is shared.
    pub fn with_invalidation_bus(mut self, bus: std::sync::Arc<dyn InvalidationBus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// This instance will hear other instances through a listener: the
    /// cache stays unused until the listener reports that it listens.
    pub fn expect_invalidation_listener(self) -> Self {
        self.cache_live.store(false, Ordering::SeqCst);
        self.metrics.invalidation_link_up.set(0);
        self
    }

    fn drop_cached(&self, invalidation: &Invalidation) {
        let Some(cache) = &self.cache else {
            return;
        };
        // First the generation, then the entries: a read that began before
        // this sees the new generation after its insert and drops its entry
        // (see `check_session`).
        self.cache_gen.fetch_add(1, Ordering::SeqCst);
        match invalidation {
            Invalidation::Session(hash) => cache.invalidate(hash),
            Invalidation::User(id) => {
                let id = id.clone();
                // Fails only if closures are not supported, which we enable.
                let _ = cache.invalidate_entries_if(move |_, v| v.user.id == id);
            }
            Invalidation::All => cache.invalidate_all(),
        }
        self.metrics.session_cache_invalidations.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::Invalidation as I;

    #[test]
    fn wire_form_round_trips_and_refuses_noise() {
        let h = "a".repeat(64);
        for i in [I::Session(h.clone()), I::User("u1".into()), I::All] {
            assert_eq!(I::decode(&i.encode()), Some(i));
        }
        assert_eq!(
            I::decode(&format!("s:{}", "A".repeat(64))),
            Some(I::Session(h))
        );
        for bad in ["", "s:", "s:abc", "u:", "x:1", "ping:1", &"u:".repeat(200)] {
            assert_eq!(I::decode(bad), None, "{bad:?}");
        }
    }
}
