//! Transport-neutral metrics logic: what an SMS event counts for, and the
//! summary callers ask for.

mod error;
mod exported;

use std::{collections::BTreeMap, sync::Arc};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::Deserialize;
use smsops_common::auth::Caller;

pub use error::MetricsError;
pub use exported::Exported;

use crate::store::{Bucket, Latencies, PairTotals, Store};

const DEFAULT_WINDOW_SECS: u64 = 3600;
const MAX_WINDOW_SECS: u64 = 30 * 24 * 3600;

/// The fields of an SMS event (docs/events.md) that metrics use.
#[derive(Debug, Clone, Deserialize)]
pub struct SmsEvent {
    pub event_id: String,
    pub occurred_at: DateTime<Utc>,
    pub country_operator_id: String,
    pub country: String,
    pub operator: String,
    pub status: String,
    #[serde(default)]
    pub error_code: Option<String>,
    /// When sms-svc accepted the message; absent on results reported
    /// through the ingest API and on events from before it was published.
    #[serde(default)]
    pub accepted_at: Option<DateTime<Utc>>,
}

impl SmsEvent {
    /// Reads an event body; `None` for what is not an SMS event (poison).
    pub fn parse(body: &[u8]) -> Option<Self> {
        let event: Self = serde_json::from_slice(body).ok()?;
        let valid = !event.event_id.is_empty()
            && event.event_id.len() <= 36
            && !event.country_operator_id.is_empty()
            && event.country.len() <= 10
            && event.operator.len() <= 50;
        valid.then_some(event)
    }
}

/// An event on its way to live subscribers.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    /// The routing key, e.g. `sms.delivered`.
    pub kind: String,
    pub body: String,
}

/// What a batch of events adds to one pair's minute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub country: String,
    pub operator: String,
    pub sent: u32,
    pub delivered: u32,
    pub undelivered: u32,
    pub failed: u32,
    /// Accepted to `sent` (the provider took it), per message, in ms.
    pub to_sent_ms: Vec<u64>,
    /// Accepted to `delivered`, per message, in ms.
    pub to_delivered_ms: Vec<u64>,
}

/// How long after its acceptance an event's status came, in ms; none
/// without an acceptance time, and never below zero (clocks differ).
fn since_accepted_ms(event: &SmsEvent) -> Option<u64> {
    let accepted = event.accepted_at?;
    let ms = (event.occurred_at - accepted).num_milliseconds();
    Some(u64::try_from(ms).unwrap_or(0))
}

/// How often each error code ended a message, per (pair, minute, code).
pub fn error_tally<'a>(
    events: impl IntoIterator<Item = &'a SmsEvent>,
) -> BTreeMap<(String, DateTime<Utc>, String), u32> {
    let mut tallies = BTreeMap::new();
    for event in events {
        let Some(code) = event
            .error_code
            .as_ref()
            .filter(|c| !c.is_empty() && c.len() <= 64)
        else {
            continue;
        };
        if !matches!(event.status.as_str(), "undelivered" | "failed") {
            continue;
        }
        let minute = event
            .occurred_at
            .duration_trunc(TimeDelta::minutes(1))
            .unwrap_or(event.occurred_at);
        *tallies
            .entry((event.country_operator_id.clone(), minute, code.clone()))
            .or_insert(0) += 1;
    }
    tallies
}

/// Adds up events per (pair, minute). Statuses on the way (`queued`,
/// `sent`) count for nothing here; `accepted` counts as sent.
pub fn tally<'a>(
    events: impl IntoIterator<Item = &'a SmsEvent>,
) -> BTreeMap<(String, DateTime<Utc>), Tally> {
    let mut tallies: BTreeMap<(String, DateTime<Utc>), Tally> = BTreeMap::new();
    for event in events {
        let minute = event
            .occurred_at
            .duration_trunc(TimeDelta::minutes(1))
            .unwrap_or(event.occurred_at);
        let entry = tallies
            .entry((event.country_operator_id.clone(), minute))
            .or_insert_with(|| Tally {
                country: event.country.clone(),
                operator: event.operator.clone(),
                ..Tally::default()
            });
        match event.status.as_str() {
            "accepted" => entry.sent += 1,
            "sent" => entry.to_sent_ms.extend(since_accepted_ms(event)),
            "delivered" => {
                entry.delivered += 1;
                entry.to_delivered_ms.extend(since_accepted_ms(event));
            }
            "undelivered" => entry.undelivered += 1,
            "failed" => entry.failed += 1,
            _ => {}
        }
    }
    tallies
}

