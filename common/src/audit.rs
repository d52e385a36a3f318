//! The audit log's writing side: what every service that makes a write for
//! a person (or for process-svc acting on its own) calls once the write
//! succeeded.
//!
//! ```ignore
//! recorder
//!     .record(&caller, Entry::new(kind::PAIR_UPDATED, &pair.id).change(before, after))
//!     .await;
//! ```
//!
//! auth-svc keeps the log. A [`Recorder`] sends each [`Entry`] to it with
//! the caller's own token, so auth-svc names the actor from a token it
//! signed: no service can write someone else's name. The entry's id is
//! chosen here, once, so a retry never records twice.
//!
//! `record` never fails the write it follows: it tries once (at most
//! [`INLINE_WAIT`]), and if auth-svc is away it queues the entry and a
//! background task retries it with backoff ([`BACKOFF_FIRST`] doubling to
//! [`BACKOFF_MAX`]) until auth-svc takes it or refuses it. Every failed
//! attempt is logged and counted (`smsops_audit_record_failures_total`),
//! the queue's length is `smsops_audit_pending`, and an entry that is
//! given up on (refused, queue full, or still queued when the process
//! ends) is logged at error level with its actor, kind and target and
//! counted as `smsops_audit_records_total{outcome="dropped"}`. The queue
//! lives in memory: a replica that dies while auth-svc is away loses what
//! it had queued, loudly.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use crate::grpc::Channel;
use mongodb::bson::DateTime;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use serde_json::{Map, Value};
use smsops_proto::auth::v1::{RecordAuditRequest, auth_service_client::AuthServiceClient};
use tokio::sync::mpsc;

use crate::{ApiError, ErrorCode, auth::Caller};

/// The kinds of record smsops writes: `<family>.<action>`. The family is
/// what was written (the `kind=` filter takes a family too).
pub mod kind {
    pub const USER_SIGNED_UP: &str = "user.signed_up";
    pub const USER_ROLE_CHANGED: &str = "user.role_changed";
    pub const USER_DELETED: &str = "user.deleted";
    /// A user's sending quota set or changed by an admin.
    pub const USER_QUOTA_CHANGED: &str = "user.quota_changed";
    pub const INVITATION_CREATED: &str = "invitation.created";
    pub const INVITATION_REVOKED: &str = "invitation.revoked";
    pub const API_KEY_CREATED: &str = "api_key.created";
    pub const API_KEY_REVOKED: &str = "api_key.revoked";
    pub const PAIR_CREATED: &str = "pair.created";
    pub const PAIR_UPDATED: &str = "pair.updated";
    pub const PAIR_DELETED: &str = "pair.deleted";
    pub const SESSION_STARTED: &str = "session.started";
    pub const SESSION_STOPPED: &str = "session.stopped";
    pub const SESSION_RESTARTED: &str = "session.restarted";
    /// process-svc took over a running session whose replica went away.
    pub const SESSION_RESUMED: &str = "session.resumed";
    pub const SESSION_FAILED: &str = "session.failed";
    pub const ALERT_RULES_UPDATED: &str = "alert_rules.updated";
    /// A manual alert (`POST /alerts`).
    pub const ALERT_RAISED: &str = "alert.raised";
    /// A pair's traffic moved off a provider that stopped delivering it.
    pub const ROUTE_FAILED_OVER: &str = "route.failed_over";
    /// It came back once that provider delivered again.
    pub const ROUTE_RESTORED: &str = "route.restored";
}

/// How long `record` waits for auth-svc before leaving the entry to the
/// background task, so an outage delays a write's answer by this at most.
pub const INLINE_WAIT: Duration = Duration::from_secs(2);
pub const BACKOFF_FIRST: Duration = Duration::from_millis(500);
pub const BACKOFF_MAX: Duration = Duration::from_secs(15);
/// Entries waiting for auth-svc beyond this are dropped (and logged).
pub const QUEUE_CAPACITY: usize = 10_000;
/// The most bytes `before` or `after` may take as JSON.
pub const MAX_FIELDS_BYTES: usize = 4096;

