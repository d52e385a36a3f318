//! The audit log: records of every write a person (or process-svc on its
//! own) made, taken from the services that made them and from auth-svc's
//! own writes, and listed for admins.
//!
//! A record's actor always comes from a token auth-svc signed: the writer's
//! own, forwarded by the service that made the write (`RecordAudit`), or
//! the caller of auth-svc's own write. Nothing in a request names one.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use mongodb::bson::DateTime;
use serde_json::{Value, json};
use smsops_common::{
    audit::{self, Attempt, By, Entry, Failure, MAX_FIELDS_BYTES, Sink},
    auth::{Caller, Claims, Role},
    changes::Changes,
    mongo::StoreError,
};
use smsops_proto::auth::v1::RecordAuditRequest;

use super::{AuthCore, AuthError, require_admin};
use crate::audit_store::{AuditDoc, AuditFilter, AuditStore};

const DEFAULT_PAGE_SIZE: u32 = 50;
const MAX_PAGE_SIZE: u32 = 200;
/// How long after its token expired an entry may still be recorded with
/// it: writers retry entries that met an outage for about this long.
pub const TOKEN_GRACE_SECS: i64 = 24 * 3600;
/// Clock differences tolerated between a writer and auth-svc.
const SKEW_SECS: i64 = 60;

/// One record, as it is listed.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub id: String,
    pub at: String,
    pub actor_kind: String,
    pub actor_id: String,
    pub actor_email: String,
    pub actor_role: Role,
    pub kind: String,
    pub target: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl From<AuditDoc> for AuditRecord {
    fn from(doc: AuditDoc) -> Self {
        Self {
            id: doc.id,
            at: doc.at.try_to_rfc3339_string().unwrap_or_default(),
            actor_kind: doc.actor_kind,
            actor_id: doc.actor_id,
            actor_email: doc.actor_email,
            actor_role: doc.actor_role,
            kind: doc.kind,
            target: doc.target,
            before: doc.before,
            after: doc.after,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor: String,
    pub kind: String,
    pub since: String,
    pub page_size: u32,
    pub page_token: String,
}

/// Who wrote: the claims of a verified token.
struct Actor<'a> {
    id: &'a str,
    email: &'a str,
    role: Role,
}

/// The families of record each role may write. A person's token can only
/// record in their own name, and only the kinds of write their role can
/// make: an operator's leaked token cannot fill the log with user changes.
fn may_record(role: Role, family: &str) -> bool {
    match role {
        Role::Admin => true,
        Role::Operator => family == "session",
        // notify-svc records the route switches its delivery-health rule makes.
        Role::Service => family == "session" || family == "route",
        Role::Viewer | Role::Ingest => false,
    }
}

/// Whether a write at `at` (unix seconds) can be recorded with a token
/// issued at `iat` that expires at `exp`: a person's write happened while
/// their token was good. The service account signs in again when its
/// token lapses, so a write it retried after an outage comes with a newer
/// token than the write: any time in the last day will do for it.
fn at_allowed(role: Role, iat: i64, exp: i64, at: i64, now: i64) -> bool {
    let earliest = match role {
        Role::Service => now - TOKEN_GRACE_SECS,
        _ => iat - SKEW_SECS,
    };
    earliest <= at && at <= exp.min(now) + SKEW_SECS
}

fn bad(message: impl Into<String>) -> AuthError {
    AuthError::InvalidArgument(message.into())
}

fn check_kind(kind: &str) -> Result<&str, AuthError> {
    let part = |text: &str| {
        (1..=32).contains(&text.len())
            && text.starts_with(|c: char| c.is_ascii_lowercase())
            && text.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    };
    match kind.split_once('.') {
        Some((family, action)) if part(family) && part(action) => Ok(family),
        _ => Err(bad(
            "kind must read <family>.<action> in lower case, like pair.deleted",
        )),
    }
}

fn check_id(id: &str) -> Result<(), AuthError> {
    let fine = (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':'));
    if fine {
        Ok(())
    } else {
        Err(bad("id must be 1 to 64 letters, digits, '-', '_' or ':'"))
    }
}

/// `before`/`after`: empty, or a JSON object of at most 4 KiB, stored
/// with anything that looks like a secret redacted.
fn check_fields(name: &str, text: &str) -> Result<Option<String>, AuthError> {
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_FIELDS_BYTES {
        return Err(bad(format!(
            "{name} must be at most {MAX_FIELDS_BYTES} bytes"
        )));
    }
    let mut value: Value =
        serde_json::from_str(text).map_err(|_| bad(format!("{name} must be a JSON object")))?;
    if !value.is_object() {
        return Err(bad(format!("{name} must be a JSON object")));
    }
    audit::scrub(&mut value);
    Ok(Some(value.to_string()))
}

