//! What notify-svc exports to Prometheus besides its request metrics: how
//! far it has read and how often it has judged. An operator sees a stuck
//! consumer or evaluator here before an alert goes missing.

use prometheus_client::{metrics::counter::Counter, registry::Registry};

#[derive(Default)]
pub struct Exported {
    events: Counter,
    evaluations: Counter,
}

impl Exported {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "notify_events",
            "SMS outcomes and session events taken in by this replica (redeliveries included)",
            self.events.clone(),
        );
        registry.register(
            "notify_evaluations",
            "completed rounds of the alert rules over every pair",
            self.evaluations.clone(),
        );
    }

    pub fn recorded(&self, events: usize) {
        self.events.inc_by(events as u64);
    }

    pub fn evaluated(&self) {
        self.evaluations.inc();
    }
}