/// How often live subscribers get the pairs that changed.
pub const LIVE_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
/// The window live updates total over.
const LIVE_WINDOW_SECS: i64 = 3600;

pub struct MetricsCore {
    store: Store,
    /// Pairs whose counts just changed, for live subscribers.
    changed: tokio::sync::broadcast::Sender<Arc<Vec<String>>>,
    /// What Prometheus scrapes beyond the request metrics.
    exported: Exported,
    /// Every event as it arrives, for live subscribers.
    events: tokio::sync::broadcast::Sender<Arc<LiveEvent>>,
    /// Turns true when the service stops, ending live streams so the
    /// server's graceful shutdown does not wait on them.
    closing: tokio::sync::watch::Sender<bool>,
    /// Whether the live feed's queue is bound and read, so a new watcher
    /// can be told from when on it sees every event.
    feed_on: tokio::sync::watch::Sender<bool>,
}

impl MetricsCore {
    pub fn new(store: Store) -> Arc<Self> {
        Arc::new(Self {
            store,
            changed: tokio::sync::broadcast::channel(1024).0,
            events: tokio::sync::broadcast::channel(8192).0,
            exported: Exported::default(),
            closing: tokio::sync::watch::channel(false).0,
            feed_on: tokio::sync::watch::channel(false).0,
        })
    }

    /// Ends every live stream.
    pub fn close(&self) {
        let _ = self.closing.send(true);
    }

    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    pub fn exported(&self) -> &Exported {
        &self.exported
    }

    /// Sets the exported success rates from the last hour's totals.
    pub async fn refresh_exported(&self) -> Result<(), MetricsError> {
        let since = Utc::now() - TimeDelta::seconds(LIVE_WINDOW_SECS);
        let totals = self
            .store
            .summary(since, None, None, Latencies::Skip)
            .await?;
        self.exported.set_rates(&totals);
        Ok(())
    }

    /// Tells live subscribers which pairs' counts changed.
    pub fn changed(&self, pairs: Vec<String>) {
        if !pairs.is_empty() {
            let _ = self.changed.send(Arc::new(pairs));
        }
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Vec<String>>> {
        self.changed.subscribe()
    }

    pub fn subscribe_events(&self) -> tokio::sync::broadcast::Receiver<Arc<LiveEvent>> {
        self.events.subscribe()
    }

    pub fn set_feed_on(&self, on: bool) {
        self.feed_on.send_replace(on);
    }

    pub fn feed_on(&self) -> tokio::sync::watch::Receiver<bool> {
        self.feed_on.subscribe()
    }

    /// Whether anyone follows the live event feed.
    pub fn has_watchers(&self) -> bool {
        self.events.receiver_count() > 0
    }

    /// An event just published: to live subscribers as it is, and its
    /// pair's totals soon after.
    pub fn live_event(&self, kind: &str, body: String) {
        #[derive(Deserialize)]
        struct Pair {
            country_operator_id: String,
        }
        if kind.starts_with("sms.")
            && let Ok(pair) = serde_json::from_str::<Pair>(&body)
        {
            self.changed(vec![pair.country_operator_id]);
        }
        let _ = self.events.send(Arc::new(LiveEvent {
            kind: kind.to_string(),
            body,
        }));
    }

    /// The last hour's totals of these pairs.
    pub async fn live_totals(&self, pairs: &[String]) -> Result<Vec<PairTotals>, MetricsError> {
        let since = Utc::now() - TimeDelta::seconds(LIVE_WINDOW_SECS);
        // Four times a second: the latency bins, tens of times the rows of
        // the counts, are left to the summary callers ask for.
        let mut totals = self
            .store
            .summary(since, None, None, Latencies::Skip)
            .await?;
        totals.retain(|t| pairs.contains(&t.pair_id));
        Ok(totals)
    }

    /// Totals per pair over the last `window_secs` (0: an hour).
    pub async fn summary(
        &self,
        _caller: &Caller,
        window_secs: u64,
        country: Option<&str>,
        operator: Option<&str>,
    ) -> Result<Vec<PairTotals>, MetricsError> {
        let window = match window_secs {
            0 => DEFAULT_WINDOW_SECS,
            60..=MAX_WINDOW_SECS => window_secs,
            _ => {
                return Err(MetricsError::InvalidArgument(format!(
                    "window must be 60 s to {MAX_WINDOW_SECS} s"
                )));
            }
        };
        let since = Utc::now() - TimeDelta::seconds(window as i64);
        let country = country.map(|c| c.trim().to_ascii_uppercase());
        Ok(self
            .store
            .summary(since, country.as_deref(), operator, Latencies::Read)
            .await?)
    }
}

impl MetricsCore {
    /// Counts per bucket (60, 300 or 3600 s) over a time range (default:
    /// the last hour), for one pair or, with none, all of them.
    pub async fn series(
        &self,
        _caller: &Caller,
        pair_id: Option<&str>,
        bucket_secs: u64,
        since: Option<&str>,
        until: Option<&str>,
    ) -> Result<Vec<Bucket>, MetricsError> {
        if ![60, 300, 3600].contains(&bucket_secs) {
            return Err(MetricsError::InvalidArgument(
                "bucket must be 60, 300 or 3600 seconds".into(),
            ));
        }
        let time = |name: &str, value: Option<&str>, default: DateTime<Utc>| match value {
            None | Some("") => Ok(default),
            Some(value) => DateTime::parse_from_rfc3339(value)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|_| {
                    MetricsError::InvalidArgument(format!("{name} must be an RFC 3339 time"))
                }),
        };
        let now = Utc::now();
        let until = time("until", until, now)?;
        let since = time("since", since, until - TimeDelta::hours(1))?;
        if since >= until || until - since > TimeDelta::days(31) {
            return Err(MetricsError::InvalidArgument(
                "since must be before until, at most 31 days apart".into(),
            ));
        }
        Ok(self
            .store
            .series(pair_id, bucket_secs, since, until)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, pair: &str, status: &str, at: &str) -> SmsEvent {
        SmsEvent {
            event_id: id.into(),
            occurred_at: at.parse().unwrap(),
            country_operator_id: pair.into(),
            country: "GB".into(),
            operator: "Vodafone".into(),
            status: status.into(),
            error_code: None,
            accepted_at: None,
        }
    }

