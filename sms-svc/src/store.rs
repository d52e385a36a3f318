//! Messages, their status history and the event outbox in MySQL. Every change
//! to a message and the event that describes it commit in one transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{MySql, MySqlPool, QueryBuilder, Transaction, query_builder::Separated};

use crate::domain::{
    Applied, Change, ListFilter, Message, MessageRepository, Origin, OutboxEvent, Pair, Part,
    RepoError, RouteReason, Status, StatusChange, Target, Working, apply_all,
};

mod lock;
mod pace;
mod parts;
mod receipts;

pub use lock::{RelayLock, UpkeepLock};
pub use receipts::{AwaitingReceipt, ReceiptCheck, ReceiptGap};

impl From<sqlx::Error> for RepoError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => RepoError::Duplicate,
            sqlx::Error::Database(db) if is_lock_conflict(db.as_ref()) => RepoError::Conflict,
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                RepoError::Unavailable("the message store is unavailable".into())
            }
            _ => RepoError::Failed(err.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for RepoError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        RepoError::Failed(format!("migration failed: {err}"))
    }
}

/// A message as its row holds it; read into a [`Message`] before use.
#[derive(Debug, Clone, sqlx::FromRow)]
struct MessageRow {
    id: String,
    idempotency_key: Option<String>,
    pair_id: String,
    country: String,
    operator: String,
    is_high_priority: bool,
    session_id: Option<String>,
    to_number: String,
    body_length: u32,
    segments: u32,
    status: String,
    provider: String,
    /// Migration 0009.
    route_reason: Option<String>,
    provider_sid: Option<String>,
    error_code: Option<String>,
    error_message: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// See migration 0004; `None` for older messages.
    request_hash: Option<String>,
    /// Migration 0007.
    traceparent: Option<String>,
}

impl TryFrom<MessageRow> for Message {
    type Error = RepoError;

    fn try_from(row: MessageRow) -> Result<Self, RepoError> {
        let status = Status::parse(&row.status).ok_or_else(|| {
            RepoError::Corrupt(format!("message {} has status {:?}", row.id, row.status))
        })?;
        Ok(Message {
            id: row.id,
            idempotency_key: row.idempotency_key,
            pair: Pair {
                id: row.pair_id,
                country: row.country,
                operator: row.operator,
                is_high_priority: row.is_high_priority,
                // Routing is done with once a message is kept.
                route: Vec::new(),
            },
            session_id: row.session_id,
            to: row.to_number,
            body_length: row.body_length,
            segments: row.segments,
            status,
            provider: row.provider,
            // A reason no version wrote reads as none: it only explains.
            route_reason: row.route_reason.as_deref().and_then(RouteReason::parse),
            provider_sid: row.provider_sid,
            error_code: row.error_code,
            error_message: row.error_message,
            created_at: row.created_at,
            updated_at: row.updated_at,
            request_hash: row.request_hash,
            traceparent: row.traceparent,
        })
    }
}

