//! Reads finished SMS outcomes and session lifecycle events from
//! notify-svc's own durable queue. Each batch is taken in (deduped on
//! event_id) in one transaction before it is acked; what cannot be read
//! goes to `<queue>.dlq`.

use std::{collections::HashMap, sync::Arc, time::Duration};

use lapin::message::Delivery;
use smsops_common::consume::{BatchHandler, QueueSpec, ack_up_to, consume_batches, read_or_reject};

use crate::{
    config::NotifyConfig,
    core::{NotifyCore, event::Event},
};

pub struct EventConsumer {
    core: Arc<NotifyCore>,
    amqp_url: String,
    spec: QueueSpec,
}

impl EventConsumer {
    pub fn new(core: Arc<NotifyCore>, config: &NotifyConfig) -> Self {
        // Only final statuses matter to the rules; the rest never reach us.
        let mut bindings: Vec<(String, String)> =
            ["sms.delivered", "sms.undelivered", "sms.failed"]
                .into_iter()
                .map(|key| (config.sms_exchange.clone(), key.to_string()))
                .collect();
        bindings.push((config.session_exchange.clone(), "session.#".into()));
        Self {
            core,
            amqp_url: config.amqp_url.clone(),
            spec: QueueSpec {
                queue: config.queue.clone(),
                bindings,
                stale_bindings: Vec::new(),
                prefetch: config.prefetch,
                batch: 500,
                linger: Duration::from_millis(20),
                consumer_tag: "notify-svc".into(),
            },
        }
    }

    /// Runs until `stop` turns true; never gives up on the broker.
    pub async fn run(self, stop: tokio::sync::watch::Receiver<bool>) {
        consume_batches(&self.amqp_url, &self.spec, &self, stop).await;
    }
}

impl BatchHandler for EventConsumer {
    async fn handle(&self, deliveries: Vec<Delivery>) -> Result<(), String> {
        let (events, last) = read_or_reject(deliveries, Event::parse).await?;
        let Some(last) = last else {
            return Ok(());
        };
        let actions: HashMap<_, _> = events
            .iter()
            .filter_map(|event| match event {
                Event::Session(session) => self
                    .core
                    .session_action(session)
                    .map(|action| (session.event_id.clone(), action)),
                Event::Sms(_) => None,
            })
            .collect();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.core.store().record(&events, &actions).await {
                Ok(_) => {
                    self.core.exported().recorded(events.len());
                    break;
                }
                // Nothing was taken in; the events stay unacked either way.
                Err(err) if attempt < 50 => {
                    tracing::warn!(error = %err, attempt, "recording events failed, retrying");
                    tokio::time::sleep(Duration::from_millis(100 * attempt.min(20))).await;
                }
                Err(err) => return Err(err.to_string()),
            }
        }
        ack_up_to(&last).await
    }
}
