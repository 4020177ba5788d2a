//! Time, injectable: the server reads the wall clock; tests move a mock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta};

use crate::model::Timestamp;

/// Where the service gets "now" from.
pub trait Clock: Send + Sync + 'static {
    /// The current time, truncated to milliseconds.
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        crate::model::now()
    }
}

/// A clock that only moves when told to. Cheap to clone; clones share time.
#[derive(Debug, Clone)]
pub struct MockClock(Arc<AtomicI64>);

impl MockClock {
    /// Starts at the current wall-clock time.
    pub fn new() -> Self {
        MockClock(Arc::new(AtomicI64::new(
            crate::model::now().timestamp_millis(),
        )))
    }

    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Default for MockClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MockClock {
    fn now(&self) -> Timestamp {
        DateTime::from_timestamp_millis(self.0.load(Ordering::SeqCst))
            .unwrap_or_else(|| DateTime::UNIX_EPOCH + TimeDelta::zero())
    }
}
