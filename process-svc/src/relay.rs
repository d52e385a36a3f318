//! Publishes the lifecycle events each session document holds, with
//! publisher confirms, and removes them from the document only after the
//! broker confirmed them. One replica relays at a time, under a lease
//! document it renews every heartbeat; the others stand by and take over
//! once it lapses. Two relaying at once would publish events twice (same
//! ids, so harmless to consumers, but double the broker's work); losing
//! one is not possible.

use std::{sync::Arc, time::Duration};

use mongodb::bson::DateTime;
use prometheus_client::{metrics::gauge::Gauge, registry::Registry};
use smsops_common::amqp::{Lease, Outgoing, Publisher, publish_while_held};
use tokio::sync::watch;

use crate::{config::Supervision, store::Store};

const POLL: Duration = Duration::from_millis(100);
const SESSIONS_PER_ROUND: i64 = 200;

pub struct Relay {
    store: Store,
    amqp_url: String,
    exchange: String,
    supervision: Supervision,
    leading: Gauge,
}

/// The relay lease, as this replica holds it.
struct RelayLease<'a> {
    store: &'a Store,
    supervision: &'a Supervision,
}

impl RelayLease<'_> {
    /// Takes or renews the lease; false if another replica holds it or
    /// the database did not answer within a heartbeat.
    async fn hold(&self) -> bool {
        let Supervision {
            replica,
            lease_ttl,
            heartbeat,
            ..
        } = self.supervision;
        let until = DateTime::from_millis(
            DateTime::now().timestamp_millis() + lease_ttl.as_millis() as i64,
        );
        let asked = self.store.hold_relay_lease(replica, until);
        match tokio::time::timeout(*heartbeat, asked).await {
            Ok(Ok(held)) => held,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "cannot renew the event relay lease");
                false
            }
            Err(_) => false,
        }
    }
}

impl Lease for RelayLease<'_> {
    async fn still_held(&mut self) -> bool {
        self.hold().await
    }
}

impl Relay {
    pub fn new(store: Store, amqp_url: String, exchange: String, supervision: Supervision) -> Self {
        Self {
            store,
            amqp_url,
            exchange,
            supervision,
            leading: Gauge::default(),
        }
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "process_event_relay_leading",
            "1 while this replica is the one publishing session lifecycle events",
            self.leading.clone(),
        );
    }

    /// Runs until `stop` turns true: relays while this replica holds the
    /// lease, stands by while another does. Never gives up on the broker
    /// or the database.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut lease = RelayLease {
            store: &self.store,
            supervision: &self.supervision,
        };
        let mut standing_by = false;
        while !*stop.borrow() {
            if lease.hold().await {
                tracing::info!(exchange = %self.exchange, "event relay leading");
                standing_by = false;
                self.leading.set(1);
                let held = publish_while_held(
                    &self.amqp_url,
                    &self.exchange,
                    self.supervision.heartbeat,
                    stop.clone(),
                    &mut lease,
                    |publisher, halted| Box::pin(self.pump(publisher, halted)),
                )
                .await;
                self.leading.set(0);
                if held {
                    let release = self.store.release_relay_lease(&self.supervision.replica);
                    let _ = tokio::time::timeout(self.supervision.heartbeat, release).await;
                } else {
                    tracing::warn!("event relay lost its lease, standing by");
                }
            } else if !standing_by {
                tracing::info!("another replica relays lifecycle events, standing by");
                standing_by = true;
            }
            tokio::select! {
                () = tokio::time::sleep(self.supervision.heartbeat) => {}
                _ = stop.changed() => {}
            }
        }
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
