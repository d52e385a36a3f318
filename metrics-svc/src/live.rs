//! The live feed: every SMS and session event, and every notice of a
//! directory change (a pair, a user, an invitation, an API key, the alert
//! rules), as it is published, for dashboards. While anyone watches, this replica has its own exclusive,
//! auto-deleted queue on both exchanges, consumed without acks: a feed, not
//! a ledger (the counted metrics come from the durable queue). With nobody
//! watching, the queue is gone and costs the broker nothing.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use lapin::{Connection, ConnectionProperties};

use crate::core::MetricsCore;

/// How long the feed stays connected after the last watcher left.
const LINGER: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(100);

pub struct LiveFeed {
    core: Arc<MetricsCore>,
    amqp_url: String,
    /// (exchange, routing key pattern)
    bindings: Vec<(String, String)>,
}

impl LiveFeed {
    pub fn new(
        core: Arc<MetricsCore>,
        amqp_url: String,
        sms_exchange: String,
        session_exchange: String,
        changes_exchange: String,
    ) -> Self {
        Self {
            core,
            amqp_url,
            bindings: vec![
                (sms_exchange, "sms.#".into()),
                (session_exchange, "session.#".into()),
                (changes_exchange, "#".into()),
            ],
        }
    }

    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut backoff = smsops_common::amqp::Backoff::default();
        while !*stop.borrow() {
            if !self.core.has_watchers() {
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            match self.feed(&mut stop).await {
                Ok(()) => backoff.reset(),
                Err(err) => {
                    tracing::warn!(error = %err, "live feed lost the broker");
                    backoff.wait(&mut stop).await;
                }
            }
        }
    }

    /// Feeds watchers until nobody has watched for [`LINGER`] or `stop`.
    async fn feed(
        &self,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), lapin::Error> {
        let connection =
            Connection::connect(&self.amqp_url, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        let mut deliveries =
            smsops_common::amqp::feed(&channel, &self.bindings, "metrics-svc.live").await?;
        tracing::info!("live feed on");
        self.core.set_feed_on(true);
        let mut idle_since: Option<tokio::time::Instant> = None;
        let mut check = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                delivery = deliveries.next() => match delivery {
                    Some(delivery) => {
                        let delivery = delivery?;
                        let _span = smsops_common::consume::event_span("metrics-svc.live", &delivery)
                            .entered();
                        self.core.live_event(
                            delivery.routing_key.as_str(),
                            String::from_utf8_lossy(&delivery.data).into_owned(),
                        );
                    }
                    None => break,
                },
                _ = check.tick() => {
                    if self.core.has_watchers() {
                        idle_since = None;
                    } else if idle_since.get_or_insert_with(tokio::time::Instant::now).elapsed() >= LINGER {
                        break;
                    }
                }
                _ = stop.changed() => break,
            }
        }
        tracing::info!("live feed off");
        self.core.set_feed_on(false);
        let _ =
            tokio::time::timeout(Duration::from_secs(1), connection.close(200, "bye".into())).await;
        Ok(())
    }
}
