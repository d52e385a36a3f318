//! A test's view of RabbitMQ: a queue of its own bound to its own exchange.

use std::time::Duration;

use futures::StreamExt;
use lapin::{
    Connection, ConnectionProperties, ExchangeKind,
    options::{
        BasicConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
        QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable},
};
use serde_json::Value;
use smsops_common::amqp::{Outgoing, Publisher};

pub const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// One delivered event: its body and the AMQP properties a consumer relies on.
#[derive(Debug, Clone)]
pub struct Event {
    pub body: Value,
    pub message_id: String,
    pub routing_key: String,
    pub content_type: String,
    pub type_header: String,
    pub traceparent: String,
    pub persistent: bool,
}

/// Collects every event published to `exchange` from now on.
pub struct EventQueue {
    channel: lapin::Channel,
    queue: String,
    consumer: Option<lapin::Consumer>,
    _connection: Connection,
}

impl EventQueue {
    pub async fn bind(exchange: &str) -> Self {
        let mut queue = Self::declare(exchange).await;
        queue.start().await;
        queue
    }

    /// Counts the events as they arrive, keeping only their ids: a
    /// benchmark's stand-in for consumers that keep up, as metrics-svc and
    /// notify-svc do. Parsing each body would be the benchmark's own cost;
    /// a queue left unread grows without end over a long run (and cost the
    /// broker as much, measured in bench-sms).
    pub async fn tally(exchange: &str) -> EventTally {
        let mut queue = Self::bind(exchange).await;
        let Some(mut consumer) = queue.consumer.take() else {
            unreachable!("bind starts the consumer")
        };
        let ids = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = ids.clone();
        let reading = tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let id = delivery.properties.message_id().as_ref();
                let id = id.map(|s| s.to_string()).unwrap_or_default();
                seen.lock().unwrap().push(id);
            }
        });
        EventTally {
            ids,
            reading,
            _queue: queue,
        }
    }

    async fn declare(exchange: &str) -> Self {
        let connection = Connection::connect(URL, ConnectionProperties::default())
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        channel
            .exchange_declare(
                exchange.into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let queue = format!("test.{}", uuid::Uuid::new_v4().simple());
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        Self {
            channel,
            queue,
            consumer: None,
            _connection: connection,
        }
    }

    /// Starts reading the queue.
    pub async fn start(&mut self) {
        let consumer = self
            .channel
            .basic_consume(
                self.queue.as_str().into(),
                "test".into(),
                // Auto-ack: the queue dies with the test, and acking each of
                // a benchmark's events one by one costs the broker more than
                // the events themselves.
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        self.consumer = Some(consumer);
    }

    /// Waits until `done` says the events so far are enough, or `timeout`.
    pub async fn collect_until(
        &mut self,
        timeout: Duration,
        done: impl Fn(&[Event]) -> bool,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while !done(&events) {
            match self.next_before(deadline).await {
                Some(event) => events.push(event),
                None => break,
            }
        }
        events
    }

    /// The next event; `None` once `deadline` passes.
    pub async fn next_before(&mut self, deadline: tokio::time::Instant) -> Option<Event> {
        let consumer = self.consumer.as_mut().expect("EventQueue::start first");
        let next = tokio::time::timeout_at(deadline, consumer.next()).await;
        let Ok(Some(Ok(delivery))) = next else {
            return None;
        };
        let props = &delivery.properties;
        let header = |name: &str| {
            props
                .headers()
                .as_ref()
                .and_then(|h| h.inner().get(name).cloned())
                .map(|v| match v {
                    AMQPValue::LongString(s) => s.to_string(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default()
        };
        Some(Event {
            body: serde_json::from_slice(&delivery.data).unwrap(),
            message_id: props
                .message_id()
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default(),
            routing_key: delivery.routing_key.to_string(),
            content_type: props
                .content_type()
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default(),
            type_header: header("type"),
            traceparent: header("traceparent"),
            persistent: *props.delivery_mode() == Some(2),
        })
    }
}

/// The ids of the events an [`EventQueue::tally`] has seen so far.
pub struct EventTally {
    ids: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reading: tokio::task::JoinHandle<()>,
    _queue: EventQueue,
}

impl EventTally {
    pub fn count(&self) -> usize {
        self.ids.lock().unwrap().len()
    }

    /// Stops reading; the ids seen, in arrival order.
    pub fn finish(self) -> Vec<String> {
        self.reading.abort();
        std::mem::take(&mut *self.ids.lock().unwrap())
    }
}

pub async fn delete_exchange(exchange: &str) {
    if let Ok(connection) = Connection::connect(URL, ConnectionProperties::default()).await
        && let Ok(channel) = connection.create_channel().await
    {
        let _ = channel
            .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
            .await;
        hang_up(&connection).await;
    }
}

pub async fn delete_queue(queue: &str) {
    if let Ok(connection) = Connection::connect(URL, ConnectionProperties::default()).await
        && let Ok(channel) = connection.create_channel().await
    {
        let _ = channel
            .queue_delete(queue.into(), lapin::options::QueueDeleteOptions::default())
            .await;
        hang_up(&connection).await;
    }
}

/// Messages waiting in `queue`.
pub async fn queue_length(queue: &str) -> u32 {
    looked_up(queue).await.message_count()
}

/// Consumers reading `queue`.
pub async fn consumers(queue: &str) -> u32 {
    looked_up(queue).await.consumer_count()
}

async fn looked_up(queue: &str) -> lapin::Queue {
    let (connection, channel) = connected().await;
    let declared = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    hang_up(&connection).await;
    declared
}

/// Binds an existing `queue` to `exchange` by `key`, as an earlier version
/// of a service may have.
pub async fn bind_queue(queue: &str, exchange: &str, key: &str) {
    let (connection, channel) = connected().await;
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    hang_up(&connection).await;
}

/// A connection of its own and a channel on it, for one errand.
async fn connected() -> (Connection, lapin::Channel) {
    let connection = Connection::connect(URL, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    (connection, channel)
}

/// Closes an errand's connection, without waiting long on a broker gone.
async fn hang_up(connection: &Connection) {
    let _ = tokio::time::timeout(Duration::from_secs(2), connection.close(200, "bye".into())).await;
}

/// Publishes these events (again), as a relay would, confirmed.
pub async fn publish_again(exchange: &str, events: &[Event]) {
    let publisher = Publisher::connect(URL, exchange).await.unwrap();
    let payloads: Vec<Vec<u8>> = events
        .iter()
        .map(|e| serde_json::to_vec(&e.body).unwrap())
        .collect();
    let outgoing: Vec<Outgoing<'_>> = events
        .iter()
        .zip(&payloads)
        .map(|(e, payload)| Outgoing {
            event_id: &e.message_id,
            routing_key: &e.routing_key,
            event_type: &e.type_header,
            traceparent: &e.traceparent,
            payload,
        })
        .collect();
    assert!(
        publisher
            .publish_confirmed(&outgoing)
            .await
            .unwrap()
            .iter()
            .all(|ack| *ack)
    );
    publisher.close().await;
}

/// Publishes one message as it is, confirmed: for poison, or for events a
/// test makes up.
pub async fn publish_raw(exchange: &str, routing_key: &str, payload: &[u8]) {
    let publisher = Publisher::connect(URL, exchange).await.unwrap();
    let id = uuid::Uuid::now_v7().to_string();
    let event = Outgoing {
        event_id: &id,
        routing_key,
        event_type: routing_key,
        traceparent: "",
        payload,
    };
    assert_eq!(publisher.publish_confirmed(&[event]).await.unwrap(), [true]);
    publisher.close().await;
}
