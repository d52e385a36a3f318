//! Sessions in MongoDB. Each session is one document that also carries its
//! audit trail and its lifecycle events waiting for the broker, so a state
//! change, its audit record and its event are written in one atomic update
//! (single-document atomicity needs no multi-document transactions).
//!
//! One active session per pair is held by a lock document per pair (its
//! `_id` is the pair id) naming the session. A lock whose session has ended
//! is stale and taken over, and so is one whose session never came to be or
//! never restarted once [`LOCK_GRACE_MS`] old, so a crash between the two
//! writes heals itself. A pair's deletion holds the same lock for that long
//! (see [`Store::retire_pair`]).

use futures::TryStreamExt;
use mongodb::{
    Client, Collection, IndexModel,
    bson::{self, DateTime, Document, doc},
    options::ReturnDocument,
};
use serde::{Deserialize, Serialize};
use smsops_common::auth::Quota;
use smsops_common::mongo::StoreError;

pub const STARTING: &str = "starting";
pub const RUNNING: &str = "running";
/// Shown for a running session that waits (see [`SessionDoc::paused`]);
/// never stored as a state.
pub const PAUSED: &str = "paused";
pub const STOPPING: &str = "stopping";
pub const STOPPED: &str = "stopped";
pub const FAILED: &str = "failed";
/// The states in which a session holds its pair.
pub const ACTIVE: [&str; 3] = [STARTING, RUNNING, STOPPING];

/// What taking a pair's lock came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairLock {
    Taken,
    /// An active session holds it: its id and state (the id is empty when
    /// another caller won a race for the lock and its session is not known).
    Active(String, String),
    /// A deletion of the pair holds it.
    Retiring,
}

/// Why a pair's lock is taken: it decides how long the lock holds with no
/// active session behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockFor {
    /// A new session, not inserted yet.
    Create,
    /// A stopped or failed session, about to start again.
    Restart,
    /// The pair's deletion: no session may start on it meanwhile.
    Delete,
}

impl LockFor {
    fn as_str(self) -> &'static str {
        match self {
            LockFor::Create => "create",
            LockFor::Restart => "restart",
            LockFor::Delete => "delete",
        }
    }

    fn parse(raw: &str) -> Self {
        match raw {
            "restart" => LockFor::Restart,
            "delete" => LockFor::Delete,
            _ => LockFor::Create,
        }
    }

    /// Whether a lock held for `self`, `young` (under [`LOCK_GRACE_MS`]) or
    /// not, whose session is in `state` (None: there is no such session),
    /// keeps a lock for `claim` off the pair: the refusal (an `Active` with
    /// no session id yet), or None when the lock is stale and is taken over.
    fn holds_off(self, claim: LockFor, young: bool, state: Option<&str>) -> Option<PairLock> {
        let in_use = |state: &str| Some(PairLock::Active(String::new(), state.to_string()));
        match (self, state) {
            // A second delete of the same pair may take the lock over.
            (LockFor::Delete, _) if young && claim != LockFor::Delete => Some(PairLock::Retiring),
            (LockFor::Delete, _) => None,
            (_, Some(state)) if ACTIVE.contains(&state) => in_use(state),
            // A restart looks the pair up before its session turns
            // starting; a session that merely ended (its unlock not done
            // yet, or lost) frees the pair at once.
            (LockFor::Restart, Some(_)) if young => in_use(STARTING),
            (_, Some(_)) => None,
            // Its session is being created.
            (_, None) if young => in_use(STARTING),
            (_, None) => None,
        }
    }
}