fn messages(rows: Vec<MessageRow>) -> Result<Vec<Message>, RepoError> {
    rows.into_iter().map(Message::try_from).collect()
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct HistoryRow {
    status: String,
    error_code: Option<String>,
    provider_status: Option<String>,
    occurred_at: DateTime<Utc>,
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

const COLUMNS: &str = "id, idempotency_key, pair_id, country, operator, is_high_priority, session_id, \
    to_number, body_length, segments, status, provider, route_reason, provider_sid, error_code, \
    error_message, created_at, updated_at, request_hash, traceparent";

#[derive(Clone)]
pub struct Store {
    pub(crate) pool: MySqlPool,
}

impl Store {
    /// Creates the database if missing, connects and applies migrations.
    pub async fn connect(server_url: &str, database: &str) -> Result<Self, RepoError> {
        let pool = smsops_common::mysql::connect(server_url, database, 16).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    async fn try_apply_changes(
        &self,
        provider: &str,
        changes: &[(Target, Change)],
        origin: Origin,
    ) -> Result<Vec<Applied>, RepoError> {
        let mut tx = self.pool.begin().await?;
        let mut working = locked_working(&mut tx, provider, changes).await?;
        let results = apply_locked(&mut tx, provider, &mut working, changes, origin).await?;
        tx.commit().await?;
        Ok(results)
    }

    /// One sweep under one lock: the rows it picks stay as it saw them
    /// until it has changed them. Rows a claim holds are skipped, not
    /// waited for: their sender has them.
    async fn try_sweep_stale(
        &self,
        before: DateTime<Utc>,
        limit: u32,
        change: &Change,
    ) -> Result<Vec<Applied>, RepoError> {
        let mut tx = self.pool.begin().await?;
        // `created_at < before` holds whenever `updated_at < before` does;
        // it lets the (status, created_at) index narrow the scan.
        let sql = format!(
            "SELECT {COLUMNS} FROM sms_messages WHERE status = 'accepted' AND created_at < ? \
             AND updated_at < ? ORDER BY created_at LIMIT ? FOR UPDATE SKIP LOCKED"
        );
        let rows: Vec<MessageRow> = sqlx::query_as(&sql)
            .bind(before)
            .bind(before)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        let messages = rows
            .into_iter()
            .map(|row| Ok((row.id.clone(), Message::try_from(row)?)))
            .collect::<Result<HashMap<_, _>, RepoError>>()?;
        let changes: Vec<(Target, Change)> = messages
            .keys()
            .map(|id| (Target::Id(id.clone()), change.clone()))
            .collect();
        let mut working = Working {
            messages,
            ..Working::default()
        };
        let results = apply_locked(&mut tx, "", &mut working, &changes, Origin::Live).await?;
        tx.commit().await?;
        Ok(results)
    }

    async fn try_claim_accepted(&self, ids: &[String]) -> Result<Vec<String>, RepoError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        let mut select = QueryBuilder::<MySql>::new(
            "SELECT id FROM sms_messages WHERE status = 'accepted' AND id IN (",
        );
        let mut list = select.separated(", ");
        for id in padded(ids) {
            list.push_bind(id);
        }
        select.push(") ORDER BY id FOR UPDATE");
        let claimed: Vec<(String,)> = select.build_query_as().fetch_all(&mut *tx).await?;
        let claimed: Vec<String> = claimed.into_iter().map(|(id,)| id).collect();
        if !claimed.is_empty() {
            let mut touch = QueryBuilder::<MySql>::new("UPDATE sms_messages SET updated_at = ");
            touch.push_bind(Utc::now()).push(" WHERE id IN (");
            let mut list = touch.separated(", ");
            for id in padded(&claimed) {
                list.push_bind(id);
            }
            touch.push(")");
            touch.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// The oldest events after `after` not yet confirmed by the broker.
    pub async fn outbox_batch(&self, after: u64, limit: u32) -> Result<Vec<OutboxRow>, RepoError> {
        let sql = "SELECT id, event_id, routing_key, event_type, traceparent, payload \
                   FROM sms_outbox WHERE id > ? ORDER BY id LIMIT ?";
        Ok(sqlx::query_as(sql)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Forgets events the broker has confirmed.
    pub async fn outbox_done(&self, ids: &[u64]) -> Result<(), RepoError> {
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

impl MessageRepository for Store {
    async fn get(&self, id: &str) -> Result<Option<Message>, RepoError> {
        let sql = format!("SELECT {COLUMNS} FROM sms_messages WHERE id = ?");
        let row: Option<MessageRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Message::try_from).transpose()
    }

    async fn history(&self, id: &str) -> Result<Vec<StatusChange>, RepoError> {
        let sql = "SELECT status, error_code, provider_status, occurred_at FROM sms_status_history \
                   WHERE message_id = ? ORDER BY id";
        let rows: Vec<HistoryRow> = sqlx::query_as(sql).bind(id).fetch_all(&self.pool).await?;
        rows.into_iter()
            .map(|row| {
                Ok(StatusChange {
                    status: Status::parse(&row.status).ok_or_else(|| {
                        RepoError::Corrupt(format!("history of {id} has status {:?}", row.status))
                    })?,
                    error_code: row.error_code,
                    provider_status: row.provider_status,
                    occurred_at: row.occurred_at,
                })
            })
            .collect()
    }

    async fn by_idempotency_keys(&self, keys: &[&str]) -> Result<Vec<Message>, RepoError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; keys.len()].join(", ");
        let sql = format!("SELECT {COLUMNS} FROM sms_messages WHERE idempotency_key IN ({marks})");
        let mut query = sqlx::query_as(&sql);
        for key in keys {
            query = query.bind(*key);
        }
        messages(query.fetch_all(&self.pool).await?)
    }

    /// One transaction for the whole batch: a batch costs one commit, not
    /// one per message.
    async fn insert_many(
        &self,
        messages: &[Message],
        events: &[OutboxEvent],
    ) -> Result<(), RepoError> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let mut insert = QueryBuilder::<MySql>::new(INSERT_MESSAGES);
        insert.push_values(messages, push_message);
        insert.build().execute(&mut *tx).await?;
        let history: Vec<(String, StatusChange)> = messages
            .iter()
            .map(|message| (message.id.clone(), message.accepted().history))
            .collect();
        insert_history(&mut tx, &history).await?;
        insert_outbox(&mut tx, events).await?;
        tx.commit().await.map_err(commit_error)?;
        Ok(())
    }

    async fn apply_changes(
        &self,
        provider: &str,
        changes: &[(Target, Change)],
        origin: Origin,
    ) -> Result<Vec<Applied>, RepoError> {
        retry_conflicts(|| self.try_apply_changes(provider, changes, origin)).await
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<Message>, RepoError> {
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
        messages(query.bind(filter.limit).fetch_all(&self.pool).await?)
    }

    async fn claim_accepted(&self, ids: &[String]) -> Result<Vec<String>, RepoError> {
        retry_conflicts(|| self.try_claim_accepted(ids)).await
    }

    async fn sweep_stale(
        &self,
        before: DateTime<Utc>,
        limit: u32,
        change: &Change,
    ) -> Result<Vec<Applied>, RepoError> {
        retry_conflicts(|| self.try_sweep_stale(before, limit, change)).await
    }

    async fn insert_events(&self, events: &[OutboxEvent]) -> Result<(), RepoError> {
        let mut tx = self.pool.begin().await?;
        insert_outbox(&mut tx, events).await?;
        tx.commit().await?;
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

async fn insert_history(
    tx: &mut Transaction<'_, MySql>,
    entries: &[(String, StatusChange)],
) -> Result<(), RepoError> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut insert = QueryBuilder::<MySql>::new(
        "INSERT INTO sms_status_history (message_id, status, error_code, provider_status, occurred_at) ",
    );
    insert.push_values(padded(entries), |mut values, (message_id, entry)| {
        values
            .push_bind(message_id)
            .push_bind(entry.status.as_str())
            .push_bind(&entry.error_code)
            .push_bind(&entry.provider_status)
            .push_bind(entry.occurred_at);
    });
    // A message reaches each status once; a repeated row is padding.
    insert.push(" ON DUPLICATE KEY UPDATE message_id = message_id");
    insert.build().execute(&mut **tx).await?;
    Ok(())
}

async fn insert_outbox(
    tx: &mut Transaction<'_, MySql>,
    events: &[OutboxEvent],
) -> Result<(), RepoError> {
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

/// Locks every message the changes name, in id order, and every part of
/// the messages a part's receipt names.
async fn locked_working(
    tx: &mut Transaction<'_, MySql>,
    provider: &str,
    changes: &[(Target, Change)],
) -> Result<Working, RepoError> {
    let mut ids: Vec<String> = Vec::new();
    let mut sids: Vec<&str> = Vec::new();
    let mut part_sids: Vec<&str> = Vec::new();
    for (target, _) in changes {
        match target {
            Target::Id(id) => ids.push(id.clone()),
            Target::Sid(sid) => sids.push(sid),
            Target::Part(sid) => part_sids.push(sid),
        }
    }
    let parts = parts::locked_parts(tx, provider, &part_sids).await?;
    ids.extend(parts.values().map(|part| part.message_id.clone()));
    ids.sort_unstable();
    ids.dedup();
    let mut rows: Vec<MessageRow> = Vec::new();
    if !ids.is_empty() {
        let mut select =
            QueryBuilder::<MySql>::new(format!("SELECT {COLUMNS} FROM sms_messages WHERE id IN ("));
        let mut list = select.separated(", ");
        for id in padded(&ids) {
            list.push_bind(id);
        }
        select.push(") ORDER BY id FOR UPDATE");
        rows.extend(select.build_query_as().fetch_all(&mut **tx).await?);
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
        rows.extend(select.build_query_as().fetch_all(&mut **tx).await?);
    }
    let messages = rows
        .into_iter()
        .map(|row| Ok((row.id.clone(), Message::try_from(row)?)))
        .collect::<Result<_, RepoError>>()?;
    Ok(Working { messages, parts })
}

const INSERT_MESSAGES: &str = "INSERT INTO sms_messages (id, idempotency_key, pair_id, country, \
    operator, is_high_priority, session_id, to_number, body_length, segments, status, status_rank, \
    provider, route_reason, provider_sid, error_code, error_message, created_at, updated_at, \
    request_hash, traceparent) ";

/// One message's values, in [`INSERT_MESSAGES`]' order.
fn push_message<'args>(
    mut values: Separated<'_, 'args, MySql, &'static str>,
    message: &'args Message,
) {
    values
        .push_bind(&message.id)
        .push_bind(&message.idempotency_key)
        .push_bind(&message.pair.id)
        .push_bind(&message.pair.country)
        .push_bind(&message.pair.operator)
        .push_bind(message.pair.is_high_priority)
        .push_bind(&message.session_id)
        .push_bind(&message.to)
        .push_bind(message.body_length)
        .push_bind(message.segments)
        .push_bind(message.status.as_str())
        .push_bind(message.status.rank())
        .push_bind(&message.provider)
        .push_bind(message.route_reason.map(RouteReason::as_str))
        .push_bind(&message.provider_sid)
        .push_bind(&message.error_code)
        .push_bind(&message.error_message)
        .push_bind(message.created_at)
        .push_bind(message.updated_at)
        .push_bind(&message.request_hash)
        .push_bind(&message.traceparent);
}

/// Writes the changed columns of locked messages in one statement. They
/// exist and are locked, so every insert turns into an update of its row.
/// Runs a transaction again when it lost a lock conflict: two batches can
/// lock the same messages in different orders, and the loser is rolled
/// back whole, so it can simply run again.
async fn retry_conflicts<T, F>(mut run: impl FnMut() -> F) -> Result<T, RepoError>
where
    F: Future<Output = Result<T, RepoError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match run().await {
            Err(RepoError::Conflict) if attempt < 5 => {
                tracing::debug!(attempt, "transaction hit a lock conflict, retrying");
            }
            other => return other,
        }
    }
}

/// Applies changes to messages (and parts) this transaction holds locked,
/// keeping each move with its history entry and event.
async fn apply_locked(
    tx: &mut Transaction<'_, MySql>,
    provider: &str,
    working: &mut Working,
    changes: &[(Target, Change)],
    origin: Origin,
) -> Result<Vec<Applied>, RepoError> {
    let batch = apply_all(working, changes, Utc::now(), origin);
    let updated: Vec<&Message> = batch
        .moved
        .iter()
        .filter_map(|id| working.messages.get(id))
        .collect();
    write_messages(tx, &updated).await?;
    let parts: Vec<&Part> = batch
        .parts
        .iter()
        .filter_map(|sid| working.parts.get(sid))
        .collect();
    parts::write_parts(tx, provider, &parts).await?;
    insert_history(tx, &batch.history).await?;
    insert_outbox(tx, &batch.events).await?;
    Ok(batch.results)
}

async fn write_messages(
    tx: &mut Transaction<'_, MySql>,
    messages: &[&Message],
) -> Result<(), RepoError> {
    if messages.is_empty() {
        return Ok(());
    }
    let mut upsert = QueryBuilder::<MySql>::new(INSERT_MESSAGES);
    upsert.push_values(padded(messages), |values, message| {
        push_message(values, message)
    });
    upsert.push(
        " ON DUPLICATE KEY UPDATE status = VALUES(status), status_rank = VALUES(status_rank), \
         provider = VALUES(provider), route_reason = VALUES(route_reason), \
         provider_sid = VALUES(provider_sid), error_code = VALUES(error_code), \
         error_message = VALUES(error_message), updated_at = VALUES(updated_at)",
    );
    upsert.build().execute(&mut **tx).await?;
    Ok(())
}

/// A commit the server refused is a plain error; any other failure lost
/// its answer, and the commit may have landed.
fn commit_error(err: sqlx::Error) -> RepoError {
    match err {
        sqlx::Error::Database(_) => err.into(),
        other => RepoError::Unanswered(other.to_string()),
    }
}

/// A deadlock or lock wait timeout: the transaction was rolled back and
/// can be run again as it was.
fn is_lock_conflict(db: &dyn sqlx::error::DatabaseError) -> bool {
    db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
        .is_some_and(|mysql| matches!(mysql.number(), 1205 | 1213))
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
