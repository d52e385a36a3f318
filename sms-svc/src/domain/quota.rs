//! Quotas on sending: a user's messages per minute and per day, and one
//! provider account's messages per day. A batch reserves what it sends
//! before it is accepted, in MySQL, so every replica sees one count.

use chrono::{DateTime, Duration, DurationRound, Utc};
use smsops_common::auth::Quota;

/// One window a send counts against.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Window {
    pub subject: String,
    /// `m` (a minute) or `d` (a UTC day).
    pub period: char,
    pub start: DateTime<Utc>,
    pub limit: u64,
}

impl Window {
    pub fn ends_at(&self) -> DateTime<Utc> {
        self.start + length(self.period)
    }
}

fn length(period: char) -> Duration {
    if period == 'm' {
        Duration::minutes(1)
    } else {
        Duration::days(1)
    }
}

/// Who a send is charged to and under which quota.
#[derive(Debug, Clone)]
pub struct Charge {
    /// `user:<id>`: the sender, or a session's starter.
    pub subject: String,
    pub quota: Quota,
}

/// The windows a batch sent now reserves against: the charge's minute and
/// day, and the account's day when it has a cap.
pub fn windows(charge: &Charge, account: Option<(&str, u64)>, now: DateTime<Utc>) -> Vec<Window> {
    let start = |period| now.duration_trunc(length(period)).unwrap_or(now);
    let mut windows = Vec::new();
    for (period, limit) in [('m', charge.quota.per_minute), ('d', charge.quota.per_day)] {
        if let Some(limit) = limit {
            windows.push(Window {
                subject: charge.subject.clone(),
                period,
                start: start(period),
                limit,
            });
        }
    }
    if let Some((subject, limit)) = account {
        windows.push(Window {
            subject: subject.to_string(),
            period: 'd',
            start: start('d'),
            limit,
        });
    }
    // Locked in one order by every replica, so two never wait on each other.
    windows.sort();
    windows
}

/// What a reservation got: how many of the asked, and when the window that
/// held it back opens again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    pub count: u64,
    pub retry_after: Option<u32>,
    pub limited_by: Option<String>,
}

/// The grant for `asked` messages with `used` already counted in each
/// window (in the order of `windows`).
pub fn grant(windows: &[Window], used: &[u64], asked: u64, now: DateTime<Utc>) -> Granted {
    let mut count = asked;
    let mut holding: Option<&Window> = None;
    for (window, used) in windows.iter().zip(used) {
        let room = window.limit.saturating_sub(*used);
        if room < count {
            count = room;
            holding = Some(window);
        }
    }
    Granted {
        count,
        retry_after: holding.map(|w| {
            let secs = (w.ends_at() - now).num_milliseconds().max(0) as u64;
            u32::try_from(secs.div_ceil(1000))
                .unwrap_or(u32::MAX)
                .max(1)
        }),
        limited_by: holding.map(|w| {
            let what = if w.subject.starts_with("account:") {
                "the provider account's daily cap"
            } else if w.period == 'm' {
                "your quota per minute"
            } else {
                "your quota per day"
            };
            format!("{what} ({})", w.limit)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn a_batch_gets_what_the_tightest_window_leaves() {
        let now = at("2026-12-02T10:15:42Z");
        let charge = Charge {
            subject: "user:u1".into(),
            quota: Quota {
                per_minute: Some(20),
                per_day: Some(1000),
            },
        };
        let windows = windows(&charge, Some(("account:twilio", 50)), now);
        assert_eq!(windows.len(), 3);
        assert!(
            windows
                .iter()
                .any(|w| w.period == 'm' && w.start == at("2026-12-02T10:15:00Z"))
        );
        assert!(
            windows
                .iter()
                .all(|w| w.period == 'm' || w.start == at("2026-12-02T00:00:00Z"))
        );
        let by = |subject: &str, period: char| {
            windows
                .iter()
                .position(|w| w.subject == subject && w.period == period)
                .unwrap_or(usize::MAX)
        };
        let mut used = vec![0; 3];
        used[by("user:u1", 'm')] = 15;
        let granted = grant(&windows, &used, 10, now);
        assert_eq!(granted.count, 5);
        assert_eq!(granted.retry_after, Some(18));
        assert!(
            granted
                .limited_by
                .unwrap_or_default()
                .contains("per minute")
        );
        used[by("account:twilio", 'd')] = 50;
        assert_eq!(grant(&windows, &used, 10, now).count, 0);
        let free = grant(&windows, &[0, 0, 0], 10, now);
        assert_eq!((free.count, free.retry_after), (10, None));
    }

    #[test]
    fn no_quota_and_no_cap_reserve_nothing() {
        let charge = Charge {
            subject: "user:admin".into(),
            quota: Quota::UNLIMITED,
        };
        assert!(windows(&charge, None, Utc::now()).is_empty());
    }
}
