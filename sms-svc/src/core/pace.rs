//! An account's rate, honoured across replicas: each replica books turns
//! on the account's one schedule (see [`PaceLedger`]) a few at a time and
//! sends on them, so however many replicas send, the provider sees at most
//! `rate` messages a second, evenly spaced.

use std::{collections::VecDeque, time::Duration};

use futures::future::BoxFuture;
use tokio::time::Instant;

use super::providers::Pace;
use crate::domain::PaceLedger;

/// Turns a replica books at once: about this long's worth.
const BOOKED_SPAN: Duration = Duration::from_millis(50);
/// How far ahead the schedule may be booked before a send gives up on the
/// account (and goes to the next of its route): beyond it the backlog is
/// better sent elsewhere, or refused, than held.
const AHEAD: Duration = Duration::from_secs(5);

pub struct Pacer<L> {
    ledger: L,
    provider: String,
    rate: u32,
    spacing: Duration,
    batch: u32,
    /// Turns booked and not yet used, earliest first.
    turns: tokio::sync::Mutex<VecDeque<Instant>>,
}

impl<L: PaceLedger> Pacer<L> {
    /// `rate` messages a second (at least 1).
    pub fn new(ledger: L, provider: &str, rate: u32) -> Self {
        let rate = rate.max(1);
        let spacing = Duration::from_secs(1) / rate;
        let batch = (BOOKED_SPAN.as_secs_f64() * f64::from(rate))
            .floor()
            .max(1.0) as u32;
        Self {
            ledger,
            provider: provider.to_string(),
            rate,
            spacing,
            batch,
            turns: tokio::sync::Mutex::new(VecDeque::new()),
        }
    }

    async fn next_turn(&self) -> Result<Instant, String> {
        let mut turns = self.turns.lock().await;
        // A turn long past is given up: using it now would send it
        // together with another replica's next one.
        let now = Instant::now();
        while turns.front().is_some_and(|at| *at + self.spacing < now) {
            turns.pop_front();
        }
        if turns.is_empty() {
            let booked = self
                .ledger
                .book(&self.provider, self.batch, self.spacing, AHEAD)
                .await
                .map_err(|err| {
                    format!("{}'s send schedule is unavailable: {err}", self.provider)
                })?;
            let Some(first) = booked else {
                return Err(format!(
                    "{} is booked more than {}s ahead at {} messages a second",
                    self.provider,
                    AHEAD.as_secs(),
                    self.rate
                ));
            };
            let start = Instant::now() + first;
            turns.extend((0..self.batch).map(|i| start + self.spacing * i));
        }
        turns
            .pop_front()
            .ok_or_else(|| "no turn booked".to_string())
    }
}

impl<L: PaceLedger> Pace for Pacer<L> {
    fn wait(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            loop {
                let at = self.next_turn().await?;
                tokio::time::sleep_until(at).await;
                // Woken well after its turn (this replica was busy): sent
                // now, it would go out with the turns after it.
                if Instant::now() <= at + self.spacing {
                    return Ok(());
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::memory::MemoryStore;

    #[tokio::test]
    async fn two_replicas_share_one_rate() {
        let store = MemoryStore::default();
        let (a, b) = (
            Pacer::new(store.clone(), "smsc", 200),
            Pacer::new(store.clone(), "smsc", 200),
        );
        let mut sent = Vec::new();
        for _ in 0..40 {
            let (x, y) = tokio::join!(a.next_turn(), b.next_turn());
            sent.push(x.unwrap());
            sent.push(y.unwrap());
        }
        sent.sort();
        // 80 turns 5 ms apart: no two closer, the last 395 ms after the first.
        let gaps: Vec<Duration> = sent.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter()
                .all(|gap| *gap + Duration::from_millis(1) >= Duration::from_millis(5))
        );
        let span = sent[79] - sent[0];
        assert!(span >= Duration::from_millis(394), "{span:?}");
    }

    #[tokio::test]
    async fn a_schedule_booked_too_far_ahead_is_refused() {
        let store = MemoryStore::default();
        let pacer = Pacer::new(store.clone(), "smsc", 1);
        // A turn a second: now, and five more up to 5 s ahead.
        for _ in 0..6 {
            pacer.next_turn().await.unwrap();
        }
        assert!(pacer.next_turn().await.is_err());
        store.state().down = true;
        let other = Pacer::new(store, "twilio", 1);
        assert!(other.next_turn().await.is_err());
    }
}
