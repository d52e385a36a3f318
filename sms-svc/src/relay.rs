//! The outbox relay: publishes stored events to RabbitMQ with publisher
//! confirms, and deletes them only after the broker confirmed them. While the
//! broker is away, events wait in MySQL; the relay reconnects with backoff.

use std::{sync::Arc, time::Duration};

use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind,
    options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions},
    types::{AMQPValue, FieldTable, ShortString},
};

use crate::{core::SmsCore, store::Store};

const BATCH: u32 = 500;
/// How long to wait for the broker's confirms before treating the
/// connection as dead.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);
const IDLE_POLL: Duration = Duration::from_millis(250);

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

    /// Runs until `stop` resolves; never gives up on the broker.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        while !*stop.borrow() {
            match self.connect().await {
                Ok((connection, channel)) => {
                    tracing::info!(exchange = %self.exchange, "relay connected to broker");
                    backoff = Duration::from_millis(100);
                    if let Err(err) = self.pump(&channel, &mut stop).await {
                        tracing::warn!(error = %err, "relay lost the broker, reconnecting");
                    }
                    let _ = tokio::time::timeout(
                        Duration::from_secs(1),
                        connection.close(200, "bye".into()),
                    )
                    .await;
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

    async fn connect(&self) -> Result<(Connection, Channel), String> {
        let connect = Connection::connect(&self.amqp_url, ConnectionProperties::default());
        let connection = tokio::time::timeout(Duration::from_secs(5), connect)
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|err| err.to_string())?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|err| err.to_string())?;
        channel
            .exchange_declare(
                self.exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|err| err.to_string())?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|err| err.to_string())?;
        Ok((connection, channel))
    }

    async fn pump(
        &self,
        channel: &Channel,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), String> {
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let rows = self
                .store
                .outbox_batch(BATCH)
                .await
                .map_err(|err| err.to_string())?;
            if rows.is_empty() {
                tokio::select! {
                    () = self.core.outbox_signal().notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            let mut pending = Vec::with_capacity(rows.len());
            for row in &rows {
                let mut headers = FieldTable::default();
                headers.insert(
                    "type".into(),
                    AMQPValue::LongString(row.event_type.clone().into()),
                );
                headers.insert(
                    "traceparent".into(),
                    AMQPValue::LongString(row.traceparent.clone().into()),
                );
                let properties = BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_content_type(ShortString::from("application/json"))
                    .with_message_id(row.event_id.as_str().into())
                    .with_type(row.event_type.as_str().into())
                    .with_timestamp(chrono::Utc::now().timestamp() as u64)
                    .with_headers(headers);
                let confirm = channel
                    .basic_publish(
                        self.exchange.as_str().into(),
                        row.routing_key.as_str().into(),
                        BasicPublishOptions::default(),
                        row.payload.as_bytes(),
                        properties,
                    )
                    .await
                    .map_err(|err| err.to_string())?;
                pending.push((row.id, confirm));
            }
            let mut confirmed = Vec::with_capacity(pending.len());
            for (id, confirm) in pending {
                let confirmation = tokio::time::timeout(CONFIRM_TIMEOUT, confirm)
                    .await
                    .map_err(|_| "broker confirm timed out".to_string())?
                    .map_err(|err| err.to_string())?;
                if confirmation.is_ack() {
                    confirmed.push(id);
                } else {
                    tracing::warn!(outbox_id = id, "broker refused an event, will retry");
                }
            }
            self.store
                .outbox_done(&confirmed)
                .await
                .map_err(|err| err.to_string())?;
        }
    }
}
