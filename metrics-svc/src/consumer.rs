//! Reads SMS events from metrics-svc's own durable queue and counts them.
//! Deliveries are acked only after the transaction that counted them
//! committed, so a crash means redelivery, and redelivery is harmless
//! (each event id is counted once). A message that is not an SMS event is
//! rejected to the dead-letter queue `<queue>.dlq` instead of coming back
//! forever.

use std::time::Duration;

use futures::StreamExt;
use lapin::{
    Channel, Connection, ConnectionProperties, Consumer, ExchangeKind,
    message::Delivery,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions,
        ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable},
};
use smsops_common::amqp::declare_exchange;

use std::sync::Arc;

use crate::{
    core::{MetricsCore, SmsEvent},
    store::Store,
};

/// Most events counted in one transaction.
const BATCH: usize = 1000;
/// How long a batch waits for more events once it has one.
const LINGER: Duration = Duration::from_millis(20);

pub struct EventConsumer {
    store: Store,
    core: Arc<MetricsCore>,
    amqp_url: String,
    exchange: String,
    queue: String,
    prefetch: u16,
}

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
            exchange,
            queue,
            prefetch,
        }
    }

    /// Runs until `stop` turns true; never gives up on the broker.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        while !*stop.borrow() {
            match self.connect().await {
                Ok((connection, channel, consumer)) => {
                    tracing::info!(queue = %self.queue, "consuming sms events");
                    backoff = Duration::from_millis(100);
                    if let Err(err) = self.consume(&channel, consumer, &mut stop).await {
                        tracing::warn!(error = %err, "event consumer lost the broker, reconnecting");
                    }
                    let _ = tokio::time::timeout(
                        Duration::from_secs(1),
                        connection.close(200, "bye".into()),
                    )
                    .await;
                }
                Err(err) => tracing::warn!(error = %err, "event consumer cannot reach the broker"),
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    async fn connect(&self) -> Result<(Connection, Channel, Consumer), lapin::Error> {
        let connection =
            Connection::connect(&self.amqp_url, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        declare_exchange(&channel, &self.exchange).await?;
        let dead = format!("{}.dlq", self.queue);
        channel
            .exchange_declare(
                dead.as_str().into(),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .queue_declare(dead.as_str().into(), durable, FieldTable::default())
            .await?;
        channel
            .queue_bind(
                dead.as_str().into(),
                dead.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut arguments = FieldTable::default();
        arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(dead.as_str().into()),
        );
        channel
            .queue_declare(self.queue.as_str().into(), durable, arguments)
            .await?;
        channel
            .queue_bind(
                self.queue.as_str().into(),
                self.exchange.as_str().into(),
                "sms.#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await?;
        let consumer = channel
            .basic_consume(
                self.queue.as_str().into(),
                "metrics-svc".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok((connection, channel, consumer))
    }

    async fn consume(
        &self,
        channel: &Channel,
        mut consumer: Consumer,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), String> {
        loop {
            let first = tokio::select! {
                next = consumer.next() => next,
                _ = stop.changed() => return Ok(()),
            };
            let Some(first) = first else {
                return Err("the consumer was cancelled".into());
            };
            let mut deliveries = vec![first.map_err(|err| err.to_string())?];
            let linger = tokio::time::Instant::now() + LINGER;
            while deliveries.len() < BATCH {
                match tokio::time::timeout_at(linger, consumer.next()).await {
                    Ok(Some(delivery)) => deliveries.push(delivery.map_err(|err| err.to_string())?),
                    Ok(None) | Err(_) => break,
                }
            }
            self.count(channel, deliveries).await?;
        }
    }

    /// Counts a batch, then settles every delivery in it.
    async fn count(&self, channel: &Channel, deliveries: Vec<Delivery>) -> Result<(), String> {
        let mut events = Vec::with_capacity(deliveries.len());
        let mut good = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            match SmsEvent::parse(&delivery.data) {
                Some(event) => {
                    events.push(event);
                    good.push(delivery);
                }
                None => {
                    tracing::warn!(routing_key = %delivery.routing_key, "unreadable event sent to the dead-letter queue");
                    delivery
                        .reject(BasicRejectOptions { requeue: false })
                        .await
                        .map_err(|err| err.to_string())?;
                }
            }
        }
        let Some(last) = good.last() else {
            return Ok(());
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.store.count(&events).await {
                Ok(_) => {
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
        channel
            .basic_ack(last.delivery_tag, BasicAckOptions { multiple: true })
            .await
            .map_err(|err| err.to_string())
    }
}