fn doc_of(
    actor: Actor<'_>,
    entry: &RecordAuditRequest,
    at: DateTime,
) -> Result<AuditDoc, AuthError> {
    check_id(&entry.id)?;
    let family = check_kind(&entry.kind)?.to_string();
    let target = entry.target.trim();
    if target.is_empty() || target.chars().count() > 200 || target.chars().any(char::is_control) {
        return Err(bad("target must be 1 to 200 printable characters"));
    }
    Ok(AuditDoc {
        order: AuditDoc::order_of(at, &entry.id),
        id: entry.id.clone(),
        at,
        recorded_at: DateTime::now(),
        actor_kind: if actor.role == Role::Service {
            "service"
        } else {
            "user"
        }
        .into(),
        actor_id: actor.id.to_string(),
        actor_email: actor.email.to_lowercase(),
        actor_role: actor.role,
        kind: entry.kind.clone(),
        family,
        target: target.to_string(),
        before: check_fields("before", &entry.before)?,
        after: check_fields("after", &entry.after)?,
    })
}

/// Where audit records go: the store, and the live notices of the
/// directory changes among them.
#[derive(Clone)]
pub struct AuditLog {
    pub store: AuditStore,
    pub changes: Changes,
}

/// The families whose records are directory changes an open dashboard
/// lists (sessions and alerts have events of their own).
const CHANGE_FAMILIES: [&str; 5] = ["pair", "user", "invitation", "api_key", "alert_rules"];

/// The live notice of a record: what changed, on what, when; nothing of
/// its fields or its actor, since viewers get the pair notices too.
fn notice(doc: &AuditDoc) -> Value {
    json!({
        "event_id": doc.id,
        "type": doc.kind,
        "occurred_at": doc.at.try_to_rfc3339_string().unwrap_or_default(),
        "target": doc.target,
    })
}

/// Inserts a record; a known id is a retry, and records nothing new.
async fn insert(log: &AuditLog, doc: &AuditDoc) -> Result<bool, AuthError> {
    match log.store.insert(doc).await {
        Ok(()) => {
            if CHANGE_FAMILIES.contains(&doc.family.as_str()) {
                log.changes.notify(&doc.id, &doc.kind, &notice(doc));
            }
            Ok(false)
        }
        Err(StoreError::Duplicate) => Ok(true),
        Err(err) => Err(err.into()),
    }
}

/// auth-svc's own writes go straight to its store, with the caller the
/// gRPC layer verified as the actor.
pub struct LocalSink {
    pub log: AuditLog,
}

impl Sink for LocalSink {
    fn write<'a>(&'a self, by: &'a By, entry: &'a Entry) -> Attempt<'a> {
        Box::pin(async move {
            let By::Caller(caller) = by else {
                return Err(Failure::Refused(smsops_common::ApiError::internal(
                    "auth-svc makes no writes on its own",
                )));
            };
            let actor = Actor {
                id: &caller.user_id,
                email: &caller.email,
                role: caller.role,
            };
            let doc = doc_of(
                actor,
                &entry.to_request(),
                DateTime::from_millis(entry.at_ms),
            )
            .map_err(|err| Failure::Refused(err.into()))?;
            insert(&self.log, &doc)
                .await
                .map(|_| ())
                .map_err(|err| Failure::of(err.into()))
        })
    }
}

impl AuthCore {
    /// Records an entry from the service that made the write, in the name
    /// of the token it came with. Returns whether it was known already.
    pub async fn record_audit(
        &self,
        claims: &Claims,
        entry: &RecordAuditRequest,
    ) -> Result<bool, AuthError> {
        let now = DateTime::now().timestamp_millis() / 1000;
        if claims.exp + TOKEN_GRACE_SECS < now {
            return Err(AuthError::Unauthorized(
                smsops_common::ApiError::unauthorized("the token is too old to record with"),
            ));
        }
        let family = check_kind(&entry.kind)?;
        if !may_record(claims.role, family) {
            return Err(AuthError::Forbidden(format!(
                "a {} may not record {} entries",
                claims.role.as_str(),
                family
            )));
        }
        // When the write happened: while the token was good, not ahead of now.
        let at = if entry.at.is_empty() {
            DateTime::now()
        } else {
            DateTime::parse_rfc3339_str(&entry.at).map_err(|_| bad("at must be RFC 3339"))?
        };
        let secs = at.timestamp_millis() / 1000;
        if !at_allowed(claims.role, claims.iat, claims.exp, secs, now) {
            return Err(bad(
                "at must be within the token's lifetime and not ahead of now",
            ));
        }
        let actor = Actor {
            id: &claims.sub,
            email: &claims.email,
            role: claims.role,
        };
        let doc = doc_of(actor, entry, at)?;
        let duplicate = insert(&self.audit_log, &doc).await?;
        if !duplicate {
            tracing::debug!(kind = %doc.kind, target = %doc.target, by = %doc.actor_id, "audit recorded");
        }
        Ok(duplicate)
    }