/// One write, as the audit log records it. The actor is not part of it:
/// auth-svc takes that from the token the entry is sent with.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Chosen once per write: a retry sends the same id.
    pub id: String,
    /// When the write happened, in milliseconds since the epoch.
    pub at_ms: i64,
    pub kind: String,
    pub target: String,
    /// The fields the write changed, as they were and as they became.
    pub before: Option<Map<String, Value>>,
    pub after: Option<Map<String, Value>>,
}

impl Entry {
    /// A record of `kind` on `target`, happening now.
    pub fn new(kind: &str, target: impl Into<String>) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            at_ms: DateTime::now().timestamp_millis(),
            kind: kind.to_string(),
            target: target.into(),
            before: None,
            after: None,
        }
    }

    /// The fields as they were (a JSON object; secrets are redacted).
    pub fn before(mut self, fields: Value) -> Self {
        self.before = fields_of(fields);
        self
    }

    /// The fields as they became (a JSON object; secrets are redacted).
    pub fn after(mut self, fields: Value) -> Self {
        self.after = fields_of(fields);
        self
    }

    /// Both sides of an update, keeping only what differs (nested objects
    /// are compared field by field).
    pub fn change(mut self, before: Value, after: Value) -> Self {
        let (was, is) = diff(&before, &after);
        self.before = fields_of(Value::Object(was));
        self.after = fields_of(Value::Object(is));
        self
    }

    /// Whether the write changed nothing this entry would show.
    pub fn changes_nothing(&self) -> bool {
        self.before.is_none() && self.after.is_none()
    }

    /// The entry as auth-svc's `RecordAudit` takes it.
    pub fn to_request(&self) -> RecordAuditRequest {
        let json = |fields: &Option<Map<String, Value>>| {
            fields
                .as_ref()
                .map(|fields| Value::Object(fields.clone()).to_string())
                .unwrap_or_default()
        };
        RecordAuditRequest {
            id: self.id.clone(),
            at: rfc3339(self.at_ms),
            kind: self.kind.clone(),
            target: self.target.clone(),
            before: json(&self.before),
            after: json(&self.after),
        }
    }
}

/// RFC 3339 with milliseconds, as every smsops timestamp.
pub fn rfc3339(ms: i64) -> String {
    DateTime::from_millis(ms)
        .try_to_rfc3339_string()
        .unwrap_or_default()
}

fn fields_of(value: Value) -> Option<Map<String, Value>> {
    let mut value = match value {
        Value::Null => return None,
        Value::Object(fields) if fields.is_empty() => return None,
        Value::Object(fields) => Value::Object(fields),
        other => Value::Object(Map::from_iter([("value".to_string(), other)])),
    };
    scrub(&mut value);
    match value {
        Value::Object(fields) => Some(fields),
        _ => None,
    }
}

/// The fields that differ between two JSON values, as they were and as
/// they became; a field one side lacks is `null` on that side.
pub fn diff(before: &Value, after: &Value) -> (Map<String, Value>, Map<String, Value>) {
    let (mut was, mut is) = (Map::new(), Map::new());
    let (Value::Object(old), Value::Object(new)) = (before, after) else {
        if before != after {
            was.insert("value".into(), before.clone());
            is.insert("value".into(), after.clone());
        }
        return (was, is);
    };
    let keys = old
        .keys()
        .chain(new.keys().filter(|k| !old.contains_key(*k)));
    for key in keys {
        let (a, b) = (
            old.get(key).unwrap_or(&Value::Null),
            new.get(key).unwrap_or(&Value::Null),
        );
        if a == b {
            continue;
        }
        if a.is_object() && b.is_object() {
            let (inner_was, inner_is) = diff(a, b);
            was.insert(key.clone(), Value::Object(inner_was));
            is.insert(key.clone(), Value::Object(inner_is));
        } else {
            was.insert(key.clone(), a.clone());
            is.insert(key.clone(), b.clone());
        }
    }
    (was, is)
}

