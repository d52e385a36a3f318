//! What metrics-svc exports to Prometheus besides its request metrics:
//! `smsops_sms_total{country,operator,status}`, the events this replica
//! counted (sum over replicas), `smsops_sms_delivery_seconds{country,operator,step}`,
//! how long messages took from their acceptance to `sent` and to
//! `delivered` (a histogram, summable over replicas), and
//! `smsops_sms_success_rate{country,operator}`, delivered / finished over the
//! last hour, read back from MySQL.

use std::{
    collections::HashSet,
    sync::{Mutex, atomic::AtomicU64},
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
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
struct StepLabels {
    country: String,
    operator: String,
    /// `sent` (the provider took it) or `delivered` (its receipt came).
    step: &'static str,
}

/// From 100 ms (a provider's answer) to an hour (a carrier holding a
/// message), tight around the seconds an OTP code must arrive in.
const DELIVERY_BUCKETS: [f64; 15] = [
    0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0,
];

type Latency = Family<StepLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(DELIVERY_BUCKETS)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PairLabels {
    country: String,
    operator: String,
}

pub struct Exported {
    total: Family<SmsLabels, Counter>,
    delivery: Latency,
    success_rate: Family<PairLabels, Gauge<f64, AtomicU64>>,
    /// The pairs with a success-rate series now, so a pair that left the
    /// window loses its series instead of showing a stale rate.
    shown: Mutex<HashSet<PairLabels>>,
}

impl Default for Exported {
    fn default() -> Self {
        Self {
            total: Family::default(),
            delivery: Family::new_with_constructor(latency_histogram),
            success_rate: Family::default(),
            shown: Mutex::default(),
        }
    }
}

impl Exported {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "sms",
            "SMS events counted, by pair and status (accepted is a message sent)",
            self.total.clone(),
        );
        registry.register(
            "sms_delivery_seconds",
            "time from a message's acceptance to sent and to delivered, per pair",
            self.delivery.clone(),
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
            for (step, samples) in [
                ("sent", &tally.to_sent_ms),
                ("delivered", &tally.to_delivered_ms),
            ] {
                if samples.is_empty() {
                    continue;
                }
                let histogram = self.delivery.get_or_create(&StepLabels {
                    country: tally.country.clone(),
                    operator: tally.operator.clone(),
                    step,
                });
                for ms in samples {
                    histogram.observe(*ms as f64 / 1000.0);
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
