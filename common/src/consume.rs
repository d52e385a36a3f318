//! Consuming events the way every smsops consumer does: its own durable
//! queue with a dead-letter queue `<queue>.dlq` beside it, bound to the
//! exchanges it reads, deliveries handed over in batches, and a reconnect
//! loop that never gives up on the broker.

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

use tracing::Instrument;

use crate::{
    amqp::declare_exchange,
    trace::{TraceHeaders, continue_from, link_to},
};

/// A consumer's queue and what feeds it.
#[derive(Debug, Clone)]
pub struct QueueSpec {
    pub queue: String,
    /// (exchange, routing key pattern) pairs; each exchange is declared
    /// durable and topic, as publishers declare it.
    pub bindings: Vec<(String, String)>,
    /// Bindings an earlier version made and this one does not want: removed
    /// once `bindings` are in place, so no event falls between the two.
    pub stale_bindings: Vec<(String, String)>,
    /// Deliveries the broker may have out to this consumer at once.
    pub prefetch: u16,
    /// Most deliveries in one batch, and how long a batch waits for more
    /// once it has one.
    pub batch: usize,
    pub linger: Duration,
    pub consumer_tag: String,
}

impl QueueSpec {
    pub fn dead_letters(&self) -> String {
        format!("{}.dlq", self.queue)
    }
}

/// Takes one batch of deliveries and settles every one of them: ack after
/// its effects are committed, or reject (to the dead-letter queue). An
/// error means the channel is no use any more; the loop reconnects and the
/// unsettled deliveries come again.
pub trait BatchHandler: Send + Sync {
    fn handle(&self, deliveries: Vec<Delivery>) -> impl Future<Output = Result<(), String>> + Send;
}

/// Consumes until `stop` turns true.
pub async fn consume_batches<H: BatchHandler>(
    url: &str,
    spec: &QueueSpec,
    handler: &H,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = crate::amqp::Backoff::default();
    while !*stop.borrow() {
        match connect(url, spec).await {
            Ok((connection, _channel, consumer)) => {
                tracing::info!(queue = %spec.queue, "consuming events");
                backoff.reset();
                if let Err(err) = consume(spec, consumer, handler, &mut stop).await {
                    tracing::warn!(queue = %spec.queue, error = %err, "consumer lost the broker, reconnecting");
                }
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    connection.close(200, "bye".into()),
                )
                .await;
            }
            Err(err) => {
                tracing::warn!(queue = %spec.queue, error = %err, "consumer cannot reach the broker");
            }
        }
        backoff.wait(&mut stop).await;
    }
}