/// What a redacted value reads as.
pub const REDACTED: &str = "[redacted]";

/// Redacts, in place, every field whose name says it holds a secret
/// (`password`, `token`, `secret`, `hash`, `key`, `api_key`...) and every
/// string that looks like one of smsops's secrets (an API key, an
/// invitation, a JWT). The services never put one in an entry; this is
/// so that a mistake cannot put one in the log.
pub fn scrub(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                if secret_name(name) {
                    *field = Value::String(REDACTED.into());
                } else {
                    scrub(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::String(text) if looks_secret(text) => *text = REDACTED.into(),
        _ => {}
    }
}

fn secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "token", "secret", "hash", "credential"]
        .iter()
        .any(|word| name.contains(word))
        || name == "key"
        || name.ends_with("_key") && !name.ends_with("idempotency_key")
}

fn looks_secret(text: &str) -> bool {
    let text = text.trim();
    let ours = ["smk_", "inv_"].iter().any(|prefix| {
        text.strip_prefix(prefix)
            .is_some_and(|rest| rest.split_once('_').is_some_and(|(_, s)| !s.is_empty()))
    });
    // A JWT: base64url header `{"` then two more dot-separated parts.
    let jwt = text.starts_with("eyJ") && text.split('.').count() == 3;
    ours || jwt
}

/// Who made the write an entry records.
#[derive(Debug, Clone)]
pub enum By {
    /// A person, as their verified token proves.
    Caller(Caller),
    /// This service on its own, as its service account.
    Service,
}

impl By {
    fn describe(&self) -> String {
        match self {
            By::Caller(caller) => caller.user_id.clone(),
            By::Service => "this service's account".into(),
        }
    }
}

/// Why an attempt failed: worth retrying, or never going to succeed.
#[derive(Debug)]
pub enum Failure {
    Retry(ApiError),
    Refused(ApiError),
}

impl Failure {
    /// Outages (unavailable, timeout, internal, rate limited) are retried;
    /// a refusal (a bad entry, a token auth-svc will not take) is final.
    pub fn of(err: ApiError) -> Self {
        match err.code {
            ErrorCode::Unavailable
            | ErrorCode::Timeout
            | ErrorCode::Internal
            | ErrorCode::RateLimited => Failure::Retry(err),
            _ => Failure::Refused(err),
        }
    }

    fn error(&self) -> &ApiError {
        match self {
            Failure::Retry(err) | Failure::Refused(err) => err,
        }
    }
}

pub type Attempt<'a> = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send + 'a>>;
type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<String, ApiError>> + Send + 'a>>;

/// Where entries go: auth-svc over gRPC, or (in auth-svc) its own store.
pub trait Sink: Send + Sync + 'static {
    /// Writes one entry; the same entry again must record nothing new.
    fn write<'a>(&'a self, by: &'a By, entry: &'a Entry) -> Attempt<'a>;
}

