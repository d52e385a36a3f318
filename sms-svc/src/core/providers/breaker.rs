//! A circuit breaker per provider: after enough consecutive failures it stops
//! calling the provider for a cool-down, then lets one trial call through.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use tokio::sync::watch;

struct State {
    failures: u32,
    open_until: Option<Instant>,
    trial_in_flight: bool,
}

pub struct Breaker {
    name: String,
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
    open: watch::Sender<bool>,
}

impl Breaker {
    pub fn new(name: &str, threshold: u32, cooldown: Duration) -> Self {
        Self {
            name: name.to_string(),
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(State {
                failures: 0,
                open_until: None,
                trial_in_flight: false,
            }),
            open: watch::channel(false).0,
        }
    }

    /// Follows the breaker: `true` while open. Health reporting watches it.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.open.subscribe()
    }

    #[cfg(test)]
    fn is_open(&self) -> bool {
        *self.open.borrow()
    }

    /// Whether [`Self::allow`] would let a call out now, without taking
    /// the trial: routing sends to a provider whose cool-down is over, so
    /// the trial happens and traffic can come back.
    pub fn available(&self) -> bool {
        let Ok(state) = self.state.lock() else {
            return true;
        };
        match state.open_until {
            None => true,
            Some(until) => Instant::now() >= until && !state.trial_in_flight,
        }
    }

    /// Whether a call may go out now.
    pub fn allow(&self) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return true;
        };
        match state.open_until {
            None => true,
            Some(until) if Instant::now() < until => false,
            Some(_) if state.trial_in_flight => false,
            Some(_) => {
                state.trial_in_flight = true;
                true
            }
        }
    }

    pub fn success(&self) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.failures = 0;
        state.trial_in_flight = false;
        if state.open_until.take().is_some() {
            tracing::info!(provider = %self.name, "circuit breaker closed");
            self.open.send_replace(false);
        }
    }

    pub fn failure(&self) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.failures += 1;
        let was_open = state.open_until.is_some();
        if was_open || state.failures >= self.threshold {
            state.open_until = Some(Instant::now() + self.cooldown);
            state.trial_in_flight = false;
            if !was_open {
                tracing::warn!(
                    provider = %self.name,
                    failures = state.failures,
                    cooldown_secs = self.cooldown.as_secs(),
                    "circuit breaker opened"
                );
                self.open.send_replace(true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_lets_one_trial_through() {
        let breaker = Breaker::new("test", 3, Duration::from_millis(20));
        for _ in 0..2 {
            breaker.failure();
        }
        assert!(breaker.allow() && !breaker.is_open());
        breaker.failure();
        assert!(breaker.is_open() && !breaker.available() && !breaker.allow());
        std::thread::sleep(Duration::from_millis(25));
        assert!(breaker.available());
        assert!(breaker.allow(), "one trial after the cool-down");
        assert!(!breaker.available(), "the trial is out");
        assert!(!breaker.allow(), "only one");
        breaker.success();
        assert!(!breaker.is_open() && breaker.allow());
    }

    #[test]
    fn a_failed_trial_reopens() {
        let breaker = Breaker::new("test", 1, Duration::from_millis(10));
        breaker.failure();
        std::thread::sleep(Duration::from_millis(15));
        assert!(breaker.allow());
        breaker.failure();
        assert!(!breaker.allow() && breaker.is_open());
    }
}
