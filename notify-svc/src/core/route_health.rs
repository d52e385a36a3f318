//! The route-health rule: per pair and provider account, the delivered
//! share of what that provider finished. While a (pair, provider) alert is
//! open, sms-svc moves the pair's traffic to the route's next provider,
//! sending the sick one only a probe share so its recovery can be seen.
//! notify-svc publishes which routes are sick; pure decisions live here.

use serde::{Deserialize, Serialize};

use super::rules::Verdict;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteHealthRule {
    pub enabled: bool,
    pub threshold: f64,
    /// High-priority pairs move at this higher share, so they move first.
    pub high_priority_threshold: f64,
    pub window_seconds: u64,
    /// Finished messages needed to move traffic away.
    pub min_finished: u64,
    pub hysteresis: f64,
    /// The share of the pair's traffic the sick provider keeps, to see it recover.
    pub probe_share: f64,
    /// Finished messages needed to bring traffic back: with the traffic
    /// moved, only probes finish there, so fewer than `min_finished`.
    pub min_probes: u64,
}

impl Default for RouteHealthRule {
    /// Below 60 % delivered over 5 minutes (80 % for high-priority pairs)
    /// with at least 50 finished is a route that has gone bad, not a few
    /// dead numbers; 2 % probes show a recovery within a window at 10
    /// messages a second.
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: 0.6,
            high_priority_threshold: 0.8,
            window_seconds: 300,
            min_finished: 50,
            hysteresis: 0.1,
            probe_share: 0.02,
            min_probes: 10,
        }
    }
}

impl RouteHealthRule {
    pub fn threshold(&self, high_priority: bool) -> f64 {
        if high_priority {
            self.high_priority_threshold
        } else {
            self.threshold
        }
    }

    /// Why these settings cannot be used, if they cannot.
    pub fn problem(&self) -> Option<&'static str> {
        let share = |value: f64| (0.0..=1.0).contains(&value);
        if !share(self.threshold) || !share(self.high_priority_threshold) {
            return Some("route_health thresholds must be between 0 and 1");
        }
        if !(0.0..=0.5).contains(&self.hysteresis) {
            return Some("route_health.hysteresis must be between 0 and 0.5");
        }
        if !(0.0..=0.5).contains(&self.probe_share) {
            return Some("route_health.probe_share must be between 0 and 0.5");
        }
        if self.min_finished == 0 || self.min_probes == 0 {
            return Some("route_health.min_finished and min_probes must be at least 1");
        }
        None
    }

    /// The verdict on one pair's provider: `delivered` of `finished` over
    /// the window, `open` while its traffic is moved away.
    pub fn verdict(
        &self,
        high_priority: bool,
        delivered: u64,
        finished: u64,
        open: bool,
    ) -> Verdict {
        if !self.enabled {
            return if open {
                Verdict::Resolve
            } else {
                Verdict::Keep
            };
        }
        let needed = if open {
            self.min_probes
        } else {
            self.min_finished
        };
        if finished < needed {
            return Verdict::Keep;
        }
        let share = delivered as f64 / finished as f64;
        let threshold = self.threshold(high_priority);
        match open {
            false if share < threshold => Verdict::Open,
            true if share >= (threshold + self.hysteresis).min(1.0) => Verdict::Resolve,
            _ => Verdict::Keep,
        }
    }
}

/// A route sms-svc should move traffic off: a pair's provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SickRoute {
    pub pair_id: String,
    pub provider: String,
}

/// What notify-svc publishes every evaluation: every route that is sick
/// now and the probe share. sms-svc replaces what it had with it, and
/// forgets it once `valid_for_seconds` pass without another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub sick: Vec<SickRoute>,
    pub probe_share: f64,
    pub valid_for_seconds: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_moves_below_the_threshold_and_returns_above_the_hysteresis() {
        let rule = RouteHealthRule::default();
        assert_eq!(rule.verdict(false, 29, 50, false), Verdict::Open);
        assert_eq!(rule.verdict(false, 30, 50, false), Verdict::Keep);
        // Too few finished to move, however bad.
        assert_eq!(rule.verdict(false, 0, 49, false), Verdict::Keep);
        // Back at 60 % is not enough: 70 % is, over as few as the probes.
        assert_eq!(rule.verdict(false, 6, 10, true), Verdict::Keep);
        assert_eq!(rule.verdict(false, 7, 10, true), Verdict::Resolve);
        assert_eq!(rule.verdict(false, 9, 9, true), Verdict::Keep);
    }

    #[test]
    fn high_priority_pairs_move_first() {
        let rule = RouteHealthRule::default();
        assert_eq!(rule.verdict(false, 35, 50, false), Verdict::Keep);
        assert_eq!(rule.verdict(true, 35, 50, false), Verdict::Open);
        // And come back only at 90 %.
        assert_eq!(rule.verdict(true, 8, 10, true), Verdict::Keep);
        assert_eq!(rule.verdict(true, 9, 10, true), Verdict::Resolve);
    }

    #[test]
    fn switched_off_it_returns_all_traffic() {
        let rule = RouteHealthRule {
            enabled: false,
            ..RouteHealthRule::default()
        };
        assert_eq!(rule.verdict(false, 0, 100, true), Verdict::Resolve);
        assert_eq!(rule.verdict(false, 0, 100, false), Verdict::Keep);
    }

    #[test]
    fn bad_settings_are_named() {
        let ok = RouteHealthRule::default();
        assert_eq!(ok.problem(), None);
        for bad in [
            RouteHealthRule {
                probe_share: 0.6,
                ..ok.clone()
            },
            RouteHealthRule {
                min_probes: 0,
                ..ok.clone()
            },
            RouteHealthRule {
                high_priority_threshold: 1.2,
                ..ok.clone()
            },
        ] {
            assert!(bad.problem().is_some(), "{bad:?}");
        }
    }
}
