//! The outbox relay: publishes stored events to RabbitMQ with publisher
//! confirms, and deletes them only after the broker confirmed them. While the
//! broker is away, events wait in MySQL; the relay reconnects with backoff.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use smsops_common::amqp::{Outgoing, Publisher, keep_publishing};

use crate::{core::SmsCore, store::Store};

const BATCH: u32 = 500;
const IDLE_POLL: Duration = Duration::from_millis(250);
const RESCAN_EVERY: Duration = Duration::from_secs(2);

pub struct Relay {
    store: Store,
    core: Arc<SmsCore>,
    amqp_url: String,
    exchange: String,
}

impl Relay {
    pub fn new(store: Store, core: Arc<SmsCore>, amqp_url: String, exchange: String) -> Self {
        Self {
            store,
            core,
            amqp_url,
            exchange,
        }
    }

    /// Runs until `stop` turns true; never gives up on the broker.
    pub async fn run(self, stop: tokio::sync::watch::Receiver<bool>) {
        let (url, exchange) = (self.amqp_url.clone(), self.exchange.clone());
        keep_publishing(&url, &exchange, stop, |publisher, stop| {
            Box::pin(self.pump(publisher, stop))
        })
        .await;
    }

    async fn pump(
        &self,
        publisher: Arc<Publisher>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), String> {
        // Reading on from the last id seen spares MySQL from stepping over
        // the rows just deleted. A transaction can commit a lower id after a
        // higher one was read, so the relay also starts over from the
        // beginning now and then, and whenever it has caught up.
        let mut after = 0;
        let mut rescan_at = Instant::now() + RESCAN_EVERY;
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            if Instant::now() >= rescan_at {
                after = 0;
                rescan_at = Instant::now() + RESCAN_EVERY;
            }
            let rows = self
                .store
                .outbox_batch(after, BATCH)
                .await
                .map_err(|err| err.to_string())?;
            let Some(last) = rows.last() else {
                after = 0;
                tokio::select! {
                    () = self.core.outbox_signal().notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = stop.changed() => {}
                }
                continue;
            };
            after = last.id;
            let events: Vec<Outgoing<'_>> = rows
                .iter()
                .map(|row| Outgoing {
                    event_id: &row.event_id,
                    routing_key: &row.routing_key,
                    event_type: &row.event_type,
                    traceparent: &row.traceparent,
                    payload: row.payload.as_bytes(),
                })
                .collect();
            let acked = publisher
                .publish_confirmed(&events)
                .await
                .map_err(|err| err.to_string())?;
            let mut confirmed = Vec::with_capacity(rows.len());
            for (row, ack) in rows.iter().zip(acked) {
                if ack {
                    confirmed.push(row.id);
                } else {
                    tracing::warn!(outbox_id = row.id, "broker refused an event, will retry");
                }
            }
            self.store
                .outbox_done(&confirmed)
                .await
                .map_err(|err| err.to_string())?;
        }
    }
}
