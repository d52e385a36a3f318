//! When a replica last failed to reach its message store.

use std::{sync::Mutex, time::Duration};

use tokio::time::Instant;

#[derive(Debug, Default)]
pub(super) struct CutOff(Mutex<Option<Instant>>);

impl CutOff {
    pub(super) fn note(&self) {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now());
    }

    /// Whether the last failure was less than `span` ago.
    pub(super) fn within(&self, span: Duration) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_some_and(|at| at.elapsed() < span)
    }
}
