//! Pacing to a rate: message k after the start is due at start + k / rate,
//! so sends are evenly spaced at any rate, with no bursts at minute (or
//! second) boundaries. A run that falls behind does not catch up in a
//! burst: at most one second's worth is ever due at once.

use tokio::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Pacer {
    /// Messages per second.
    rate: f64,
    /// The time message `seq0` was due.
    start: Instant,
    seq0: u64,
}

impl Pacer {
    /// `next` is due at `now`.
    pub fn new(rate: f64, next: u64, now: Instant) -> Self {
        Self {
            rate: rate.max(f64::MIN_POSITIVE),
            start: now,
            seq0: next,
        }
    }

    /// One past the last message due by `now`, given `next` is the first
    /// not yet sent.
    pub fn due(&mut self, now: Instant, next: u64) -> u64 {
        let elapsed = now.saturating_duration_since(self.start).as_secs_f64();
        let due = self.seq0 + (elapsed * self.rate).floor() as u64 + 1;
        let most = (self.rate.ceil() as u64).max(1);
        if due > next + most {
            // Fell behind (a slow call, a pause): start afresh from now.
            *self = Self::new(self.rate, next, now);
            return next + 1;
        }
        due
    }

    /// When message `next` is due.
    pub fn next_at(&self, next: u64) -> Instant {
        let ahead = next.saturating_sub(self.seq0) as f64 / self.rate;
        self.start + Duration::from_secs_f64(ahead.min(1e9))
    }

    /// A new rate from now on, keeping the spacing of what was sent.
    pub fn set_rate(&mut self, rate: f64, next: u64, now: Instant) {
        let rate = rate.max(f64::MIN_POSITIVE);
        if (rate - self.rate).abs() <= self.rate * 1e-9 {
            return;
        }
        let due_at = self.next_at(next).max(now);
        self.rate = rate;
        self.seq0 = next;
        self.start = due_at;
    }

    /// `next` is due at `at` (after a pause).
    pub fn restart_at(&mut self, next: u64, at: Instant) {
        self.seq0 = next;
        self.start = at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_evenly_spaced() {
        let now = Instant::now();
        let mut pacer = Pacer::new(10.0, 0, now);
        assert_eq!(pacer.due(now, 0), 1);
        assert_eq!(pacer.next_at(1), now + Duration::from_millis(100));
        assert_eq!(pacer.due(now + Duration::from_millis(99), 1), 1);
        assert_eq!(pacer.due(now + Duration::from_millis(100), 1), 2);
        // 3 s at 10/s is 30 messages after the first.
        assert_eq!(pacer.due(now + Duration::from_millis(3000), 30), 31);
    }

    #[test]
    fn falling_behind_does_not_burst() {
        let now = Instant::now();
        let mut pacer = Pacer::new(10.0, 0, now);
        let later = now + Duration::from_secs(60);
        assert_eq!(pacer.due(later, 1), 2);
        assert_eq!(pacer.next_at(2), later + Duration::from_millis(100));
    }
}
