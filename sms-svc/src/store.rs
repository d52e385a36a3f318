//! Messages, their status history and the event outbox in MySQL. Every change
//! to a message and the event that describes it commit in one transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use smsops_common::{ApiError, ErrorCode};
use sqlx::{MySql, MySqlPool, QueryBuilder, Row, Transaction};

use crate::core::{OutboxEvent, Status};

mod lock;
mod receipts;

pub use lock::{RelayLock, UpkeepLock};
pub use receipts::{AwaitingReceipt, ReceiptCheck, ReceiptGap};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("duplicate key")]
    Duplicate,
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Unavailable(String),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Duplicate => ApiError::new(ErrorCode::Conflict, "already exists"),
            StoreError::Sql(err) => smsops_common::mysql::api_error("message store", err),
            StoreError::Migrate(err) => ApiError::internal(err),
            StoreError::Unavailable(message) => ApiError::new(ErrorCode::Unavailable, message),
        }
    }
}

fn classify(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate,
        _ => StoreError::Sql(err),
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: String,
    pub idempotency_key: Option<String>,
    pub pair_id: String,
    pub country: String,
    pub operator: String,
    pub is_high_priority: bool,
    pub session_id: Option<String>,
    pub to_number: String,
    pub body_length: u32,
    pub segments: u32,
    pub status: String,
    pub provider: String,
    pub provider_sid: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// See migration 0004; `None` for older messages.
    pub request_hash: Option<String>,
    /// The accepting request's W3C trace context (migration 0007).
    pub traceparent: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HistoryRow {
    pub status: String,
    pub error_code: Option<String>,
    pub provider_status: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: u64,
    pub event_id: String,
    pub routing_key: String,
    pub event_type: String,
    pub traceparent: String,
    pub payload: String,
}

/// Which message a change is for: ours, or the provider's id for it.
#[derive(Debug, Clone)]
pub enum Target {
    Id(String),
    Sid(String),
}

/// A status change to apply to a message.
#[derive(Debug, Clone)]
pub struct Change {
    pub status: Status,
    pub provider_sid: Option<String>,
    pub provider_status: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// What became of a status change.
#[derive(Debug)]
pub enum Applied {
    /// The message moved; here it is as it is now.
    Moved(Box<MessageRow>),
    /// The message is already as far or further; nothing changed.
    Stale(Box<MessageRow>),
    /// No message matches.
    Unknown,
}

/// Filters for listing messages, newest first.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub pair_id: Option<String>,
    pub status: Option<Status>,
    pub session_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub before_id: Option<String>,
    pub limit: u32,
}

const COLUMNS: &str = "id, idempotency_key, pair_id, country, operator, is_high_priority, session_id, \
    to_number, body_length, segments, status, provider, provider_sid, error_code, error_message, \
    created_at, updated_at, request_hash, traceparent";

#[derive(Clone)]
pub struct Store {
    pub(crate) pool: MySqlPool,
}

impl Store {
    /// Creates the database if missing, connects and applies migrations.
    pub async fn connect(server_url: &str, database: &str) -> Result<Self, StoreError> {
        let pool = smsops_common::mysql::connect(server_url, database, 16).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    pub async fn get(&self, id: &str) -> Result<Option<MessageRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM sms_messages WHERE id = ?");
        Ok(sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn by_idempotency_key(&self, key: &str) -> Result<Option<MessageRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM sms_messages WHERE idempotency_key = ?");
        Ok(sqlx::query_as(&sql)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The messages that already hold any of these idempotency keys.
    pub async fn by_idempotency_keys(&self, keys: &[&str]) -> Result<Vec<MessageRow>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; keys.len()].join(", ");
        let sql = format!("SELECT {COLUMNS} FROM sms_messages WHERE idempotency_key IN ({marks})");
        let mut query = sqlx::query_as(&sql);
        for key in keys {
            query = query.bind(*key);
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    pub async fn history(&self, id: &str) -> Result<Vec<HistoryRow>, StoreError> {
        let sql = "SELECT status, error_code, provider_status, occurred_at FROM sms_status_history \
                   WHERE message_id = ? ORDER BY id";
        Ok(sqlx::query_as(sql).bind(id).fetch_all(&self.pool).await?)
    }

    /// Records new messages as `accepted`, with their history and events,
    /// in one transaction: a batch costs one commit, not one per message.
    pub async fn insert_many(
        &self,
        rows: &[MessageRow],
        events: &[OutboxEvent],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let mut insert = QueryBuilder::<MySql>::new(
            "INSERT INTO sms_messages (id, idempotency_key, pair_id, country, operator, \
             is_high_priority, session_id, to_number, body_length, segments, status, status_rank, \
             provider, created_at, updated_at, request_hash, traceparent) ",
        );
        insert.push_values(rows, |mut values, row| {
            values
                .push_bind(&row.id)
                .push_bind(&row.idempotency_key)
                .push_bind(&row.pair_id)
                .push_bind(&row.country)
                .push_bind(&row.operator)
                .push_bind(row.is_high_priority)
                .push_bind(&row.session_id)
                .push_bind(&row.to_number)
                .push_bind(row.body_length)
                .push_bind(row.segments)
                .push_bind(&row.status)
                .push_bind(Status::Accepted.rank())
                .push_bind(&row.provider)
                .push_bind(row.created_at)
                .push_bind(row.updated_at)
                .push_bind(&row.request_hash)
                .push_bind(&row.traceparent);
        });
        insert.build().execute(&mut *tx).await.map_err(classify)?;
        let history: Vec<HistoryEntry> = rows
            .iter()
            .map(|row| HistoryEntry {
                message_id: row.id.clone(),
                status: Status::Accepted,
                error_code: None,
                provider_status: None,
                at: row.created_at,
            })
            .collect();
        insert_history(&mut tx, &history).await?;
        insert_outbox(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Applies status changes in order, in one transaction: each moves its
    /// message forward or changes nothing. Answers, per change, what became
    /// of it. Several changes may touch one message (`queued`, then `sent`);
    /// each moved one gets its history row and its event.
    pub async fn apply_changes(
        &self,
        provider: &str,
        changes: &[(Target, Change)],
        event: impl Fn(&MessageRow) -> OutboxEvent,
    ) -> Result<Vec<Applied>, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_apply_changes(provider, changes, &event).await {
                // Two batches can lock the same messages in different orders;
                // the loser is rolled back whole and can simply run again.
                Err(StoreError::Sql(err)) if attempt < 5 && is_lock_conflict(&err) => {
                    tracing::debug!(attempt, "status batch hit a lock conflict, retrying");
                }
                other => return other,
            }
        }
    }

    async fn try_apply_changes(
        &self,
        provider: &str,
        changes: &[(Target, Change)],
        event: &impl Fn(&MessageRow) -> OutboxEvent,
    ) -> Result<Vec<Applied>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut rows = locked_rows(&mut tx, provider, changes).await?;
        let mut by_sid: HashMap<String, String> = rows
            .values()
            .filter_map(|row| Some((row.provider_sid.clone()?, row.id.clone())))
            .collect();
        let now = Utc::now();
        let mut results = Vec::with_capacity(changes.len());
        let mut dirty: Vec<String> = Vec::new();
        let mut history = Vec::new();
        let mut events = Vec::new();
        for (target, change) in changes {
            let id = match target {
                Target::Id(id) => Some(id),
                Target::Sid(sid) => by_sid.get(sid),
            };
            let Some(row) = id.and_then(|id| rows.get_mut(id)) else {
                results.push(Applied::Unknown);
                continue;
            };
            let current = Status::parse(&row.status).unwrap_or(Status::Accepted);
            if change.status.rank() <= current.rank() {
                results.push(Applied::Stale(Box::new(row.clone())));
                continue;
            }
            row.status = change.status.as_str().to_string();
            row.updated_at = now;
            if let Some(sid) = &change.provider_sid {
                row.provider_sid = Some(sid.clone());
                by_sid.insert(sid.clone(), row.id.clone());
            }
            if change.error_code.is_some() {
                row.error_code = change.error_code.clone();
                row.error_message = change.error_message.clone();
            }
            if !dirty.contains(&row.id) {
                dirty.push(row.id.clone());
            }
            history.push(HistoryEntry {
                message_id: row.id.clone(),
                status: change.status,
                error_code: change.error_code.clone(),
                provider_status: change.provider_status.clone(),
                at: now,
            });
            events.push(event(row));
            results.push(Applied::Moved(Box::new(row.clone())));
        }
        let updated: Vec<&MessageRow> = dirty.iter().filter_map(|id| rows.get(id)).collect();
        write_rows(&mut tx, &updated).await?;
        insert_history(&mut tx, &history).await?;
        insert_outbox(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(results)
    }

    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<MessageRow>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM sms_messages WHERE 1 = 1");
        if filter.pair_id.is_some() {
            sql.push_str(" AND pair_id = ?");
        }
        if filter.status.is_some() {
            sql.push_str(" AND status = ?");
        }
        if filter.session_id.is_some() {
            sql.push_str(" AND session_id = ?");
        }
        if filter.since.is_some() {
            sql.push_str(" AND created_at >= ?");
        }
        if filter.until.is_some() {
            sql.push_str(" AND created_at < ?");
        }
        if filter.before_id.is_some() {
            sql.push_str(" AND id < ?");
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        let mut query = sqlx::query_as::<_, MessageRow>(&sql);
        if let Some(pair) = &filter.pair_id {
            query = query.bind(pair);
        }
        if let Some(status) = filter.status {
            query = query.bind(status.as_str());
        }
        if let Some(session) = &filter.session_id {
            query = query.bind(session);
        }
        if let Some(since) = filter.since {
            query = query.bind(since);
        }
        if let Some(until) = filter.until {
            query = query.bind(until);
        }
        if let Some(before) = &filter.before_id {
            query = query.bind(before);
        }
        Ok(query.bind(filter.limit).fetch_all(&self.pool).await?)
    }

    /// Messages still `accepted` that were created before `before`.
    pub async fn stale_accepted(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM sms_messages WHERE status = 'accepted' AND created_at < ? ORDER BY created_at LIMIT ?",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|row| row.try_get::<String, _>("id").ok())
            .collect())
    }

    /// The oldest events after `after` not yet confirmed by the broker.
    /// Puts events with no message row behind them (reported results) in
    /// the outbox, all or none.
    pub async fn insert_events(&self, events: &[OutboxEvent]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_outbox(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn outbox_batch(&self, after: u64, limit: u32) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = "SELECT id, event_id, routing_key, event_type, traceparent, payload \
                   FROM sms_outbox WHERE id > ? ORDER BY id LIMIT ?";
        Ok(sqlx::query_as(sql)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Forgets events the broker has confirmed.
    pub async fn outbox_done(&self, ids: &[u64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<&u64> = padded(ids).collect();
        let marks = vec!["?"; ids.len()].join(", ");
        let sql = format!("DELETE FROM sms_outbox WHERE id IN ({marks})");
        let mut query = sqlx::query(&sql);
        for id in ids {
            query = query.bind(id);
        }
        query.execute(&self.pool).await?;
        Ok(())
    }
}

/// The items of a multi-row statement, the last repeated up to the next
/// power of two. Each row count is a statement of its own to prepare, and
/// preparing one of a few hundred rows cost more than running it (a fifth
/// of the status writer's time); so statements take a few sizes only. Used
/// only where a repeated row changes nothing: an `IN` list, or an insert
/// whose duplicate key turns the repeat into a no-op update.
fn padded<T>(items: &[T]) -> impl Iterator<Item = &T> {
    let size = items.len().next_power_of_two();
    let repeats = std::iter::repeat_n(items.last(), size - items.len()).flatten();
    items.iter().chain(repeats)
}

struct HistoryEntry {
    message_id: String,
    status: Status,
    error_code: Option<String>,
    provider_status: Option<String>,
    at: DateTime<Utc>,
}

async fn insert_history(
    tx: &mut Transaction<'_, MySql>,
    entries: &[HistoryEntry],
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut insert = QueryBuilder::<MySql>::new(
        "INSERT INTO sms_status_history (message_id, status, error_code, provider_status, occurred_at) ",
    );
    insert.push_values(padded(entries), |mut values, entry| {
        values
            .push_bind(&entry.message_id)
            .push_bind(entry.status.as_str())
            .push_bind(&entry.error_code)
            .push_bind(&entry.provider_status)
            .push_bind(entry.at);
    });
    // A message reaches each status once; a repeated row is padding.
    insert.push(" ON DUPLICATE KEY UPDATE message_id = message_id");
    insert.build().execute(&mut **tx).await?;
    Ok(())
}

async fn insert_outbox(
    tx: &mut Transaction<'_, MySql>,
    events: &[OutboxEvent],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let mut insert = QueryBuilder::<MySql>::new(
        "INSERT INTO sms_outbox (event_id, routing_key, event_type, traceparent, payload, created_at) ",
    );
    insert.push_values(padded(events), |mut values, event| {
        values
            .push_bind(&event.event_id)
            .push_bind(&event.routing_key)
            .push_bind(&event.event_type)
            .push_bind(&event.traceparent)
            .push_bind(&event.payload)
            .push_bind(now);
    });
    // An event id already waiting is the same event: a reporter that sends
    // its batch again before the relay published the first must not fail.
    insert.push(" ON DUPLICATE KEY UPDATE event_id = event_id");
    insert.build().execute(&mut **tx).await?;
    Ok(())
}

/// Locks every message the changes name, in id order.
async fn locked_rows(
    tx: &mut Transaction<'_, MySql>,
    provider: &str,
    changes: &[(Target, Change)],
) -> Result<HashMap<String, MessageRow>, StoreError> {
    let mut ids: Vec<&str> = Vec::new();
    let mut sids: Vec<&str> = Vec::new();
    for (target, _) in changes {
        match target {
            Target::Id(id) => ids.push(id),
            Target::Sid(sid) => sids.push(sid),
        }
    }
    let mut rows = HashMap::new();
    if !ids.is_empty() {
        let mut select =
            QueryBuilder::<MySql>::new(format!("SELECT {COLUMNS} FROM sms_messages WHERE id IN ("));
        let mut list = select.separated(", ");
        for id in padded(&ids) {
            list.push_bind(*id);
        }
        select.push(") ORDER BY id FOR UPDATE");
        for row in select
            .build_query_as::<MessageRow>()
            .fetch_all(&mut **tx)
            .await?
        {
            rows.insert(row.id.clone(), row);
        }
    }
    if !sids.is_empty() {
        let mut select = QueryBuilder::<MySql>::new(format!(
            "SELECT {COLUMNS} FROM sms_messages WHERE provider = "
        ));
        select.push_bind(provider).push(" AND provider_sid IN (");
        let mut list = select.separated(", ");
        for sid in padded(&sids) {
            list.push_bind(*sid);
        }
        select.push(") ORDER BY id FOR UPDATE");
        for row in select
            .build_query_as::<MessageRow>()
            .fetch_all(&mut **tx)
            .await?
        {
            rows.insert(row.id.clone(), row);
        }
    }
    Ok(rows)
}

/// Writes the changed columns of locked rows in one statement. The rows
/// exist and are locked, so every insert turns into an update of its row.
async fn write_rows(
    tx: &mut Transaction<'_, MySql>,
    rows: &[&MessageRow],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut upsert = QueryBuilder::<MySql>::new(
        "INSERT INTO sms_messages (id, idempotency_key, pair_id, country, operator, \
         is_high_priority, session_id, to_number, body_length, segments, status, status_rank, \
         provider, provider_sid, error_code, error_message, created_at, updated_at, request_hash) ",
    );
    upsert.push_values(padded(rows), |mut values, row| {
        let rank = Status::parse(&row.status).map_or(0, Status::rank);
        values
            .push_bind(&row.id)
            .push_bind(&row.idempotency_key)
            .push_bind(&row.pair_id)
            .push_bind(&row.country)
            .push_bind(&row.operator)
            .push_bind(row.is_high_priority)
            .push_bind(&row.session_id)
            .push_bind(&row.to_number)
            .push_bind(row.body_length)
            .push_bind(row.segments)
            .push_bind(&row.status)
            .push_bind(rank)
            .push_bind(&row.provider)
            .push_bind(&row.provider_sid)
            .push_bind(&row.error_code)
            .push_bind(&row.error_message)
            .push_bind(row.created_at)
            .push_bind(row.updated_at)
            .push_bind(&row.request_hash);
    });
    upsert.push(
        " ON DUPLICATE KEY UPDATE status = VALUES(status), status_rank = VALUES(status_rank), \
         provider_sid = VALUES(provider_sid), error_code = VALUES(error_code), \
         error_message = VALUES(error_message), updated_at = VALUES(updated_at)",
    );
    upsert.build().execute(&mut **tx).await.map_err(classify)?;
    Ok(())
}

/// A deadlock or lock wait timeout: the transaction was rolled back and
/// can be run again as it was.
fn is_lock_conflict(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .is_some_and(|mysql| matches!(mysql.number(), 1205 | 1213)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::padded;

    #[test]
    fn padding_repeats_the_last_item_up_to_a_power_of_two() {
        let sizes: Vec<usize> = [1, 2, 3, 5, 500]
            .iter()
            .map(|&n| padded(&vec![0; n]).count())
            .collect();
        assert_eq!(sizes, [1, 2, 4, 8, 512]);
        let items: Vec<u8> = padded(&[1, 2, 3]).copied().collect();
        assert_eq!(items, [1, 2, 3, 3]);
        assert_eq!(padded::<u8>(&[]).count(), 0);
    }
}
