//! Quota reservations in MySQL (see `domain::quota`).

use chrono::{Duration, Utc};
use sqlx::Row;

use crate::{
    domain::{
        QuotaLedger, RepoError,
        quota::{Granted, Window, grant},
    },
    store::Store,
};

impl QuotaLedger for Store {
    /// All or none of each grant is counted, and two replicas never both
    /// take the last room in a window (the rows are locked while counted).
    async fn reserve(&self, windows: &[Window], asked: u64) -> Result<Granted, RepoError> {
        let mut attempt = 0;
        loop {
            match self.try_reserve(windows, asked).await {
                // Rolled back whole: it can simply run again.
                Err(RepoError::Conflict) if attempt < 3 => attempt += 1,
                other => return other,
            }
        }
    }

    async fn prune_quota_windows(&self) -> Result<u64, RepoError> {
        let before = Utc::now() - Duration::days(2);
        let done = sqlx::query("DELETE FROM quota_usage WHERE window_start < ? LIMIT 5000")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

impl Store {
    async fn try_reserve(&self, windows: &[Window], asked: u64) -> Result<Granted, RepoError> {
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;
        let mut used = Vec::with_capacity(windows.len());
        for window in windows {
            // An exclusive lock from the start: INSERT IGNORE would take a
            // shared one, and two replicas upgrading theirs deadlock.
            sqlx::query(
                "INSERT INTO quota_usage (subject, period, window_start, used) VALUES (?, ?, ?, 0) \
                 ON DUPLICATE KEY UPDATE used = used",
            )
            .bind(&window.subject)
            .bind(window.period.to_string())
            .bind(window.start)
            .execute(&mut *tx)
            .await?;
            let row = sqlx::query(
                "SELECT used FROM quota_usage WHERE subject = ? AND period = ? AND window_start = ? \
                 FOR UPDATE",
            )
            .bind(&window.subject)
            .bind(window.period.to_string())
            .bind(window.start)
            .fetch_one(&mut *tx)
            .await?;
            used.push(row.try_get::<u64, _>("used")?);
        }
        let granted = grant(windows, &used, asked, now);
        if granted.count > 0 {
            for window in windows {
                sqlx::query(
                    "UPDATE quota_usage SET used = used + ? \
                     WHERE subject = ? AND period = ? AND window_start = ?",
                )
                .bind(granted.count)
                .bind(&window.subject)
                .bind(window.period.to_string())
                .bind(window.start)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(granted)
    }
}