async fn connect(
    url: &str,
    spec: &QueueSpec,
) -> Result<(Connection, Channel, Consumer), lapin::Error> {
    let connection = Connection::connect(url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let dead = spec.dead_letters();
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
        .queue_declare(spec.queue.as_str().into(), durable, arguments)
        .await?;
    for (exchange, key) in &spec.bindings {
        declare_exchange(&channel, exchange).await?;
        channel
            .queue_bind(
                spec.queue.as_str().into(),
                exchange.as_str().into(),
                key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    for (exchange, key) in &spec.stale_bindings {
        channel
            .queue_unbind(
                spec.queue.as_str().into(),
                exchange.as_str().into(),
                key.as_str().into(),
                FieldTable::default(),
            )
            .await?;
    }
    channel
        .basic_qos(spec.prefetch, BasicQosOptions::default())
        .await?;
    let consumer = channel
        .basic_consume(
            spec.queue.as_str().into(),
            spec.consumer_tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((connection, channel, consumer))
}

async fn consume<H: BatchHandler>(
    spec: &QueueSpec,
    mut consumer: Consumer,
    handler: &H,
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
        let linger = tokio::time::Instant::now() + spec.linger;
        while deliveries.len() < spec.batch {
            match tokio::time::timeout_at(linger, consumer.next()).await {
                Ok(Some(delivery)) => deliveries.push(delivery.map_err(|err| err.to_string())?),
                Ok(None) | Err(_) => break,
            }
        }
        let (batch, events) = consumer_spans(&spec.consumer_tag, &deliveries);
        handler.handle(deliveries).instrument(batch).await?;
        // Each event's span ends once its batch is settled.
        drop(events);
    }
}

/// The W3C context an event was published with, from its AMQP headers.
pub fn trace_headers(delivery: &Delivery) -> TraceHeaders {
    let headers = delivery.properties.headers().as_ref();
    TraceHeaders::read(|name| match headers?.inner().get(name)? {
        AMQPValue::LongString(value) => std::str::from_utf8(value.as_bytes()).ok(),
        _ => None,
    })
}

/// The consumer span of one event, continuing its publisher's trace; none
/// while traces are off.
pub fn event_span(consumer: &str, delivery: &Delivery) -> tracing::Span {
    if !crate::telemetry::traces_on() {
        return tracing::Span::none();
    }
    event_span_from(consumer, delivery, &trace_headers(delivery))
}

fn event_span_from(consumer: &str, delivery: &Delivery, headers: &TraceHeaders) -> tracing::Span {
    let span = tracing::info_span!(
        "process",
        otel.name = %format!("{} process", delivery.routing_key),
        otel.kind = "consumer",
        messaging.system = "rabbitmq",
        messaging.consumer.group.name = %consumer,
        messaging.message.id = tracing::field::Empty,
    );
    if let Some(id) = delivery.properties.message_id() {
        span.record("messaging.message.id", id.as_str());
    }
    continue_from(&span, headers);
    span
}

/// A span for the batch, linked to every event in it (one span cannot be
/// the child of each), and one per event in its own trace.
fn consumer_spans(consumer: &str, deliveries: &[Delivery]) -> (tracing::Span, Vec<tracing::Span>) {
    if !crate::telemetry::traces_on() {
        return (tracing::Span::none(), Vec::new());
    }
    let batch = tracing::info_span!(
        "consume batch",
        otel.name = %format!("{consumer} process batch"),
        otel.kind = "consumer",
        messaging.system = "rabbitmq",
        messaging.batch.message_count = deliveries.len(),
    );
    let events = deliveries
        .iter()
        .map(|delivery| {
            let headers = trace_headers(delivery);
            link_to(&batch, &headers);
            event_span_from(consumer, delivery, &headers)
        })
        .collect();
    (batch, events)
}

/// Reads each delivery with `parse`; what it cannot read is rejected to the
/// dead-letter queue. Returns what it read and the last delivery read, to
/// ack them all with [`ack_up_to`] once their effects are committed.
pub async fn read_or_reject<T>(
    deliveries: Vec<Delivery>,
    parse: impl Fn(&[u8]) -> Option<T>,
) -> Result<(Vec<T>, Option<Delivery>), String> {
    let mut read = Vec::with_capacity(deliveries.len());
    let mut last = None;
    for delivery in deliveries {
        match parse(&delivery.data) {
            Some(item) => {
                read.push(item);
                last = Some(delivery);
            }
            None => {
                tracing::warn!(routing_key = %delivery.routing_key, "unreadable event sent to the dead-letter queue");
                let rejected = delivery
                    .reject(BasicRejectOptions { requeue: false })
                    .await
                    .map_err(|err| err.to_string())?;
                if !rejected {
                    return Err("the channel closed under a reject".into());
                }
            }
        }
    }
    Ok((read, last))
}

/// Acks `last` and every delivery before it on its channel.
pub async fn ack_up_to(last: &Delivery) -> Result<(), String> {
    let acked = last
        .ack(BasicAckOptions { multiple: true })
        .await
        .map_err(|err| err.to_string())?;
    if acked {
        Ok(())
    } else {
        Err("the channel closed before the ack".into())
    }
}