/// A service account's access token, for entries [`By::Service`].
pub trait ServiceToken: Send + Sync + 'static {
    fn token(&self) -> TokenFuture<'_>;
    /// The token was refused: sign in again next time.
    fn forget(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// auth-svc's `RecordAudit`, with the actor's token as the bearer.
pub struct AuthServiceSink {
    client: AuthServiceClient<Channel>,
    service: Option<Arc<dyn ServiceToken>>,
}

impl AuthServiceSink {
    pub fn new(channel: Channel, service: Option<Arc<dyn ServiceToken>>) -> Self {
        Self {
            client: AuthServiceClient::new(channel),
            service,
        }
    }
}

impl Sink for AuthServiceSink {
    fn write<'a>(&'a self, by: &'a By, entry: &'a Entry) -> Attempt<'a> {
        Box::pin(async move {
            let token = match (by, &self.service) {
                (By::Caller(caller), _) => caller.token.clone(),
                (By::Service, Some(service)) => service.token().await.map_err(Failure::of)?,
                (By::Service, None) => {
                    return Err(Failure::Refused(ApiError::internal(
                        "this service has no account to record as",
                    )));
                }
            };
            let mut request = tonic::Request::new(entry.to_request());
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| Failure::Refused(ApiError::internal("token is not a header")))?;
            request
                .metadata_mut()
                .insert(crate::auth::AUTHORIZATION, value);
            match self.client.clone().record_audit(request).await {
                Ok(_) => Ok(()),
                Err(status) => {
                    let err = ApiError::from_status(&status);
                    let stale =
                        matches!(err.code, ErrorCode::Unauthorized | ErrorCode::InvalidToken);
                    match (by, &self.service) {
                        // The service signs in again and tries once more.
                        (By::Service, Some(service)) if stale => {
                            service.forget().await;
                            Err(Failure::Retry(err))
                        }
                        _ => Err(Failure::of(err)),
                    }
                }
            }
        })
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Default)]
struct Metrics {
    records: Family<OutcomeLabels, Counter>,
    failures: Counter,
    pending: Gauge,
}

impl Metrics {
    fn outcome(&self, outcome: &'static str) {
        self.records.get_or_create(&OutcomeLabels { outcome }).inc();
    }
}

struct Pending {
    by: By,
    entry: Entry,
}

/// Records entries, retrying in the background while auth-svc is away.
/// Cheap to clone; every clone feeds one queue.
#[derive(Clone)]
pub struct Recorder {
    sink: Arc<dyn Sink>,
    queue: mpsc::Sender<Pending>,
    metrics: Metrics,
}

impl Recorder {
    /// A recorder writing to `sink`; starts its retry task, so it must be
    /// made inside a runtime.
    pub fn new(sink: Arc<dyn Sink>) -> Self {
        let (queue, queued) = mpsc::channel(QUEUE_CAPACITY);
        let metrics = Metrics::default();
        // Exported from the start, so a rate over them is never blank.
        for outcome in ["recorded", "dropped"] {
            let _ = metrics.records.get_or_create(&OutcomeLabels { outcome });
        }
        tokio::spawn(retry(sink.clone(), queued, metrics.clone()));
        Self {
            sink,
            queue,
            metrics,
        }
    }

    /// A recorder sending to auth-svc; `service` is this service's own
    /// account, for [`Recorder::record_service`].
    pub fn auth_service(channel: Channel, service: Option<Arc<dyn ServiceToken>>) -> Self {
        Self::new(Arc::new(AuthServiceSink::new(channel, service)))
    }

    /// Its Prometheus metrics, on the service's registry.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "audit_records",
            "audit log entries this service wrote (recorded) or gave up on (dropped)",
            self.metrics.records.clone(),
        );
        registry.register(
            "audit_record_failures",
            "attempts to write an audit log entry that failed (each is retried or dropped)",
            self.metrics.failures.clone(),
        );
        registry.register(
            "audit_pending",
            "audit log entries waiting for auth-svc",
            self.metrics.pending.clone(),
        );
    }

    /// Records a write `caller` made. Call it after the write succeeded;
    /// it never fails the write (see the module's documentation).
    pub async fn record(&self, caller: &Caller, entry: Entry) {
        self.submit(By::Caller(caller.clone()), entry).await;
    }

    /// Records a write this service made on its own, as its account.
    pub async fn record_service(&self, entry: Entry) {
        self.submit(By::Service, entry).await;
    }

    async fn submit(&self, by: By, entry: Entry) {
        let attempt = tokio::time::timeout(INLINE_WAIT, self.sink.write(&by, &entry)).await;
        let failure = match attempt {
            Ok(Ok(())) => {
                self.metrics.outcome("recorded");
                return;
            }
            Ok(Err(failure)) => failure,
            Err(_) => Failure::Retry(ApiError::new(
                ErrorCode::Timeout,
                format!("auth-svc did not answer within {INLINE_WAIT:?}"),
            )),
        };
        self.metrics.failures.inc();
        let err = match failure {
            Failure::Refused(err) => {
                dropped(&self.metrics, &by, &entry, &err.to_string());
                return;
            }
            Failure::Retry(err) => err,
        };
        tracing::warn!(
            kind = %entry.kind, target = %entry.target, by = %by.describe(), error = %err,
            "audit entry not recorded yet; retrying in the background"
        );
        self.metrics.pending.inc();
        if let Err(
            mpsc::error::TrySendError::Full(pending) | mpsc::error::TrySendError::Closed(pending),
        ) = self.queue.try_send(Pending { by, entry })
        {
            self.metrics.pending.dec();
            dropped(
                &self.metrics,
                &pending.by,
                &pending.entry,
                "the retry queue is full",
            );
        }
    }
}

