//! Publishes the lifecycle events each session document holds, with
//! publisher confirms, and removes them from the document only after the
//! broker confirmed them. Every replica runs one; two publishing the same
//! event is harmless (same event id), losing one is not possible.

use std::{sync::Arc, time::Duration};

use smsops_common::amqp::{Outgoing, Publisher, keep_publishing};

use crate::store::Store;

const POLL: Duration = Duration::from_millis(100);
const SESSIONS_PER_ROUND: i64 = 200;

pub struct Relay {
    store: Store,
    amqp_url: String,
    exchange: String,
}

impl Relay {
    pub fn new(store: Store, amqp_url: String, exchange: String) -> Self {
        Self {
            store,
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
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let sessions = self
                .store
                .with_events(SESSIONS_PER_ROUND)
                .await
                .map_err(|err| err.to_string())?;
            for session in &sessions {
                let events: Vec<Outgoing<'_>> = session
                    .outbox
                    .iter()
                    .map(|event| Outgoing {
                        event_id: &event.event_id,
                        routing_key: &event.routing_key,
                        event_type: &event.routing_key,
                        traceparent: &event.traceparent,
                        payload: event.payload.as_bytes(),
                    })
                    .collect();
                let acked = publisher
                    .publish_confirmed(&events)
                    .await
                    .map_err(|err| err.to_string())?;
                let confirmed: Vec<String> = session
                    .outbox
                    .iter()
                    .zip(acked)
                    .filter(|(_, ack)| *ack)
                    .map(|(event, _)| event.event_id.clone())
                    .collect();
                self.store
                    .events_done(&session.id, &confirmed)
                    .await
                    .map_err(|err| err.to_string())?;
            }
            if sessions.is_empty() {
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
}
