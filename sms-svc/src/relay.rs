//! The outbox relay: publishes stored events to RabbitMQ with publisher
//! confirms, and deletes them only after the broker confirmed them. While the
//! broker is away, events wait in MySQL; the relay reconnects with backoff.
//! One replica relays at a time (see [`RelayLock`]); the others stand by.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use prometheus_client::{metrics::gauge::Gauge, registry::Registry};
use smsops_common::{
    amqp::{Outgoing, Publisher, publish_while_held},
    trace::{TraceHeaders, continue_from},
};
use tokio::sync::watch;

use crate::{
    core::SmsCore,
    domain::RepoError,
    store::{OutboxRow, RelayLock, Store},
};

const BATCH: u32 = 500;
const IDLE_POLL: Duration = Duration::from_millis(250);
const RESCAN_EVERY: Duration = Duration::from_secs(2);
/// After a batch that left nothing behind, how long the relay lets events
/// gather before it reads again: each read and delete is a statement and a
/// delete a commit of its own, which a busy relay paid for about every 50
/// events (about 200 with this wait).
/// Measured with bench-rest (single sends, C=50, A B A B, three pairs):
/// MariaDB's statements 2.03-2.07 a message without, 1.78-1.81 with 20 ms;
/// fsyncs 0.38-0.39 against 0.32. An event waits at most this much longer.
const LINGER: Duration = Duration::from_millis(20);
/// How often a standby asks for the lock, and the relay checks it still
/// has it: the longest a dead relay's events wait for another replica.
const LOCK_EVERY: Duration = Duration::from_secs(1);

pub struct Relay {
    store: Store,
    core: Arc<SmsCore>,
    amqp_url: String,
    exchange: String,
    leading: Gauge,
}

impl Relay {
    pub fn new(store: Store, core: Arc<SmsCore>, amqp_url: String, exchange: String) -> Self {
        Self {
            store,
            core,
            amqp_url,
            exchange,
            leading: Gauge::default(),
        }
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "sms_outbox_relay_leading",
            "1 while this replica is the one publishing the outbox",
            self.leading.clone(),
        );
    }

    /// Runs until `stop` turns true: relays while this replica holds the
    /// relay lock, stands by while another does. Never gives up on the
    /// broker or the database.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut standing_by = false;
        while !*stop.borrow() {
            // Bounded: a database that stopped answering must not stall this loop.
            let asked = tokio::time::timeout(LOCK_EVERY * 5, self.store.try_relay_lock()).await;
            match asked.unwrap_or_else(|_| Err(RepoError::Unavailable("no answer".into()))) {
                Ok(Some(lock)) => {
                    tracing::info!(exchange = %self.exchange, "outbox relay leading");
                    standing_by = false;
                    self.lead(lock, stop.clone()).await;
                }
                Ok(None) if !standing_by => {
                    tracing::info!("another replica relays the outbox, standing by");
                    standing_by = true;
                }
                Ok(None) => {}
                Err(err) => tracing::warn!(error = %err, "cannot ask for the relay lock"),
            }
            tokio::select! {
                () = tokio::time::sleep(LOCK_EVERY) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Publishes until `stop`, or until the lock is lost; then releases it.
    async fn lead(&self, mut lock: RelayLock, stop: watch::Receiver<bool>) {
        self.leading.set(1);
        let held = publish_while_held(
            &self.amqp_url,
            &self.exchange,
            LOCK_EVERY,
            stop,
            &mut lock,
            |publisher, halted| Box::pin(self.pump(publisher, halted)),
        )
        .await;
        if !held {
            tracing::warn!("outbox relay lost its lock, standing by");
        }
        self.leading.set(0);
        let _ = tokio::time::timeout(LOCK_EVERY * 2, lock.release()).await;
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
            // Held until the broker confirms: a producer span lasts as
            // long as its event's publishing.
            let spans: Vec<tracing::Span> = rows
                .iter()
                .map(|row| publish_span(&self.exchange, row))
                .collect();
            let contexts: Vec<Option<String>> = spans
                .iter()
                .map(|span| TraceHeaders::of_span(span).traceparent)
                .collect();
            let events: Vec<Outgoing<'_>> = rows
                .iter()
                .zip(&contexts)
                .map(|(row, context)| Outgoing {
                    event_id: &row.event_id,
                    routing_key: &row.routing_key,
                    event_type: &row.event_type,
                    traceparent: context.as_deref().unwrap_or(&row.traceparent),
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
            if rows.len() < BATCH as usize {
                tokio::select! {
                    () = tokio::time::sleep(LINGER) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
}

/// The producer span of one event, continuing the trace its outbox row
/// carries; none while traces are off.
fn publish_span(exchange: &str, row: &OutboxRow) -> tracing::Span {
    if !smsops_common::telemetry::traces_on() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "publish",
        otel.name = %format!("{} publish", row.routing_key),
        otel.kind = "producer",
        messaging.system = "rabbitmq",
        messaging.destination.name = %exchange,
        messaging.message.id = %row.event_id,
    );
    let parent = TraceHeaders {
        traceparent: Some(row.traceparent.clone()),
        tracestate: None,
    };
    continue_from(&span, &parent);
    span
}