fn dropped(metrics: &Metrics, by: &By, entry: &Entry, why: &str) {
    metrics.outcome("dropped");
    tracing::error!(
        id = %entry.id, at = %rfc3339(entry.at_ms), kind = %entry.kind, target = %entry.target,
        by = %by.describe(), reason = %why,
        "AUDIT ENTRY LOST: a write succeeded but is not in the audit log"
    );
}

/// What the retry task holds; whatever it still holds when the task ends
/// with the process is logged as lost, never dropped silently.
struct Backlog {
    queued: mpsc::Receiver<Pending>,
    current: Option<Pending>,
    metrics: Metrics,
}

impl Drop for Backlog {
    fn drop(&mut self) {
        let why = "the service stopped before auth-svc took it";
        if let Some(pending) = self.current.take() {
            dropped(&self.metrics, &pending.by, &pending.entry, why);
        }
        while let Ok(pending) = self.queued.try_recv() {
            dropped(&self.metrics, &pending.by, &pending.entry, why);
        }
    }
}

/// Writes queued entries in order, each until auth-svc takes or refuses it.
async fn retry(sink: Arc<dyn Sink>, queued: mpsc::Receiver<Pending>, metrics: Metrics) {
    let mut backlog = Backlog {
        queued,
        current: None,
        metrics,
    };
    let mut backoff = BACKOFF_FIRST;
    loop {
        if backlog.current.is_none() {
            backlog.current = backlog.queued.recv().await;
        }
        let Some(pending) = backlog.current.as_ref() else {
            return;
        };
        tokio::time::sleep(backoff).await;
        match sink.write(&pending.by, &pending.entry).await {
            Ok(()) => {
                tracing::info!(kind = %pending.entry.kind, target = %pending.entry.target, "audit entry recorded after retrying");
                backlog.metrics.outcome("recorded");
                backlog.metrics.pending.dec();
                backlog.current = None;
                backoff = BACKOFF_FIRST;
            }
            Err(failure) => {
                backlog.metrics.failures.inc();
                if let Failure::Refused(err) = &failure {
                    dropped(
                        &backlog.metrics,
                        &pending.by,
                        &pending.entry,
                        &err.to_string(),
                    );
                    backlog.metrics.pending.dec();
                    backlog.current = None;
                    backoff = BACKOFF_FIRST;
                } else {
                    tracing::warn!(kind = %pending.entry.kind, target = %pending.entry.target,
                        error = %failure.error(), retry_in = ?backoff, "audit entry still not recorded");
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;

    #[test]
    fn a_change_keeps_only_what_differs() {
        let entry = Entry::new(kind::PAIR_UPDATED, "p1").change(
            json!({"country": "GB", "operator": "Vodafone", "is_high_priority": false,
                   "rule": {"threshold": 0.5, "window": 300}}),
            json!({"country": "GB", "operator": "O2", "is_high_priority": false,
                   "rule": {"threshold": 0.6, "window": 300}, "new": 1}),
        );
        assert_eq!(
            entry.before,
            json!({"operator": "Vodafone", "rule": {"threshold": 0.5}, "new": null})
                .as_object()
                .cloned()
        );
        assert_eq!(
            entry.after,
            json!({"operator": "O2", "rule": {"threshold": 0.6}, "new": 1})
                .as_object()
                .cloned()
        );
        let same = Entry::new(kind::PAIR_UPDATED, "p1").change(json!({"a": 1}), json!({"a": 1}));
        assert!(same.changes_nothing());
    }

    #[test]
    fn secrets_are_redacted_by_name_and_by_look() {
        let entry = Entry::new(kind::API_KEY_CREATED, "k1").after(json!({
            "name": "checker", "prefix": "smk_0193abcd", "key": "x", "password_hash": "$argon2",
            "refresh_token": "r", "api_key": "y", "idempotency_key": "keep",
            "note": "smk_0193abcd_s3cret", "nested": [{"invitation": "inv_abc_def"}],
            "jwt": "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln",
        }));
        let after = Value::Object(entry.after.unwrap_or_default());
        assert_eq!(after["name"], "checker");
        assert_eq!(after["prefix"], "smk_0193abcd");
        assert_eq!(after["idempotency_key"], "keep");
        for field in [
            "key",
            "password_hash",
            "refresh_token",
            "api_key",
            "note",
            "jwt",
        ] {
            assert_eq!(after[field], REDACTED, "{field}");
        }
        assert_eq!(after["nested"][0]["invitation"], REDACTED);
    }

    #[test]
    fn entries_travel_as_rfc3339_and_json_text() {
        let mut entry = Entry::new(kind::PAIR_DELETED, "p9").before(json!({"country": "GB"}));
        entry.at_ms = 1_700_000_000_123;
        let request = entry.to_request();
        assert_eq!(request.at, "2023-11-14T22:13:20.123Z");
        assert_eq!(request.before, r#"{"country":"GB"}"#);
        assert_eq!(request.after, "");
        assert_eq!(request.kind, "pair.deleted");
        assert!(uuid::Uuid::parse_str(&request.id).is_ok());
    }

    /// Fails its first `fail` writes as an outage, then records.
    struct Flaky {
        fail: Mutex<u32>,
        written: Mutex<Vec<String>>,
    }

    impl Sink for Flaky {
        fn write<'a>(&'a self, _by: &'a By, entry: &'a Entry) -> Attempt<'a> {
            Box::pin(async move {
                let mut fail = self
                    .fail
                    .lock()
                    .map_err(|_| Failure::Refused(ApiError::internal("poisoned")))?;
                if *fail > 0 {
                    *fail -= 1;
                    return Err(Failure::Retry(ApiError::new(
                        ErrorCode::Unavailable,
                        "down",
                    )));
                }
                if let Ok(mut written) = self.written.lock() {
                    written.push(entry.id.clone());
                }
                Ok(())
            })
        }
    }

    #[tokio::test]
    async fn an_entry_met_by_an_outage_is_retried_until_recorded() {
        // The inline attempt and the first retry fail; the second records.
        let sink = Arc::new(Flaky {
            fail: Mutex::new(2),
            written: Mutex::new(Vec::new()),
        });
        let recorder = Recorder::new(sink.clone());
        let entry = Entry::new(kind::PAIR_CREATED, "p1");
        recorder.record_service(entry.clone()).await;
        assert_eq!(recorder.metrics.pending.get(), 1);
        for _ in 0..100 {
            if recorder.metrics.pending.get() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(recorder.metrics.pending.get(), 0);
        assert_eq!(*sink.written.lock().unwrap(), vec![entry.id]);
        assert_eq!(recorder.metrics.failures.get(), 2);
    }
}
