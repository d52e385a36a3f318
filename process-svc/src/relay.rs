//! Publishes the lifecycle events each session document holds, with
//! publisher confirms, and removes them from the document only after the
//! broker confirmed them. Every replica runs one; two publishing the same
//! event is harmless (same event id), losing one is not possible.

use std::time::Duration;

use smsops_common::amqp::{Outgoing, Publisher};

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
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        while !*stop.borrow() {
            match Publisher::connect(&self.amqp_url, &self.exchange).await {
                Ok(publisher) => {
                    tracing::info!(exchange = %self.exchange, "relay connected to broker");
                    backoff = Duration::from_millis(100);
                    if let Err(err) = self.pump(&publisher, &mut stop).await {
                        tracing::warn!(error = %err, "relay lost the broker, reconnecting");
                    }
                    publisher.close().await;
                }
                Err(err) => tracing::warn!(error = %err, "relay cannot reach the broker"),
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    async fn pump(
        &self,
        publisher: &Publisher,
        stop: &mut tokio::sync::watch::Receiver<bool>,
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