    /// Records newest first, `page_size` at a time (admin).
    pub async fn list_audit(
        &self,
        caller: &Caller,
        query: AuditQuery,
    ) -> Result<(Vec<AuditRecord>, Option<String>), AuthError> {
        require_admin(caller)?;
        let size = match query.page_size {
            0 => DEFAULT_PAGE_SIZE,
            1..=MAX_PAGE_SIZE => query.page_size,
            _ => {
                return Err(bad(format!(
                    "page_size must be between 1 and {MAX_PAGE_SIZE}"
                )));
            }
        };
        let some = |text: &str| Some(text.trim().to_string()).filter(|t| !t.is_empty());
        let mut filter = AuditFilter {
            actor: some(&query.actor),
            ..AuditFilter::default()
        };
        if let Some(kind) = some(&query.kind) {
            if kind.contains('.') {
                check_kind(&kind)?;
                filter.kind = Some(kind);
            } else {
                check_kind(&format!("{kind}.x"))
                    .map_err(|_| bad("kind must be a kind (pair.deleted) or a family (pair)"))?;
                filter.family = Some(kind);
            }
        }
        if let Some(since) = some(&query.since) {
            filter.since = Some(
                DateTime::parse_rfc3339_str(&since)
                    .map_err(|_| bad("since must be an RFC 3339 time"))?,
            );
        }
        if let Some(token) = some(&query.page_token) {
            let order = URL_SAFE_NO_PAD
                .decode(&token)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .filter(|order| order.len() > 14 && order.as_bytes()[13] == b'-')
                .ok_or_else(|| bad("page_token is not valid"))?;
            filter.before_order = Some(order);
        }
        let mut docs = self
            .audit_log
            .store
            .list(filter, i64::from(size) + 1)
            .await?;
        let next = if docs.len() > size as usize {
            docs.truncate(size as usize);
            docs.last().map(|doc| URL_SAFE_NO_PAD.encode(&doc.order))
        } else {
            None
        };
        Ok((docs.into_iter().map(AuditRecord::from).collect(), next))
    }

    /// Records a write auth-svc made for `caller` (see [`audit::Recorder`]).
    pub(super) async fn audit(&self, caller: &Caller, entry: Entry) {
        self.audit.record(caller, entry).await;
    }

    /// The recorder of auth-svc's own writes, for its metrics.
    pub fn audit_recorder(&self) -> &audit::Recorder {
        &self.audit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_family_dot_action() {
        assert_eq!(check_kind("pair.deleted").ok(), Some("pair"));
        assert_eq!(check_kind("alert_rules.updated").ok(), Some("alert_rules"));
        for bad in [
            "pair",
            "Pair.deleted",
            "pair.",
            ".x",
            "a.b.c",
            "pair.del-eted",
            "",
        ] {
            assert!(check_kind(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_record_only_what_they_can_write() {
        assert!(may_record(Role::Admin, "user"));
        assert!(may_record(Role::Operator, "session"));
        assert!(may_record(Role::Service, "session"));
        assert!(!may_record(Role::Operator, "user"));
        assert!(!may_record(Role::Service, "pair"));
        assert!(may_record(Role::Service, "route"));
        assert!(!may_record(Role::Operator, "route"));
        assert!(!may_record(Role::Viewer, "session"));
        assert!(!may_record(Role::Ingest, "session"));
    }

    #[test]
    fn a_write_is_recorded_with_the_token_it_was_made_with() {
        let (iat, exp, now) = (1_000_000, 1_000_900, 1_005_000);
        // Within the token's life, even though it has lapsed since.
        assert!(at_allowed(Role::Admin, iat, exp, iat + 10, now));
        assert!(at_allowed(Role::Admin, iat, exp, exp + 30, now));
        // Not before it was issued, nor after it lapsed.
        assert!(!at_allowed(Role::Admin, iat, exp, iat - 120, now));
        assert!(!at_allowed(Role::Operator, iat, exp, exp + 120, now));
        // The service's newer token records what it did before signing in again.
        assert!(at_allowed(Role::Service, iat, exp, iat - 3600, iat + 10));
        assert!(!at_allowed(
            Role::Service,
            iat,
            exp,
            iat - 2 * TOKEN_GRACE_SECS,
            iat + 10
        ));
        // Never ahead of now.
        assert!(!at_allowed(Role::Service, iat, exp, iat + 500, iat + 10));
    }

    #[test]
    fn fields_are_json_objects_with_secrets_redacted() {
        assert_eq!(check_fields("after", "").ok(), Some(None));
        assert!(check_fields("after", "[1]").is_err());
        assert!(check_fields("after", "{").is_err());
        assert!(check_fields("after", &format!("{{\"a\":\"{}\"}}", "x".repeat(5000))).is_err());
        let stored = check_fields("after", r#"{"role":"admin","password":"hunter2"}"#)
            .ok()
            .flatten()
            .unwrap_or_default();
        assert!(
            stored.contains("admin") && !stored.contains("hunter2"),
            "{stored}"
        );
    }
}
