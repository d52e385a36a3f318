//! Notices of changes to the directory (pairs, users, invitations, API keys,
//! alert rules), published on a topic exchange for the live feed, so every
//! open dashboard lists a new pair or person without a reload.
//!
//! A notice is a hint to look again, not a record: the audit log is the
//! record, and the dashboard reloads on its own as well. So publishing is
//! best effort and never holds up the write it follows: notices wait in a
//! bounded queue for one background publisher, and one that meets a full
//! queue or a broker that is away is dropped and counted.

use std::time::Duration;

use prometheus_client::{metrics::counter::Counter, registry::Registry};
use tokio::sync::mpsc;

use crate::amqp::{Outgoing, Publisher};

/// Notices waiting for the publisher; more are dropped.
const QUEUE: usize = 1024;
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MOST: Duration = Duration::from_secs(10);

struct Notice {
    id: String,
    kind: String,
    body: Vec<u8>,
}

#[derive(Clone, Default)]
struct Counts {
    published: Counter,
    dropped: Counter,
}

/// Where a service sends its change notices; cheap to clone.
#[derive(Clone)]
pub struct Changes {
    queue: Option<mpsc::Sender<Notice>>,
    counts: Counts,
}

impl Changes {
    /// Sends nothing (a service or test without a broker).
    pub fn off() -> Self {
        Self {
            queue: None,
            counts: Counts::default(),
        }
    }

    /// Starts the publisher to `exchange` (a durable topic exchange); call
    /// it inside a runtime. It ends when every clone of this is dropped.
    pub fn start(amqp_url: String, exchange: String) -> Self {
        let (queue, notices) = mpsc::channel(QUEUE);
        let counts = Counts::default();
        tokio::spawn(publish(amqp_url, exchange, notices, counts.clone()));
        Self {
            queue: Some(queue),
            counts,
        }
    }

    /// Queues a notice: `kind` (`pair.created`) is its routing key and type,
    /// `id` its event id, `body` its JSON.
    pub fn notify(&self, id: &str, kind: &str, body: &serde_json::Value) {
        let Some(queue) = &self.queue else { return };
        let notice = Notice {
            id: id.to_string(),
            kind: kind.to_string(),
            body: body.to_string().into_bytes(),
        };
        if queue.try_send(notice).is_err() {
            self.counts.dropped.inc();
        }
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "change_notices_published",
            "live notices of directory changes the broker confirmed",
            self.counts.published.clone(),
        );
        registry.register(
            "change_notices_dropped",
            "live notices of directory changes dropped (queue full or broker away)",
            self.counts.dropped.clone(),
        );
    }
}

async fn publish(
    amqp_url: String,
    exchange: String,
    mut notices: mpsc::Receiver<Notice>,
    counts: Counts,
) {
    let mut wait = RETRY_FIRST;
    let mut publisher: Option<Publisher> = None;
    while let Some(notice) = notices.recv().await {
        if publisher.is_none() {
            match Publisher::connect(&amqp_url, &exchange).await {
                Ok(connected) => {
                    wait = RETRY_FIRST;
                    publisher = Some(connected);
                }
                Err(err) => {
                    tracing::warn!(error = %err, %exchange, "change notice dropped: no broker");
                    counts.dropped.inc();
                    // Notices that come meanwhile wait in the queue (or drop).
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(RETRY_MOST);
                    continue;
                }
            }
        }
        let Some(connected) = &publisher else {
            continue;
        };
        let traceparent = crate::amqp::traceparent(&notice.id, &notice.id);
        let outgoing = Outgoing {
            event_id: &notice.id,
            routing_key: &notice.kind,
            event_type: &notice.kind,
            traceparent: &traceparent,
            payload: &notice.body,
        };
        match connected.publish_confirmed(&[outgoing]).await {
            Ok(confirmed) if confirmed.iter().all(|ok| *ok) => {
                counts.published.inc();
            }
            Ok(_) => {
                counts.dropped.inc();
            }
            Err(err) => {
                tracing::warn!(error = %err, %exchange, "change notice dropped: broker lost");
                counts.dropped.inc();
                if let Some(lost) = publisher.take() {
                    lost.close().await;
                }
            }
        }
    }
    if let Some(connected) = publisher {
        connected.close().await;
    }
}
