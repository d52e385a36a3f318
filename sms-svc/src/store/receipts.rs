//! What receipt reconciliation reads and keeps: messages whose receipt is
//! late, and when each is looked up again (migration 0006).

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{RepoError, Store};

/// A message taken by its provider whose final status has not come.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AwaitingReceipt {
    pub id: String,
    pub provider_sid: String,
    pub created_at: DateTime<Utc>,
    /// Lookups already made.
    pub checks: u64,
}

/// One lookup made, as kept for the next.
#[derive(Debug, Clone)]
pub struct ReceiptCheck {
    pub message_id: String,
    pub checks: u64,
    pub next_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// Late receipts of one pair.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReceiptGap {
    pub country: String,
    pub operator: String,
    pub messages: i64,
}

impl Store {
    /// The oldest of `provider`'s messages accepted between `since` and
    /// `late_before`, still `queued` or `sent`, never looked up. The scan
    /// walks `sms_status_created` over that range only.
    pub async fn receipts_unchecked(
        &self,
        provider: &str,
        since: DateTime<Utc>,
        late_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<AwaitingReceipt>, RepoError> {
        Ok(sqlx::query_as(
            "SELECT m.id, m.provider_sid, m.created_at, CAST(0 AS UNSIGNED) AS checks \
             FROM sms_messages m LEFT JOIN sms_receipt_checks c ON c.message_id = m.id \
             WHERE m.status IN ('queued', 'sent') AND m.created_at >= ? AND m.created_at < ? \
             AND m.provider = ? AND m.provider_sid IS NOT NULL AND c.message_id IS NULL \
             ORDER BY m.created_at LIMIT ?",
        )
        .bind(since)
        .bind(late_before)
        .bind(provider)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Messages looked up before whose next lookup is due at `now`, most
    /// overdue first, through `receipt_checks_due`.
    pub async fn receipts_due_again(
        &self,
        provider: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<AwaitingReceipt>, RepoError> {
        Ok(sqlx::query_as(
            "SELECT m.id, m.provider_sid, m.created_at, CAST(c.checks AS UNSIGNED) AS checks \
             FROM sms_receipt_checks c JOIN sms_messages m ON m.id = c.message_id \
             WHERE c.next_at <= ? AND m.status IN ('queued', 'sent') AND m.provider = ? \
             AND m.provider_sid IS NOT NULL ORDER BY c.next_at LIMIT ?",
        )
        .bind(now)
        .bind(provider)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records lookups made: per message, its count of lookups, when to
    /// look again and why, in one statement.
    pub async fn check_again(&self, checks: &[ReceiptCheck]) -> Result<(), RepoError> {
        if checks.is_empty() {
            return Ok(());
        }
        let mut insert = sqlx::QueryBuilder::<sqlx::MySql>::new(
            "INSERT INTO sms_receipt_checks (message_id, checks, next_at, last_error) ",
        );
        insert.push_values(checks, |mut row, check| {
            row.push_bind(&check.message_id)
                .push_bind(check.checks)
                .push_bind(check.next_at)
                .push_bind(
                    check
                        .last_error
                        .as_ref()
                        .map(|e| e.chars().take(250).collect::<String>()),
                );
        });
        insert.push(
            " ON DUPLICATE KEY UPDATE checks = VALUES(checks), next_at = VALUES(next_at), \
             last_error = VALUES(last_error)",
        );
        insert.build().execute(&self.pool).await?;
        Ok(())
    }

    /// Deletes up to `limit` check rows of messages that are final or gone.
    pub async fn forget_settled_checks(&self, limit: u32) -> Result<u64, RepoError> {
        let ids: Vec<String> = sqlx::query(
            "SELECT c.message_id FROM sms_receipt_checks c \
             LEFT JOIN sms_messages m ON m.id = c.message_id \
             WHERE m.id IS NULL OR m.status NOT IN ('queued', 'sent') LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .filter_map(|row| row.try_get("message_id").ok())
        .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let marks = vec!["?"; ids.len()].join(", ");
        let sql = format!("DELETE FROM sms_receipt_checks WHERE message_id IN ({marks})");
        let mut query = sqlx::query(&sql);
        for id in &ids {
            query = query.bind(id);
        }
        Ok(query.execute(&self.pool).await?.rows_affected())
    }

    /// Per pair, messages sent before `sent_before` whose receipt has not come.
    pub async fn receipt_gaps(
        &self,
        sent_before: DateTime<Utc>,
    ) -> Result<Vec<ReceiptGap>, RepoError> {
        Ok(sqlx::query_as(
            "SELECT country, operator, COUNT(*) AS messages FROM sms_messages \
             WHERE status IN ('queued', 'sent') AND created_at < ? GROUP BY country, operator",
        )
        .bind(sent_before)
        .fetch_all(&self.pool)
        .await?)
    }
}