/// Most audit records a session keeps; the oldest go first.
const AUDIT_KEPT: i32 = 1000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub pair_id: String,
    pub country: String,
    pub operator: String,
    pub is_high_priority: bool,
    pub plan: PlanDoc,
    pub state: String,
    pub reason: String,
    pub counters: CountersDoc,
    /// Every message below this number has been answered by sms-svc.
    pub next_seq: i64,
    pub last_error: String,
    /// Why a running session waits, not sending: an outage of what it
    /// sends through, or a quota. Empty while it sends; sessions from
    /// before pausing existed have none.
    #[serde(default)]
    pub paused: String,
    pub started_at: Option<DateTime>,
    pub stopped_at: Option<DateTime>,
    pub started_by: String,
    pub stopped_by: String,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime>,
    /// Bumped by every restart: a runner of an older generation has lost
    /// the session even if its replica still holds the lease.
    pub generation: i64,
    /// Set with `stopping` when the stop is the first half of a restart.
    pub restart_requested: bool,
    /// Left out of reads that do not need it, hence the defaults.
    #[serde(default)]
    pub audit: Vec<AuditDoc>,
    #[serde(default)]
    pub outbox: Vec<EventDoc>,
    pub has_events: bool,
    /// The starter's quota when it started the session: what its messages
    /// are charged against (sessions from before quotas have none).
    #[serde(default)]
    pub quota: Quota,
    /// The W3C trace context of the request that started it: each batch
    /// of its sends is a trace of its own, linked to that one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanDoc {
    pub rate_per_minute: f64,
    pub numbers: Vec<String>,
    pub range_first: Option<String>,
    pub range_count: i64,
    pub template: String,
    pub limit: i64,
    pub stop_at: Option<DateTime>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CountersDoc {
    pub submitted: i64,
    pub accepted: i64,
    pub failed: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditDoc {
    pub action: String,
    pub at: DateTime,
    pub by: String,
    pub by_email: String,
    pub reason: String,
    pub forced: bool,
}

/// A lifecycle event waiting to be published.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventDoc {
    pub event_id: String,
    pub routing_key: String,
    pub traceparent: String,
    pub payload: String,
}

/// A runner's progress, saved with every lease renewal.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub next_seq: i64,
    pub counters: CountersDoc,
    pub last_error: String,
    pub paused: String,
}

/// How a run ends.
#[derive(Debug, Clone)]
pub struct Ending {
    pub state: &'static str,
    pub reason: String,
    pub by: String,
    pub audit: Option<AuditDoc>,
    pub event: EventDoc,
}

/// A lock younger than this whose session is not active is in use (a
/// session being created or restarted, a pair being deleted), not stale.
const LOCK_GRACE_MS: i64 = 30_000;

/// The one document of the relay lease collection.
const RELAY_LEASE: &str = "event_relay";

#[derive(Clone)]
pub struct Store {
    sessions: Collection<SessionDoc>,
    locks: Collection<Document>,
    relay_lease: Collection<Document>,
}

impl Store {
    /// Opens the collection and creates its indexes (idempotent).
    pub async fn open(
        client: &Client,
        database: &str,
        collection: &str,
    ) -> Result<Self, StoreError> {
        let sessions = client.database(database).collection(collection);
        let locks = client
            .database(database)
            .collection(&format!("{collection}_pair_locks"));
        let indexes = [
            IndexModel::builder()
                .keys(doc! { "state": 1, "country": 1 })
                .build(),
            IndexModel::builder().keys(doc! { "has_events": 1 }).build(),
        ];
        sessions.create_indexes(indexes).await?;
        let relay_lease = client
            .database(database)
            .collection(&format!("{collection}_relay_lease"));
        Ok(Self {
            sessions,
            locks,
            relay_lease,
        })
    }

