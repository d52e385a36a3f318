//! What sms-svc's logic needs kept and looked up, as traits: the MySQL
//! store implements them in production, and the unit tests implement them
//! in memory.

use std::{future::Future, time::Duration};

use chrono::{DateTime, Utc};
use smsops_common::{ApiError, ErrorCode, auth::Caller};

use super::{
    Applied, Change, Message, Origin, OutboxEvent, Pair, Status, StatusChange, Target,
    quota::{Granted, Window},
};

/// Why a repository could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// A message with this id or idempotency key is already kept.
    #[error("duplicate key")]
    Duplicate,
    /// Rolled back by a lock conflict with another writer; running it again
    /// as it was is safe.
    #[error("lock conflict")]
    Conflict,
    #[error("{0}")]
    Unavailable(String),
    /// The commit was sent and its answer lost with the connection: it may
    /// have landed.
    #[error("commit unanswered: {0}")]
    Unanswered(String),
    /// A stored value that does not read back (a status no version wrote).
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// Anything else; for operators, never shown to users.
    #[error("{0}")]
    Failed(String),
}

impl RepoError {
    pub fn code(&self) -> ErrorCode {
        match self {
            RepoError::Duplicate => ErrorCode::Conflict,
            RepoError::Conflict | RepoError::Unavailable(_) | RepoError::Unanswered(_) => {
                ErrorCode::Unavailable
            }
            RepoError::Corrupt(_) | RepoError::Failed(_) => ErrorCode::Internal,
        }
    }
}

impl From<RepoError> for ApiError {
    fn from(err: RepoError) -> Self {
        match err {
            RepoError::Duplicate => ApiError::new(ErrorCode::Conflict, "already exists"),
            RepoError::Conflict => ApiError::new(
                ErrorCode::Unavailable,
                "the message store is busy; try again",
            ),
            RepoError::Unavailable(message) => ApiError::new(ErrorCode::Unavailable, message),
            RepoError::Unanswered(_) => ApiError::new(
                ErrorCode::Unavailable,
                "the message store did not answer; try again with the same key",
            ),
            // The detail may quote SQL: logged, never shown.
            RepoError::Corrupt(detail) | RepoError::Failed(detail) => ApiError::internal(detail),
        }
    }
}

/// Filters for listing messages, newest first.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub pair_id: Option<String>,
    pub status: Option<Status>,
    pub session_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub before_id: Option<String>,
    pub limit: u32,
}

/// Messages, their history and the events that describe them. Every
/// change and its event are kept together or not at all.
pub trait MessageRepository: Clone + Send + Sync + 'static {
    fn get(&self, id: &str) -> impl Future<Output = Result<Option<Message>, RepoError>> + Send;

    fn history(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Vec<StatusChange>, RepoError>> + Send;

    /// The messages that already hold any of these idempotency keys.
    fn by_idempotency_keys(
        &self,
        keys: &[&str],
    ) -> impl Future<Output = Result<Vec<Message>, RepoError>> + Send;

    /// Keeps new `accepted` messages with their acceptance and `events`,
    /// all or none; [`RepoError::Duplicate`] if any key is taken, and
    /// [`RepoError::Unanswered`] when they may have been kept all the same.
    fn insert_many(
        &self,
        messages: &[Message],
        events: &[OutboxEvent],
    ) -> impl Future<Output = Result<(), RepoError>> + Send;

    /// Applies changes in order through [`Message::apply`], keeping each
    /// move's history entry and event; says, per change, what became of it.
    /// A provider id names a message of `provider`'s.
    fn apply_changes(
        &self,
        provider: &str,
        changes: &[(Target, Change)],
        origin: Origin,
    ) -> impl Future<Output = Result<Vec<Applied>, RepoError>> + Send;

    fn list(
        &self,
        filter: &ListFilter,
    ) -> impl Future<Output = Result<Vec<Message>, RepoError>> + Send;

    /// Touches those of these messages still `accepted`, so the sweep
    /// leaves them to their sender; says which, the others being gone or
    /// taken. Under the same lock as [`Self::sweep_stale`], so a message is
    /// either claimed or swept, never both.
    fn claim_accepted(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<String>, RepoError>> + Send;

    /// Applies `change` to up to `limit` messages still `accepted` and
    /// untouched since `before`, choosing them under the lock it changes
    /// them under.
    fn sweep_stale(
        &self,
        before: DateTime<Utc>,
        limit: u32,
        change: &Change,
    ) -> impl Future<Output = Result<Vec<Applied>, RepoError>> + Send;

    /// Keeps events with no message behind them (reported results).
    fn insert_events(
        &self,
        events: &[OutboxEvent],
    ) -> impl Future<Output = Result<(), RepoError>> + Send;
}

/// Counted quota windows, shared by every replica.
pub trait QuotaLedger: Clone + Send + Sync + 'static {
    /// Reserves up to `asked` in every window at once.
    fn reserve(
        &self,
        windows: &[Window],
        asked: u64,
    ) -> impl Future<Output = Result<Granted, RepoError>> + Send;

    /// Drops windows long over; says how many.
    fn prune_quota_windows(&self) -> impl Future<Output = Result<u64, RepoError>> + Send;
}

/// Each provider account's send schedule, shared by every replica: turns
/// `spacing` apart, booked a few at a time.
pub trait PaceLedger: Clone + Send + Sync + 'static {
    /// Books `count` turns on `provider`'s schedule after those already
    /// booked; answers how long from now the first is, or `None` (booking
    /// nothing) when the schedule is already booked more than `ahead`.
    fn book(
        &self,
        provider: &str,
        count: u32,
        spacing: Duration,
        ahead: Duration,
    ) -> impl Future<Output = Result<Option<Duration>, RepoError>> + Send;
}

/// The pairs messages name, looked up as `caller`.
pub trait PairLookup: Send + Sync + 'static {
    /// The pair with this id; `None` when there is none.
    fn get(
        &self,
        caller: &Caller,
        id: &str,
    ) -> impl Future<Output = Result<Option<Pair>, ApiError>> + Send;

    /// The pair of a country and operator (names match ignoring case).
    fn find(
        &self,
        caller: &Caller,
        country: &str,
        operator: &str,
    ) -> impl Future<Output = Result<Option<Pair>, ApiError>> + Send;
}
