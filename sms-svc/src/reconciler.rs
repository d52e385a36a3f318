//! Runs receipt reconciliation (see `core::reconcile`) on one replica at a
//! time, under the upkeep lock, once a second; the others stand by. Also
//! keeps `smsops_sms_receipt_gap`, the late receipts per pair.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use smsops_common::amqp::Lease;
use tokio::sync::watch;

use crate::{
    core::{ReconcileConfig, SmsCore},
    domain::RepoError,
    store::{Store, UpkeepLock},
};

const ROUND_EVERY: Duration = Duration::from_secs(1);
const GAP_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PairLabels {
    country: String,
    operator: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

pub struct Reconciler {
    store: Store,
    core: Arc<SmsCore>,
    config: ReconcileConfig,
    gap: Family<PairLabels, Gauge>,
    /// The pairs the gauge has now, so one whose gap closed is removed.
    gap_pairs: Mutex<HashSet<PairLabels>>,
    lookups: Family<ResultLabels, Counter>,
    leading: Gauge,
}

impl Reconciler {
    pub fn new(store: Store, core: Arc<SmsCore>, config: ReconcileConfig) -> Self {
        Self {
            store,
            core,
            config,
            gap: Family::default(),
            gap_pairs: Mutex::default(),
            lookups: Family::default(),
            leading: Gauge::default(),
        }
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "sms_receipt_gap",
            "Messages still awaiting their final status past the reconciliation delay, per pair (on the upkeep replica)",
            self.gap.clone(),
        );
        registry.register(
            "sms_receipt_lookups",
            "Lookups of late receipts at the provider, by result",
            self.lookups.clone(),
        );
        registry.register(
            "sms_upkeep_leading",
            "1 while this replica is the one reconciling receipts",
            self.leading.clone(),
        );
    }

    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            let asked = tokio::time::timeout(ROUND_EVERY * 5, self.store.try_upkeep_lock()).await;
            match asked.unwrap_or_else(|_| Err(RepoError::Unavailable("no answer".into()))) {
                Ok(Some(lock)) => self.lead(lock, stop.clone()).await,
                Ok(None) => {}
                Err(err) => tracing::debug!(error = %err, "cannot ask for the upkeep lock"),
            }
            tokio::select! {
                () = tokio::time::sleep(ROUND_EVERY) => {}
                _ = stop.changed() => {}
            }
        }
    }

    async fn lead(&self, mut lock: UpkeepLock, mut stop: watch::Receiver<bool>) {
        tracing::info!("receipt reconciliation leading");
        self.leading.set(1);
        let mut gap_at = Instant::now();
        while !*stop.borrow() && lock.still_held().await {
            let started = Instant::now();
            match self.core.reconcile_round(&self.config).await {
                Ok(round) => {
                    let answered = round.looked_up - round.failed;
                    self.count("answered", answered);
                    self.count("failed", round.failed);
                    if round.moved > 0 {
                        tracing::info!(
                            moved = round.moved,
                            ended = round.ended,
                            "late receipts reconciled"
                        );
                    }
                }
                Err(err) => tracing::warn!(error = %err, "receipt reconciliation failed"),
            }
            if Instant::now() >= gap_at {
                self.measure_gap().await;
                gap_at = Instant::now() + GAP_EVERY;
            }
            tokio::select! {
                () = tokio::time::sleep_until((started + ROUND_EVERY).into()) => {}
                _ = stop.changed() => {}
            }
        }
        // Another replica reports the gap from now on.
        self.gap.clear();
        self.pairs().clear();
        self.leading.set(0);
        let _ = tokio::time::timeout(ROUND_EVERY * 2, lock.release()).await;
    }

    fn pairs(&self) -> std::sync::MutexGuard<'_, HashSet<PairLabels>> {
        self.gap_pairs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn count(&self, result: &'static str, n: usize) {
        if n > 0 {
            self.lookups
                .get_or_create(&ResultLabels { result })
                .inc_by(n as u64);
        }
    }

    async fn measure_gap(&self) {
        let late =
            chrono::Utc::now() - chrono::TimeDelta::from_std(self.config.after).unwrap_or_default();
        match self.store.receipt_gaps(late).await {
            Ok(gaps) => {
                // Set, then remove what closed: a scrape never sees a gap vanish and return.
                let mut now = HashSet::new();
                for gap in gaps {
                    let labels = PairLabels {
                        country: gap.country,
                        operator: gap.operator,
                    };
                    self.gap.get_or_create(&labels).set(gap.messages);
                    now.insert(labels);
                }
                let mut pairs = self.pairs();
                for closed in pairs.difference(&now) {
                    self.gap.remove(closed);
                }
                *pairs = now;
            }
            Err(err) => tracing::warn!(error = %err, "receipt gap not measured"),
        }
    }
}
