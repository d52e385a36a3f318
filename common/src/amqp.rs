//! Publishing events to RabbitMQ the way every smsops service does: durable
//! topic exchange, persistent JSON messages whose `message_id` is the event
//! id, a `type` header and W3C trace context, and publisher confirms so an
//! event counts as published only once the broker has taken it.

use std::time::Duration;

use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind,
    options::{
        BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
        QueueBindOptions, QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable, ShortString},
};

/// How long to wait for the broker's confirms before treating the
/// connection as dead.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    #[error("connecting to the broker timed out")]
    ConnectTimeout,
    #[error("the broker did not confirm in time")]
    ConfirmTimeout,
    #[error("broker error: {0}")]
    Broker(#[from] lapin::Error),
}

/// One event as it goes on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub event_id: &'a str,
    pub routing_key: &'a str,
    pub event_type: &'a str,
    pub traceparent: &'a str,
    pub payload: &'a [u8],
}

/// A confirmed channel to one durable topic exchange.
pub struct Publisher {
    connection: Connection,
    channel: Channel,
    exchange: String,
}

impl Publisher {
    /// Connects, declares the exchange (durable, topic) and turns on confirms.
    pub async fn connect(url: &str, exchange: &str) -> Result<Self, AmqpError> {
        let connect = Connection::connect(url, ConnectionProperties::default());
        let connection = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| AmqpError::ConnectTimeout)??;
        let channel = connection.create_channel().await?;
        declare_exchange(&channel, exchange).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self {
            connection,
            channel,
            exchange: exchange.to_string(),
        })
    }

    /// Publishes every event, then waits for the broker's answers: `true` for
    /// each one the broker confirmed, `false` for each it refused. An error
    /// means the connection is gone and none can be counted as published.
    pub async fn publish_confirmed(&self, events: &[Outgoing<'_>]) -> Result<Vec<bool>, AmqpError> {
        // Writing the frames waits on lapin's I/O thread, which a broker
        // that stopped reading (or a dead connection) can stall forever.
        let published = tokio::time::timeout(CONFIRM_TIMEOUT, self.publish(events))
            .await
            .map_err(|_| AmqpError::ConfirmTimeout)??;
        published.confirmed().await
    }

    /// Publishes every event without waiting for the broker's answers, so the
    /// caller can publish more while they come.
    ///
    /// lapin's `basic_publish` resolves only once its I/O thread has written
    /// the frames; awaited one by one, every event costs a round trip between
    /// threads (measured: a fifth of sms-svc's CPU at 8,000 events/s). Polled
    /// together, the frames are all queued first, in order (each publish
    /// takes its delivery tag and queues its frames in one poll), and go out
    /// in a few writes.
    pub async fn publish(&self, events: &[Outgoing<'_>]) -> Result<Confirms, AmqpError> {
        let publishes = events.iter().map(|event| {
            self.channel.basic_publish(
                self.exchange.as_str().into(),
                event.routing_key.into(),
                BasicPublishOptions::default(),
                event.payload,
                properties(event),
            )
        });
        let pending = futures::future::try_join_all(publishes).await?;
        Ok(Confirms { pending })
    }

    pub async fn close(self) {
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            self.connection.close(200, "bye".into()),
        )
        .await;
    }
}

/// The wait between attempts to reach the broker: 100 ms, doubling to 2 s,
/// back to 100 ms once a connection worked.
pub struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Self(Self::FIRST)
    }
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MOST: Duration = Duration::from_secs(2);

    pub fn reset(&mut self) {
        self.0 = Self::FIRST;
    }

    /// Waits the current step (less if `stop` changes), then doubles it.
    pub async fn wait(&mut self, stop: &mut tokio::sync::watch::Receiver<bool>) {
        tokio::select! {
            _ = tokio::time::sleep(self.0) => {}
            _ = stop.changed() => {}
        }
        self.0 = (self.0 * 2).min(Self::MOST);
    }
}

/// What a relay does with a connected publisher until it fails or `stop`.
pub type Pump<'a> = std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Keeps a confirmed publisher to `exchange` until `stop` turns true: runs
/// `pump` with it, and whenever the broker goes away or cannot be reached,
/// connects again after a backoff (100 ms, doubling to 2 s). Never gives up.
pub async fn keep_publishing<'a>(
    url: &str,
    exchange: &str,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut pump: impl FnMut(std::sync::Arc<Publisher>, tokio::sync::watch::Receiver<bool>) -> Pump<'a>,
) {
    let mut backoff = Backoff::default();
    while !*stop.borrow() {
        match Publisher::connect(url, exchange).await {
            Ok(publisher) => {
                tracing::info!(exchange = %exchange, "relay connected to broker");
                backoff.reset();
                let publisher = std::sync::Arc::new(publisher);
                if let Err(err) = pump(publisher.clone(), stop.clone()).await {
                    tracing::warn!(error = %err, "relay lost the broker, reconnecting");
                }
                if let Ok(publisher) = std::sync::Arc::try_unwrap(publisher) {
                    publisher.close().await;
                }
            }
            Err(err) => tracing::warn!(error = %err, "relay cannot reach the broker"),
        }
        backoff.wait(&mut stop).await;
    }
}

