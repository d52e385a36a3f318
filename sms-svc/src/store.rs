//! Messages, their status history and the event outbox in MySQL. Every change
//! to a message and the event that describes it commit in one transaction.

use chrono::{DateTime, Utc};
use smsops_common::{ApiError, ErrorCode};
use sqlx::{
    MySql, MySqlPool, QueryBuilder, Row, Transaction,
    mysql::{MySqlConnectOptions, MySqlPoolOptions},
};

use crate::core::{OutboxEvent, Status};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("duplicate key")]
    Duplicate,
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Duplicate => ApiError::new(ErrorCode::Conflict, "already exists"),
            StoreError::Sql(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed,
            ) => ApiError::new(ErrorCode::Unavailable, "the message store is unavailable"),
            StoreError::Sql(err) => ApiError::internal(err),
            StoreError::Migrate(err) => ApiError::internal(err),
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
    created_at, updated_at";

#[derive(Clone)]
pub struct Store {
    pool: MySqlPool,
}

impl Store {
    /// Creates the database if missing, connects and applies migrations.
    pub async fn connect(server_url: &str, database: &str) -> Result<Self, StoreError> {
        let server: MySqlConnectOptions = server_url.parse()?;
        let admin = MySqlPoolOptions::new()
            .max_connections(1)
            .connect_with(server.clone())
            .await?;
        let quoted = database.replace('`', "``");
        sqlx::query(&format!(
            "CREATE DATABASE IF NOT EXISTS `{quoted}` CHARACTER SET utf8mb4"
        ))
        .execute(&admin)
        .await?;
        admin.close().await;
        let pool = MySqlPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_with(server.database(database))
            .await?;
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
             provider, created_at, updated_at) ",
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
                .push_bind(row.updated_at);
        });
        insert.build().execute(&mut *tx).await.map_err(classify)?;
        let history: Vec<HistoryEntry> = rows
            .iter()
            .map(|row| HistoryEntry {
                message_id: &row.id,
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

    /// Records how sending went for messages still `accepted`, in one
    /// transaction. Each row is the message as it should be now; returns,
    /// per row, whether it moved (it always does unless something else
    /// already moved it further).
    pub async fn record_sends(
        &self,
        rows: &[(MessageRow, Change)],
        event: impl Fn(&MessageRow) -> OutboxEvent,
    ) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut moved = Vec::with_capacity(rows.len());
        let mut history = Vec::new();
        let mut events = Vec::new();
        for (row, change) in rows {
            let updated = sqlx::query(
                "UPDATE sms_messages SET status = ?, status_rank = ?, provider_sid = ?, error_code = ?, \
                 error_message = ?, updated_at = ? WHERE id = ? AND status_rank < ?",
            )
            .bind(&row.status)
            .bind(change.status.rank())
            .bind(&row.provider_sid)
            .bind(&row.error_code)
            .bind(&row.error_message)
            .bind(row.updated_at)
            .bind(&row.id)
            .bind(change.status.rank())
            .execute(&mut *tx)
            .await
            .map_err(classify)?
            .rows_affected()
                == 1;
            if updated {
                history.push(HistoryEntry {
                    message_id: &row.id,
                    status: change.status,
                    error_code: change.error_code.as_deref(),
                    provider_status: change.provider_status.as_deref(),
                    at: row.updated_at,
                });
                events.push(event(row));
            }
            moved.push(updated);
        }
        insert_history(&mut tx, &history).await?;
        insert_outbox(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// Moves the message `id` forward to `change.status`, if that is forward.
    pub async fn apply(
        &self,
        id: &str,
        change: &Change,
        event: impl FnOnce(&MessageRow) -> OutboxEvent,
    ) -> Result<Applied, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM sms_messages WHERE id = ? FOR UPDATE");
        self.apply_locked(sqlx::query_as(&sql).bind(id), change, event)
            .await
    }

    /// Like [`Store::apply`], finding the message by the provider's id.
    pub async fn apply_by_sid(
        &self,
        provider: &str,
        sid: &str,
        change: &Change,
        event: impl FnOnce(&MessageRow) -> OutboxEvent,
    ) -> Result<Applied, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM sms_messages WHERE provider = ? AND provider_sid = ? FOR UPDATE"
        );
        self.apply_locked(sqlx::query_as(&sql).bind(provider).bind(sid), change, event)
            .await
    }

    async fn apply_locked<'q>(
        &self,
        select: sqlx::query::QueryAs<'q, MySql, MessageRow, sqlx::mysql::MySqlArguments>,
        change: &Change,
        event: impl FnOnce(&MessageRow) -> OutboxEvent,
    ) -> Result<Applied, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(mut row) = select.fetch_optional(&mut *tx).await? else {
            return Ok(Applied::Unknown);
        };
        let current = Status::parse(&row.status).unwrap_or(Status::Accepted);
        if change.status.rank() <= current.rank() {
            tx.commit().await?;
            return Ok(Applied::Stale(Box::new(row)));
        }
        let now = Utc::now();
        row.status = change.status.as_str().to_string();
        row.updated_at = now;
        if change.provider_sid.is_some() {
            row.provider_sid = change.provider_sid.clone();
        }
        if change.error_code.is_some() {
            row.error_code = change.error_code.clone();
            row.error_message = change.error_message.clone();
        }
        sqlx::query(
            "UPDATE sms_messages SET status = ?, status_rank = ?, provider_sid = ?, error_code = ?, \
             error_message = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&row.status)
        .bind(change.status.rank())
        .bind(&row.provider_sid)
        .bind(&row.error_code)
        .bind(&row.error_message)
        .bind(now)
        .bind(&row.id)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        let entry = HistoryEntry {
            message_id: &row.id,
            status: change.status,
            error_code: change.error_code.as_deref(),
            provider_status: change.provider_status.as_deref(),
            at: now,
        };
        insert_history(&mut tx, &[entry]).await?;
        insert_outbox(&mut tx, &[event(&row)]).await?;
        tx.commit().await?;
        Ok(Applied::Moved(Box::new(row)))
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

    /// The oldest events not yet confirmed by the broker.
    pub async fn outbox_batch(&self, limit: u32) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = "SELECT id, event_id, routing_key, event_type, traceparent, payload \
                   FROM sms_outbox ORDER BY id LIMIT ?";
        Ok(sqlx::query_as(sql)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Forgets events the broker has confirmed.
    pub async fn outbox_done(&self, ids: &[u64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
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

struct HistoryEntry<'a> {
    message_id: &'a str,
    status: Status,
    error_code: Option<&'a str>,
    provider_status: Option<&'a str>,
    at: DateTime<Utc>,
}

async fn insert_history(
    tx: &mut Transaction<'_, MySql>,
    entries: &[HistoryEntry<'_>],
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut insert = QueryBuilder::<MySql>::new(
        "INSERT INTO sms_status_history (message_id, status, error_code, provider_status, occurred_at) ",
    );
    insert.push_values(entries, |mut values, entry| {
        values
            .push_bind(entry.message_id)
            .push_bind(entry.status.as_str())
            .push_bind(entry.error_code)
            .push_bind(entry.provider_status)
            .push_bind(entry.at);
    });
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
    insert.push_values(events, |mut values, event| {
        values
            .push_bind(&event.event_id)
            .push_bind(&event.routing_key)
            .push_bind(&event.event_type)
            .push_bind(&event.traceparent)
            .push_bind(&event.payload)
            .push_bind(now);
    });
    insert.build().execute(&mut **tx).await?;
    Ok(())
}
