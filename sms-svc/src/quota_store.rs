//! Quota reservations in MySQL (see `domain::quota`).

use chrono::{DateTime, Duration, Utc};
use sqlx::{MySql, QueryBuilder, Row};

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
    /// Three statements however many windows: a send's call pays for its
    /// reservation once, not once a window.
    async fn try_reserve(&self, windows: &[Window], asked: u64) -> Result<Granted, RepoError> {
        let now = Utc::now();
        if windows.is_empty() {
            return Ok(grant(windows, &[], asked, now));
        }
        let mut tx = self.pool.begin().await?;
        // An exclusive lock from the start, taken in the windows' order:
        // INSERT IGNORE would take a shared one, and two replicas
        // upgrading theirs deadlock.
        let mut create = QueryBuilder::<MySql>::new(
            "INSERT INTO quota_usage (subject, period, window_start, used) ",
        );
        create.push_values(windows, |mut row, window| {
            row.push_bind(&window.subject)
                .push_bind(window.period.to_string())
                .push_bind(window.start)
                .push_bind(0u64);
        });
        create.push(" ON DUPLICATE KEY UPDATE used = used");
        create.build().execute(&mut *tx).await?;
        let mut select = QueryBuilder::<MySql>::new(
            "SELECT subject, period, window_start, used FROM quota_usage FORCE INDEX (PRIMARY) WHERE ",
        );
        matching(&mut select, windows);
        select.push(" FOR UPDATE");
        let rows = select.build().fetch_all(&mut *tx).await?;
        let mut used: Vec<Option<u64>> = vec![None; windows.len()];
        for row in rows {
            let subject: String = row.try_get("subject")?;
            let period: String = row.try_get("period")?;
            let start: DateTime<Utc> = row.try_get("window_start")?;
            let at = windows.iter().position(|w| {
                w.subject == subject && period.starts_with(w.period) && w.start == start
            });
            if let Some(at) = at {
                used[at] = Some(row.try_get("used")?);
            }
        }
        // A window not read back must not count as empty: refuse instead.
        let used: Vec<u64> = used
            .into_iter()
            .collect::<Option<_>>()
            .ok_or_else(|| RepoError::Failed("a quota window did not read back".into()))?;
        let granted = grant(windows, &used, asked, now);
        if granted.count > 0 {
            let mut count = QueryBuilder::<MySql>::new(
                "UPDATE quota_usage FORCE INDEX (PRIMARY) SET used = used + ",
            );
            count.push_bind(granted.count).push(" WHERE ");
            matching(&mut count, windows);
            count.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(granted)
    }
}

/// Each window's row by its whole primary key. The primary key is forced:
/// MariaDB otherwise reads these points through `quota_usage_window` (which
/// holds the key's columns too) and, under REPEATABLE READ, locks the gaps
/// beside them, holding back another user's first send of the minute
/// (tried: an insert beside a locked row waits without the hint, not with it).
fn matching(query: &mut QueryBuilder<'_, MySql>, windows: &[Window]) {
    for (i, window) in windows.iter().enumerate() {
        if i > 0 {
            query.push(" OR ");
        }
        query
            .push("(subject = ")
            .push_bind(window.subject.clone())
            .push(" AND period = ")
            .push_bind(window.period.to_string())
            .push(" AND window_start = ")
            .push_bind(window.start)
            .push(")");
    }
}
