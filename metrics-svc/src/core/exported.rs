//! What metrics-svc exports to Prometheus besides its request metrics:
//! `smsops_sms_total{country,operator,status}`, the events this replica
//! counted (sum over replicas), and `smsops_sms_success_rate{country,operator}`,
//! delivered / finished over the last hour, read back from MySQL.

use std::{
    collections::HashSet,
    sync::{Mutex, atomic::AtomicU64},
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use super::Tally;
use crate::store::PairTotals;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SmsLabels {
    country: String,
    operator: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PairLabels {
    country: String,
    operator: String,
}

#[derive(Default)]
pub struct Exported {
    total: Family<SmsLabels, Counter>,
    success_rate: Family<PairLabels, Gauge<f64, AtomicU64>>,
    /// The pairs with a success-rate series now, so a pair that left the
    /// window loses its series instead of showing a stale rate.
    shown: Mutex<HashSet<PairLabels>>,
}

impl Exported {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "sms",
            "SMS events counted, by pair and status (accepted is a message sent)",
            self.total.clone(),
        );
        registry.register(
            "sms_success_rate",
            "delivered / (delivered + undelivered + failed) over the last hour, per pair",
            self.success_rate.clone(),
        );
    }

    /// Adds what a committed batch counted.
    pub fn count<'a>(&self, tallies: impl IntoIterator<Item = &'a Tally>) {
        for tally in tallies {
            for (status, n) in [
                ("accepted", tally.sent),
                ("delivered", tally.delivered),
                ("undelivered", tally.undelivered),
                ("failed", tally.failed),
            ] {
                if n > 0 {
                    self.total
                        .get_or_create(&SmsLabels {
                            country: tally.country.clone(),
                            operator: tally.operator.clone(),
                            status,
                        })
                        .inc_by(u64::from(n));
                }
            }
        }
    }

    /// Sets each pair's success rate from the last hour's totals.
    pub fn set_rates(&self, totals: &[PairTotals]) {
        let mut now = HashSet::new();
        for t in totals {
            let finished = t.delivered + t.undelivered + t.failed;
            if finished <= 0 {
                continue;
            }
            let labels = PairLabels {
                country: t.country.clone(),
                operator: t.operator.clone(),
            };
            self.success_rate
                .get_or_create(&labels)
                .set(t.delivered as f64 / finished as f64);
            now.insert(labels);
        }
        if let Ok(mut shown) = self.shown.lock() {
            for gone in shown.difference(&now) {
                self.success_rate.remove(gone);
            }
            *shown = now;
        }
    }
}
