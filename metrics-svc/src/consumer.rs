//! Reads SMS events from metrics-svc's own durable queue and counts them.
//! Deliveries are acked only after the transaction that counted them
//! committed, so a crash means redelivery, and redelivery is harmless
//! (each event id is counted once). A message that is not an SMS event is
//! rejected to the dead-letter queue `<queue>.dlq` instead of coming back
//! forever.

use std::{sync::Arc, time::Duration};

use lapin::message::Delivery;
use smsops_common::consume::{BatchHandler, QueueSpec, ack_up_to, consume_batches, read_or_reject};

use crate::{
    core::{MetricsCore, SmsEvent},
    store::Store,
};

pub struct EventConsumer {
    store: Store,
    core: Arc<MetricsCore>,
    amqp_url: String,
    spec: QueueSpec,
}

/// The statuses [`crate::core::tally`] counts; the others (`queued`) would
/// cost a delivery and a dedupe row each for nothing.
const COUNTED: [&str; 5] = [
    "sms.accepted",
    "sms.sent",
    "sms.delivered",
    "sms.undelivered",
    "sms.failed",
];

impl EventConsumer {
    pub fn new(
        store: Store,
        core: Arc<MetricsCore>,
        amqp_url: String,
        exchange: String,
        queue: String,
        prefetch: u16,
    ) -> Self {
        Self {
            store,
            core,
            amqp_url,
            spec: QueueSpec {
                queue,
                bindings: COUNTED
                    .iter()
                    .map(|key| (exchange.clone(), (*key).to_string()))
                    .collect(),
                // Versions before 2026-12-08 took every status, `queued`
                // too, which counts for nothing here.
                stale_bindings: vec![(exchange, "sms.#".into())],
                prefetch,
                // A batch can hold all the broker may have out to us.
                batch: usize::from(prefetch.max(1)),
                linger: Duration::from_millis(20),
                consumer_tag: "metrics-svc".into(),
            },
        }
    }

    /// Runs until `stop` turns true; never gives up on the broker.
    pub async fn run(self, stop: tokio::sync::watch::Receiver<bool>) {
        consume_batches(&self.amqp_url, &self.spec, &self, stop).await;
    }
}

impl BatchHandler for EventConsumer {
    /// Counts a batch, then settles every delivery in it.
    async fn handle(&self, deliveries: Vec<Delivery>) -> Result<(), String> {
        let (events, last) = read_or_reject(deliveries, SmsEvent::parse).await?;
        let Some(last) = last else {
            return Ok(());
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.store.count(&events).await {
                Ok(tallies) => {
                    self.core.exported().count(&tallies);
                    let mut pairs: Vec<String> = events
                        .iter()
                        .map(|e| e.country_operator_id.clone())
                        .collect();
                    pairs.sort_unstable();
                    pairs.dedup();
                    self.core.changed(pairs);
                    break;
                }
                // Another consumer counted one of these first, or MySQL is
                // away: nothing was counted; try again (unacked, the events
                // would come back anyway).
                Err(err) if attempt < 50 => {
                    tracing::warn!(error = %err, attempt, "counting events failed, retrying");
                    tokio::time::sleep(Duration::from_millis(100 * attempt.min(20))).await;
                }
                Err(err) => return Err(err.to_string()),
            }
        }
        // One ack for the whole batch: it settles every delivery up to the last.
        ack_up_to(&last).await
    }
}