/// What lets one replica at a time run a relay: a MySQL named lock, a
/// MongoDB document.
pub trait Lease: Send {
    /// Whether this replica still holds it (renewing it, where it expires).
    /// False also when the store does not answer in time: the lease may
    /// have gone to another replica by then.
    fn still_held(&mut self) -> impl Future<Output = bool> + Send;
}

/// [`keep_publishing`] for a relay of which one replica runs at a time:
/// relays until `stop`, or until `lease`, asked every `every`, is no longer
/// held. Answers whether it was still held at the end, so the caller knows
/// to release it.
pub async fn publish_while_held<'a>(
    url: &str,
    exchange: &str,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
    lease: &mut impl Lease,
    pump: impl FnMut(std::sync::Arc<Publisher>, tokio::sync::watch::Receiver<bool>) -> Pump<'a>,
) -> bool {
    let (halt, halted) = tokio::sync::watch::channel(false);
    let publishing = keep_publishing(url, exchange, halted, pump);
    tokio::pin!(publishing);
    let watching = async {
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = stop.changed() => return true,
            }
            if *stop.borrow() {
                return true;
            }
            if !lease.still_held().await {
                return false;
            }
        }
    };
    let held = tokio::select! {
        () = &mut publishing => true,
        held = watching => held,
    };
    // Finishing the batch in hand after the lease is lost may repeat a few
    // events (same ids) that another replica publishes too: harmless.
    let _ = halt.send(true);
    publishing.await;
    held
}

/// The broker's answers to published events, in publishing order.
pub struct Confirms {
    pending: Vec<lapin::PublisherConfirm>,
}

impl Confirms {
    /// `true` for each event the broker confirmed, `false` for each it
    /// refused; an error if the connection went before it answered all.
    pub async fn confirmed(self) -> Result<Vec<bool>, AmqpError> {
        let answers = async {
            let mut acked = Vec::with_capacity(self.pending.len());
            for confirm in self.pending {
                acked.push(confirm.await?.is_ack());
            }
            Ok(acked)
        };
        tokio::time::timeout(CONFIRM_TIMEOUT, answers)
            .await
            .map_err(|_| AmqpError::ConfirmTimeout)?
    }
}

/// Declares `exchange` as every smsops service expects it: durable, topic.
pub async fn declare_exchange(channel: &Channel, exchange: &str) -> Result<(), lapin::Error> {
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
}

/// A feed: a queue of this channel's own, exclusive and gone with it,
/// bound to each (exchange, routing key pattern) and consumed without acks
/// as `tag`. For what only matters as it comes (a dashboard's live view,
/// the newest route-health snapshot), not a ledger.
pub async fn feed(
    channel: &Channel,
    bindings: &[(String, String)],
    tag: &str,
) -> Result<lapin::Consumer, lapin::Error> {
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    for (exchange, key) in bindings {
        declare_exchange(channel, exchange).await?;
        channel
            .queue_bind(
                queue.name().clone(),
                exchange.as_str().into(),
                key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    channel
        .basic_consume(
            queue.name().clone(),
            tag.into(),
            BasicConsumeOptions {
                no_ack: true,
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
}

/// W3C trace context for an event: every event about one thing (a message,
/// a session) shares that thing's UUID as its trace id, so a tracer shows
/// them as one trace; the span id comes from the event's own UUID.
pub fn traceparent(subject_id: &str, event_id: &str) -> String {
    let trace: String = subject_id.chars().filter(char::is_ascii_hexdigit).collect();
    let span: String = event_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .skip(16)
        .collect();
    format!("00-{trace}-{span}-01")
}

fn properties(event: &Outgoing<'_>) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        "type".into(),
        AMQPValue::LongString(event.event_type.to_string().into()),
    );
    headers.insert(
        "traceparent".into(),
        AMQPValue::LongString(event.traceparent.to_string().into()),
    );
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(ShortString::from("application/json"))
        .with_message_id(event.event_id.into())
        .with_type(event.event_type.into())
        .with_timestamp(u64::try_from(crate::unix_now()).unwrap_or_default())
        .with_headers(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_well_formed() {
        let id = uuid::Uuid::now_v7().to_string();
        let value = traceparent(&id, &uuid::Uuid::now_v7().to_string());
        let parts: Vec<&str> = value.split('-').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!((parts[1].len(), parts[2].len()), (32, 16));
    }
}