    #[test]
    fn sent_and_delivered_events_carry_their_time_since_acceptance() {
        let accepted = "2026-11-22T10:00:00Z".parse().ok();
        let timed = |id: &str, status: &str, at: &str| SmsEvent {
            accepted_at: accepted,
            ..event(id, "p", status, at)
        };
        let events = [
            timed("1", "accepted", "2026-11-22T10:00:00Z"),
            timed("2", "sent", "2026-11-22T10:00:00.250Z"),
            timed("3", "delivered", "2026-11-22T10:00:03Z"),
            // A clock behind sms-svc's counts as no time, not as negative.
            timed("4", "delivered", "2026-11-22T09:59:59Z"),
            // A reported result has no acceptance time: counted, not timed.
            event("5", "p", "delivered", "2026-11-22T10:00:10Z"),
        ];
        let tallies = tally(events.iter());
        let ten: Vec<&Tally> = tallies.values().collect();
        let sent: Vec<u64> = ten.iter().flat_map(|t| t.to_sent_ms.clone()).collect();
        let delivered: Vec<u64> = ten.iter().flat_map(|t| t.to_delivered_ms.clone()).collect();
        assert_eq!(sent, [250]);
        assert_eq!(delivered, [0, 3000]);
        assert_eq!(ten.iter().map(|t| t.delivered).sum::<u32>(), 3);
    }

    #[test]
    fn events_add_up_per_pair_and_minute() {
        let events = [
            event("1", "p", "accepted", "2026-11-22T10:00:01Z"),
            event("2", "p", "queued", "2026-11-22T10:00:02Z"),
            event("3", "p", "delivered", "2026-11-22T10:00:59Z"),
            event("4", "p", "failed", "2026-11-22T10:01:00Z"),
            event("5", "q", "undelivered", "2026-11-22T10:00:30Z"),
        ];
        let tallies = tally(&events);
        assert_eq!(tallies.len(), 3);
        let first = &tallies[&("p".to_string(), "2026-11-22T10:00:00Z".parse().unwrap())];
        assert_eq!((first.sent, first.delivered, first.failed), (1, 1, 0));
    }

    #[test]
    fn poison_is_refused() {
        assert!(SmsEvent::parse(b"not json").is_none());
        assert!(SmsEvent::parse(br#"{"event_id": ""}"#).is_none());
        let good = br#"{"event_id":"e","occurred_at":"2026-11-22T10:00:00Z","country_operator_id":"p","country":"GB","operator":"V","status":"sent"}"#;
        assert!(SmsEvent::parse(good).is_some());
    }
}