    /// Takes the event relay's lease for `owner` until `until`, or renews
    /// it: false while another replica holds it. The lease goes by each
    /// replica's clock; skewed clocks at worst let two relay for a moment,
    /// which repeats a few events under their own ids.
    pub async fn hold_relay_lease(&self, owner: &str, until: DateTime) -> Result<bool, StoreError> {
        let mine_or_free = doc! {
            "_id": RELAY_LEASE,
            "$or": [ { "owner": owner }, { "until": { "$lt": DateTime::now() } } ],
        };
        let update = doc! { "$set": { "owner": owner, "until": until } };
        // Held by another, the filter matches nothing and the upsert
        // collides with the existing document.
        match self
            .relay_lease
            .update_one(mine_or_free, update)
            .upsert(true)
            .await
            .map_err(StoreError::classify)
        {
            Ok(_) => Ok(true),
            Err(StoreError::Duplicate) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Gives the relay lease up, if `owner` holds it, so another replica
    /// need not wait for it to expire.
    pub async fn release_relay_lease(&self, owner: &str) -> Result<(), StoreError> {
        self.relay_lease
            .delete_one(doc! { "_id": RELAY_LEASE, "owner": owner })
            .await?;
        Ok(())
    }

    /// Takes the pair for `session_id`, unless an active session or a
    /// deletion holds it.
    pub async fn lock_pair(
        &self,
        pair_id: &str,
        session_id: &str,
        purpose: LockFor,
    ) -> Result<PairLock, StoreError> {
        self.take_pair(pair_id, session_id, purpose).await
    }

    /// Takes the pair for its deletion, unless an active session holds
    /// it: then that session is answered. The lock names no session, so it
    /// turns stale after [`LOCK_GRACE_MS`] and needs no release, whether
    /// the delete went through or not.
    pub async fn retire_pair(&self, pair_id: &str) -> Result<PairLock, StoreError> {
        let holder = format!("retire:{}", uuid::Uuid::now_v7());
        let taken = self.take_pair(pair_id, &holder, LockFor::Delete).await?;
        if taken != PairLock::Taken {
            return Ok(taken);
        }
        // Every active session holds its pair's lock; this only makes sure,
        // so that a lock lost to a bug cannot let a pair go from under a
        // running session.
        let active = self
            .sessions
            .find_one(doc! { "pair_id": pair_id, "state": { "$in": ACTIVE.to_vec() } })
            .projection(doc! { "audit": 0, "outbox": 0 })
            .await?;
        if let Some(session) = active {
            self.unlock_pair(pair_id, &holder).await?;
            return Ok(PairLock::Active(session.id, session.state));
        }
        Ok(PairLock::Taken)
    }

    async fn take_pair(
        &self,
        pair_id: &str,
        holder: &str,
        purpose: LockFor,
    ) -> Result<PairLock, StoreError> {
        let lock = || doc! { "_id": pair_id, "session_id": holder, "for": purpose.as_str(), "at": DateTime::now() };
        match self
            .locks
            .insert_one(lock())
            .await
            .map_err(StoreError::classify)
        {
            Ok(_) => return Ok(PairLock::Taken),
            Err(StoreError::Duplicate) => {}
            Err(err) => return Err(err),
        }
        let Some(held) = self.locks.find_one(doc! { "_id": pair_id }).await? else {
            // Released meanwhile: try once more.
            return Ok(match self.locks.insert_one(lock()).await {
                Ok(_) => PairLock::Taken,
                Err(_) => PairLock::Active(String::new(), STARTING.into()),
            });
        };
        let current = held.get_str("session_id").unwrap_or_default().to_string();
        let young = held
            .get_datetime("at")
            .map(|at| DateTime::now().timestamp_millis() - at.timestamp_millis() < LOCK_GRACE_MS)
            .unwrap_or(false);
        // Locks written before purposes were recorded were all creations.
        let held_for = LockFor::parse(held.get_str("for").unwrap_or_default());
        let state = match held_for {
            LockFor::Delete => None,
            _ => self.get(&current).await?.map(|session| session.state),
        };
        if let Some(refusal) = held_for.holds_off(purpose, young, state.as_deref()) {
            return Ok(match refusal {
                PairLock::Active(_, state) => PairLock::Active(current, state),
                other => other,
            });
        }
        let taken = self
            .locks
            .find_one_and_update(
                doc! { "_id": pair_id, "session_id": &current },
                doc! { "$set": { "session_id": holder, "for": purpose.as_str(), "at": DateTime::now() } },
            )
            .await?;
        Ok(match taken {
            Some(_) => PairLock::Taken,
            // Another caller took it first: a session, most likely.
            None => PairLock::Active(String::new(), STARTING.into()),
        })
    }

    /// Frees the pair, if `session_id` still holds it.
    pub async fn unlock_pair(&self, pair_id: &str, session_id: &str) -> Result<(), StoreError> {
        self.locks
            .delete_one(doc! { "_id": pair_id, "session_id": session_id })
            .await?;
        Ok(())
    }

    pub async fn insert(&self, session: &SessionDoc) -> Result<(), StoreError> {
        self.sessions
            .insert_one(session)
            .await
            .map_err(StoreError::classify)?;
        Ok(())
    }

    pub async fn get(&self, id: &str) -> Result<Option<SessionDoc>, StoreError> {
        Ok(self.sessions.find_one(doc! { "_id": id }).await?)
    }

    /// Sessions in id order (UUIDv7, so creation order), after `after`.
    pub async fn list(
        &self,
        filter: Document,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SessionDoc>, StoreError> {
        let mut filter = filter;
        if let Some(after) = after {
            filter.insert("_id", doc! { "$gt": after });
        }
        let cursor = self
            .sessions
            .find(filter)
            .sort(doc! { "_id": 1 })
            .projection(doc! { "outbox": 0 })
            .limit(limit)
            .await?;
        Ok(cursor.try_collect().await?)
    }

    /// Every active session's country and asked-for rate, for sharing
    /// country budgets.
    pub async fn active_rates(&self) -> Result<Vec<(String, String, f64)>, StoreError> {
        let filter = doc! { "state": { "$in": [STARTING, RUNNING] } };
        let cursor = self
            .sessions
            .clone_with_type::<Document>()
            .find(filter)
            .projection(doc! { "country": 1, "plan.rate_per_minute": 1 })
            .await?;
        let docs: Vec<Document> = cursor.try_collect().await?;
        Ok(docs
            .iter()
            .filter_map(|d| {
                let rate = d
                    .get_document("plan")
                    .ok()?
                    .get_f64("rate_per_minute")
                    .ok()?;
                Some((
                    d.get_str("_id").ok()?.to_string(),
                    d.get_str("country").ok()?.to_string(),
                    rate,
                ))
            })
            .collect())
    }

    /// Moves an active session to `stopping`, recording who asked and why.
    pub async fn request_stop(
        &self,
        id: &str,
        audit: AuditDoc,
        restart: bool,
    ) -> Result<Option<SessionDoc>, StoreError> {
        let filter = doc! { "_id": id, "state": { "$in": [STARTING, RUNNING, STOPPING] } };
        let mut set = doc! {
            "state": STOPPING,
            "updated_at": DateTime::now(),
        };
        if restart {
            set.insert("restart_requested", true);
        } else {
            set.insert("restart_requested", false);
            set.insert("stopped_by", audit.by.clone());
        }
        let update = doc! { "$set": set, "$push": push_audit(&audit)? };
        self.update(filter, update).await
    }

    /// Starts a stopped or failed session again where it left off; the
    /// caller holds the pair's lock.
    pub async fn restart_idle(
        &self,
        id: &str,
        owner: &str,
        lease_until: DateTime,
        audit: AuditDoc,
        event: EventDoc,
    ) -> Result<Option<SessionDoc>, StoreError> {
        let filter = doc! { "_id": id, "state": { "$in": [STOPPED, FAILED] } };
        let update = doc! {
            "$set": {
                "state": STARTING,
                "reason": "",
                "restart_requested": false,
                // started_by stays: the session is still its creator's to
                // stop and restart (see core::access); the audit names who
                // restarted it.
                "started_at": DateTime::now(),
                "stopped_at": bson::Bson::Null,
                "lease_owner": owner,
                "lease_until": lease_until,
                "updated_at": DateTime::now(),
                "has_events": true,
            },
            "$inc": { "generation": 1 },
            "$push": {
                "audit": audit_each(&audit)?,
                "outbox": bson::to_bson(&event).map_err(internal)?,
            },
        };
        self.sessions
            .find_one_and_update(filter, update)
            .return_document(ReturnDocument::After)
            .await
            .map_err(StoreError::classify)
    }

    /// Takes one active session no live replica holds.
    pub async fn claim(
        &self,
        owner: &str,
        lease_until: DateTime,
    ) -> Result<Option<SessionDoc>, StoreError> {
        let filter = doc! {
            "state": { "$in": [STARTING, RUNNING, STOPPING] },
            "$or": [
                { "lease_owner": bson::Bson::Null },
                { "lease_until": { "$lt": DateTime::now() } },
            ],
        };
        let update = doc! { "$set": { "lease_owner": owner, "lease_until": lease_until } };
        self.update(filter, update).await
    }

    /// Renews the lease and saves progress; `None` if the lease is lost.
    pub async fn renew(
        &self,
        id: &str,
        owner: &str,
        generation: i64,
        lease_until: DateTime,
        progress: &Progress,
    ) -> Result<Option<SessionDoc>, StoreError> {
        let filter = doc! { "_id": id, "lease_owner": owner, "generation": generation };
        let mut set = progress_doc(progress)?;
        set.insert("lease_until", lease_until);
        self.update(filter, doc! { "$set": set }).await
    }

    /// `starting` → `running`, by the lease holder.
    pub async fn mark_running(
        &self,
        id: &str,
        owner: &str,
        generation: i64,
        audit: Option<AuditDoc>,
    ) -> Result<Option<SessionDoc>, StoreError> {
        let filter = doc! {
            "_id": id, "lease_owner": owner, "generation": generation,
            "state": { "$in": [STARTING, RUNNING] },
        };
        let mut update = doc! { "$set": { "state": RUNNING, "updated_at": DateTime::now() } };
        if let Some(audit) = audit {
            update.insert("$push", push_audit(&audit)?);
        }
        self.update(filter, update).await
    }

    /// Ends a run as `stopped` or `failed` and frees the pair.
    pub async fn finish(
        &self,
        id: &str,
        owner: &str,
        generation: i64,
        progress: &Progress,
        ending: Ending,
    ) -> Result<Option<SessionDoc>, StoreError> {
        let filter = doc! { "_id": id, "lease_owner": owner, "generation": generation };
        let mut set = progress_doc(progress)?;
        set.insert("state", ending.state);
        set.insert("reason", ending.reason);
        set.insert("restart_requested", false);
        set.insert("stopped_at", DateTime::now());
        set.insert("lease_owner", bson::Bson::Null);
        set.insert("lease_until", bson::Bson::Null);
        set.insert("has_events", true);
        let mut push = doc! { "outbox": bson::to_bson(&ending.event).map_err(internal)? };
        if let Some(audit) = ending.audit {
            push.insert("audit", audit_each(&audit)?);
        }
        if ending.state == FAILED || !ending.by.is_empty() {
            set.insert("stopped_by", ending.by);
        }
        self.update(filter, doc! { "$set": set, "$push": push })
            .await
    }

    /// The second half of a restart: the holder stopped sending, and the
    /// session starts again as a new generation, still held by `owner`.
    pub async fn begin_again(
        &self,
        id: &str,
        owner: &str,
        generation: i64,
        progress: &Progress,
        event: EventDoc,
    ) -> Result<Option<SessionDoc>, StoreError> {
        let filter = doc! { "_id": id, "lease_owner": owner, "generation": generation };
        let mut set = progress_doc(progress)?;
        set.insert("state", STARTING);
        set.insert("reason", "");
        set.insert("restart_requested", false);
        set.insert("has_events", true);
        let update = doc! {
            "$set": set,
            "$inc": { "generation": 1 },
            "$push": { "outbox": bson::to_bson(&event).map_err(internal)? },
        };
        self.update(filter, update).await
    }

    /// Lets other replicas take the session at once (a clean shutdown).
    pub async fn release(&self, id: &str, owner: &str) -> Result<(), StoreError> {
        self.sessions
            .update_one(
                doc! { "_id": id, "lease_owner": owner },
                doc! { "$set": { "lease_owner": bson::Bson::Null, "lease_until": bson::Bson::Null } },
            )
            .await?;
        Ok(())
    }

    /// Sessions with lifecycle events waiting for the broker.
    pub async fn with_events(&self, limit: i64) -> Result<Vec<SessionDoc>, StoreError> {
        let cursor = self
            .sessions
            .find(doc! { "has_events": true })
            .projection(doc! { "audit": 0 })
            .limit(limit)
            .await?;
        Ok(cursor.try_collect().await?)
    }

    /// Forgets events the broker has confirmed.
    pub async fn events_done(&self, id: &str, event_ids: &[String]) -> Result<(), StoreError> {
        self.sessions
            .update_one(
                doc! { "_id": id },
                doc! { "$pull": { "outbox": { "event_id": { "$in": event_ids } } } },
            )
            .await?;
        // A change can have pushed a new event since: clear the flag only if none is left.
        self.sessions
            .update_one(
                doc! { "_id": id, "outbox": { "$size": 0 } },
                doc! { "$set": { "has_events": false } },
            )
            .await?;
        Ok(())
    }

    async fn update(
        &self,
        filter: Document,
        update: Document,
    ) -> Result<Option<SessionDoc>, StoreError> {
        self.sessions
            .find_one_and_update(filter, update)
            .return_document(ReturnDocument::After)
            .await
            .map_err(StoreError::classify)
    }
}

fn progress_doc(progress: &Progress) -> Result<Document, StoreError> {
    Ok(doc! {
        "next_seq": progress.next_seq,
        "counters": bson::to_bson(&progress.counters).map_err(internal)?,
        "last_error": progress.last_error.clone(),
        "paused": progress.paused.clone(),
        "updated_at": DateTime::now(),
    })
}

fn push_audit(audit: &AuditDoc) -> Result<Document, StoreError> {
    Ok(doc! { "audit": audit_each(audit)? })
}

/// Appends one record, keeping the newest [`AUDIT_KEPT`].
fn audit_each(audit: &AuditDoc) -> Result<Document, StoreError> {
    Ok(doc! {
        "$each": [bson::to_bson(audit).map_err(internal)?],
        "$slice": -AUDIT_KEPT,
    })
}

fn internal(err: bson::ser::Error) -> StoreError {
    StoreError::Mongo(mongodb::error::Error::custom(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(held: LockFor, claim: LockFor, young: bool, state: Option<&str>) -> &'static str {
        match held.holds_off(claim, young, state) {
            None => "free",
            Some(PairLock::Retiring) => "retiring",
            Some(PairLock::Active(..)) => "in use",
            Some(PairLock::Taken) => "taken?",
        }
    }

    #[test]
    fn an_active_session_holds_its_pair_against_everything() {
        for held in [LockFor::Create, LockFor::Restart] {
            for claim in [LockFor::Create, LockFor::Restart, LockFor::Delete] {
                for state in ACTIVE {
                    for young in [true, false] {
                        assert_eq!(blocked(held, claim, young, Some(state)), "in use");
                    }
                }
            }
        }
    }

    #[test]
    fn a_lock_without_an_active_session_holds_only_while_young_and_in_use() {
        for claim in [LockFor::Create, LockFor::Restart, LockFor::Delete] {
            // A session being inserted, or being restarted.
            assert_eq!(blocked(LockFor::Create, claim, true, None), "in use");
            assert_eq!(
                blocked(LockFor::Restart, claim, true, Some(STOPPED)),
                "in use"
            );
            // A session that ended, whose unlock is late or lost: at once.
            for state in [STOPPED, FAILED] {
                assert_eq!(blocked(LockFor::Create, claim, true, Some(state)), "free");
                assert_eq!(blocked(LockFor::Restart, claim, false, Some(state)), "free");
            }
            // A crash between the lock and the session.
            assert_eq!(blocked(LockFor::Create, claim, false, None), "free");
            assert_eq!(blocked(LockFor::Restart, claim, false, None), "free");
        }
    }

    #[test]
    fn a_deletion_keeps_sessions_off_for_the_grace_period() {
        for claim in [LockFor::Create, LockFor::Restart] {
            assert_eq!(blocked(LockFor::Delete, claim, true, None), "retiring");
            assert_eq!(blocked(LockFor::Delete, claim, false, None), "free");
        }
        assert_eq!(
            blocked(LockFor::Delete, LockFor::Delete, true, None),
            "free"
        );
        for purpose in [LockFor::Create, LockFor::Restart, LockFor::Delete] {
            assert_eq!(LockFor::parse(purpose.as_str()), purpose);
        }
        // Locks from before purposes were written down.
        assert_eq!(LockFor::parse(""), LockFor::Create);
    }
}
