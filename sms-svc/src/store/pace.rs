//! Provider accounts' send schedules (see [`PaceLedger`]).

use std::time::Duration;

use super::{Store, retry_conflicts};
use crate::domain::{PaceLedger, RepoError};

/// The server's clock, in microseconds.
const NOW_MICROS: &str = "CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)";

impl PaceLedger for Store {
    async fn book(
        &self,
        provider: &str,
        count: u32,
        spacing: Duration,
        ahead: Duration,
    ) -> Result<Option<Duration>, RepoError> {
        let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        let booked = micros(spacing).saturating_mul(i64::from(count));
        retry_conflicts(|| async {
            let mut tx = self.pool.begin().await?;
            let select = format!(
                "SELECT next_at, {NOW_MICROS} FROM sms_provider_pace WHERE provider = ? FOR UPDATE"
            );
            let row: Option<(i64, i64)> = sqlx::query_as(&select)
                .bind(provider)
                .fetch_optional(&mut *tx)
                .await?;
            let (next_at, now) = match row {
                Some(row) => row,
                None => {
                    // The account's first booking: its row, then as usual.
                    let insert = format!(
                        "INSERT IGNORE INTO sms_provider_pace (provider, next_at) VALUES (?, {NOW_MICROS})"
                    );
                    sqlx::query(&insert).bind(provider).execute(&mut *tx).await?;
                    sqlx::query_as(&select)
                        .bind(provider)
                        .fetch_one(&mut *tx)
                        .await?
                }
            };
            let start = next_at.max(now);
            if start - now > micros(ahead) {
                tx.rollback().await?;
                return Ok(None);
            }
            sqlx::query("UPDATE sms_provider_pace SET next_at = ? WHERE provider = ?")
                .bind(start.saturating_add(booked))
                .bind(provider)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some(Duration::from_micros(
                u64::try_from(start - now).unwrap_or(0),
            )))
        })
        .await
    }
}
