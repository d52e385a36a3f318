//! The alert rules and the decisions they make. Pure functions, so the
//! thresholds and hysteresis are tested without a database.

use serde::{Deserialize, Serialize};

use super::{NotifyError, route_health::RouteHealthRule};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rules {
    pub success_rate: SuccessRateRule,
    pub failure_burst: FailureBurstRule,
    pub session_failed: SessionFailedRule,
    /// Absent from rules stored before it existed: those get its defaults.
    #[serde(default)]
    pub receipt_gap: ReceiptGapRule,
    /// Absent from rules stored before it existed: those get its defaults.
    #[serde(default)]
    pub slow_delivery: SlowDeliveryRule,
    /// Absent from rules stored before it existed: those get its defaults.
    #[serde(default)]
    pub route_health: RouteHealthRule,
    pub cooldown_seconds: u64,
}

/// Opens when the 95th percentile of a pair's acceptance-to-delivered
/// times over the window, with at least `min_delivered` timed, passes
/// `threshold_seconds`; resolves at or below threshold − hysteresis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlowDeliveryRule {
    pub enabled: bool,
    pub threshold_seconds: f64,
    pub window_seconds: u64,
    pub min_delivered: u64,
    pub hysteresis_seconds: f64,
}

impl Default for SlowDeliveryRule {
    /// One code in twenty taking over half a minute is a login page that
    /// times out; a route with a few slow carriers stays under it.
    fn default() -> Self {
        Self {
            enabled: true,
            threshold_seconds: 30.0,
            window_seconds: 300,
            min_delivered: 20,
            hysteresis_seconds: 5.0,
        }
    }
}

/// Opens when a pair's share of finished messages whose status had to be
/// reconciled (their receipt never came) passes `threshold` over the
/// window, with at least `min_finished` finished; resolves at or below
/// threshold − hysteresis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptGapRule {
    pub enabled: bool,
    pub threshold: f64,
    pub window_seconds: u64,
    pub min_finished: u64,
    pub hysteresis: f64,
}

impl Default for ReceiptGapRule {
    /// One receipt in ten missing is a route or callback path gone bad;
    /// a few per cent is the noise of carriers that send none.
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: 0.1,
            window_seconds: 300,
            min_finished: 20,
            hysteresis: 0.05,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuccessRateRule {
    pub enabled: bool,
    pub threshold: f64,
    pub high_priority_threshold: f64,
    pub window_seconds: u64,
    pub min_finished: u64,
    pub hysteresis: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureBurstRule {
    pub enabled: bool,
    pub count: u64,
    pub window_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionFailedRule {
    pub enabled: bool,
}

impl Default for Rules {
    /// The defaults of the product brief: below 50 % over 5 minutes with at
    /// least 20 finished, 80 % for high-priority pairs.
    fn default() -> Self {
        Self {
            success_rate: SuccessRateRule {
                enabled: true,
                threshold: 0.5,
                high_priority_threshold: 0.8,
                window_seconds: 300,
                min_finished: 20,
                hysteresis: 0.05,
            },
            failure_burst: FailureBurstRule {
                enabled: true,
                count: 50,
                window_seconds: 60,
            },
            session_failed: SessionFailedRule { enabled: true },
            receipt_gap: ReceiptGapRule::default(),
            slow_delivery: SlowDeliveryRule::default(),
            route_health: RouteHealthRule::default(),
            cooldown_seconds: 600,
        }
    }
}

const MAX_WINDOW_SECS: u64 = 24 * 3600;

impl Rules {
    /// The longest window any rule looks back over.
    pub fn longest_window(&self) -> u64 {
        self.success_rate
            .window_seconds
            .max(self.failure_burst.window_seconds)
            .max(self.receipt_gap.window_seconds)
            .max(self.slow_delivery.window_seconds)
            .max(self.route_health.window_seconds)
    }

    pub fn validate(&self) -> Result<(), NotifyError> {
        let invalid = |message: &str| Err(NotifyError::InvalidArgument(message.into()));
        let share = |value: f64| (0.0..=1.0).contains(&value);
        let rate = &self.success_rate;
        if !share(rate.threshold) || !share(rate.high_priority_threshold) {
            return invalid("success_rate thresholds must be between 0 and 1");
        }
        if !(0.0..=0.5).contains(&rate.hysteresis) {
            return invalid("success_rate.hysteresis must be between 0 and 0.5");
        }
        if rate.min_finished == 0 {
            return invalid("success_rate.min_finished must be at least 1");
        }
        let gap = &self.receipt_gap;
        if !share(gap.threshold) || !(0.0..=0.5).contains(&gap.hysteresis) {
            return invalid(
                "receipt_gap.threshold must be between 0 and 1, its hysteresis 0 to 0.5",
            );
        }
        if gap.min_finished == 0 {
            return invalid("receipt_gap.min_finished must be at least 1");
        }
        let slow = &self.slow_delivery;
        if !(0.1..=MAX_WINDOW_SECS as f64).contains(&slow.threshold_seconds) {
            return invalid("slow_delivery.threshold_seconds must be 0.1 s to 24 h");
        }
        if !(0.0..slow.threshold_seconds).contains(&slow.hysteresis_seconds) {
            return invalid(
                "slow_delivery.hysteresis_seconds must be at least 0 and below its threshold",
            );
        }
        if slow.min_delivered == 0 {
            return invalid("slow_delivery.min_delivered must be at least 1");
        }
        if self.failure_burst.count == 0 {
            return invalid("failure_burst.count must be at least 1");
        }
        if let Some(problem) = self.route_health.problem() {
            return invalid(problem);
        }
        for window in [
            rate.window_seconds,
            self.failure_burst.window_seconds,
            gap.window_seconds,
            slow.window_seconds,
            self.route_health.window_seconds,
        ] {
            if !(10..=MAX_WINDOW_SECS).contains(&window) {
                return invalid("windows must be 10 s to 24 h");
            }
        }
        if self.cooldown_seconds > MAX_WINDOW_SECS {
            return invalid("cooldown_seconds must be at most 24 h");
        }
        Ok(())
    }
}

/// What a rule says about one pair now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    Open,
    Resolve,
    Keep,
}

/// A rule switched off resolves what it had open and opens nothing.
fn switched_off(open: bool) -> Verdict {
    if open {
        Verdict::Resolve
    } else {
        Verdict::Keep
    }
}

/// The success-rate rule for one pair's window. Too few finished messages
/// say nothing either way, so an open alert stays open through a lull.
pub fn success_rate_verdict(
    rule: &SuccessRateRule,
    high_priority: bool,
    delivered: u64,
    finished: u64,
    open: bool,
) -> Verdict {
    if !rule.enabled {
        return switched_off(open);
    }
    if finished < rule.min_finished {
        return Verdict::Keep;
    }
    let threshold = threshold(rule, high_priority);
    let rate = delivered as f64 / finished as f64;
    match open {
        false if rate < threshold => Verdict::Open,
        true if rate >= (threshold + rule.hysteresis).min(1.0) => Verdict::Resolve,
        _ => Verdict::Keep,
    }
}

pub fn threshold(rule: &SuccessRateRule, high_priority: bool) -> f64 {
    if high_priority {
        rule.high_priority_threshold
    } else {
        rule.threshold
    }
}

/// The failure-burst rule for one pair: the most messages one error code
/// ended in the window.
pub fn burst_verdict(rule: &FailureBurstRule, worst: u64, open: bool) -> Verdict {
    if !rule.enabled {
        return switched_off(open);
    }
    match open {
        false if worst >= rule.count => Verdict::Open,
        true if worst * 2 < rule.count => Verdict::Resolve,
        _ => Verdict::Keep,
    }
}

/// The receipt-gap rule for one pair's window: `reconciled` of `finished`
/// came without their receipt.
pub fn receipt_gap_verdict(
    rule: &ReceiptGapRule,
    reconciled: u64,
    finished: u64,
    open: bool,
) -> Verdict {
    if !rule.enabled {
        return switched_off(open);
    }
    if finished < rule.min_finished {
        return Verdict::Keep;
    }
    let share = reconciled as f64 / finished as f64;
    match open {
        false if share > rule.threshold => Verdict::Open,
        true if share <= (rule.threshold - rule.hysteresis).max(0.0) => Verdict::Resolve,
        _ => Verdict::Keep,
    }
}

/// The slow-delivery rule for one pair's window: `p95_ms` over `delivered`
/// timed messages.
pub fn slow_delivery_verdict(
    rule: &SlowDeliveryRule,
    p95_ms: f64,
    delivered: u64,
    open: bool,
) -> Verdict {
    if !rule.enabled {
        return switched_off(open);
    }
    if delivered < rule.min_delivered {
        return Verdict::Keep;
    }
    let p95 = p95_ms / 1000.0;
    match open {
        false if p95 > rule.threshold_seconds => Verdict::Open,
        true if p95 <= rule.threshold_seconds - rule.hysteresis_seconds => Verdict::Resolve,
        _ => Verdict::Keep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_rate_opens_below_and_resolves_above_the_hysteresis() {
        let rule = Rules::default().success_rate;
        assert_eq!(
            success_rate_verdict(&rule, false, 6, 20, false),
            Verdict::Open
        );
        // Too few finished: no verdict.
        assert_eq!(
            success_rate_verdict(&rule, false, 0, 19, false),
            Verdict::Keep
        );
        // Back at 50 %: not yet, 55 % is needed.
        assert_eq!(
            success_rate_verdict(&rule, false, 10, 20, true),
            Verdict::Keep
        );
        assert_eq!(
            success_rate_verdict(&rule, false, 11, 20, true),
            Verdict::Resolve
        );
    }

    #[test]
    fn high_priority_pairs_use_their_own_threshold() {
        let rule = Rules::default().success_rate;
        assert_eq!(
            success_rate_verdict(&rule, false, 14, 20, false),
            Verdict::Keep
        );
        assert_eq!(
            success_rate_verdict(&rule, true, 14, 20, false),
            Verdict::Open
        );
    }

    #[test]
    fn bursts_resolve_below_half() {
        let rule = Rules::default().failure_burst;
        assert_eq!(burst_verdict(&rule, 50, false), Verdict::Open);
        assert_eq!(burst_verdict(&rule, 30, true), Verdict::Keep);
        assert_eq!(burst_verdict(&rule, 24, true), Verdict::Resolve);
    }

    #[test]
    fn receipt_gaps_open_above_the_threshold_and_resolve_below_the_hysteresis() {
        let rule = ReceiptGapRule::default();
        assert_eq!(receipt_gap_verdict(&rule, 3, 20, false), Verdict::Open);
        assert_eq!(receipt_gap_verdict(&rule, 2, 20, false), Verdict::Keep);
        assert_eq!(receipt_gap_verdict(&rule, 19, 19, false), Verdict::Keep);
        // 7.5 % is under the threshold but not under threshold − hysteresis.
        assert_eq!(receipt_gap_verdict(&rule, 3, 40, true), Verdict::Keep);
        assert_eq!(receipt_gap_verdict(&rule, 1, 40, true), Verdict::Resolve);
        let off = ReceiptGapRule {
            enabled: false,
            ..rule
        };
        assert_eq!(receipt_gap_verdict(&off, 20, 20, true), Verdict::Resolve);
    }

    #[test]
    fn slow_delivery_opens_above_the_threshold_and_resolves_below_the_hysteresis() {
        let rule = SlowDeliveryRule::default();
        assert_eq!(
            slow_delivery_verdict(&rule, 31_000.0, 20, false),
            Verdict::Open
        );
        assert_eq!(
            slow_delivery_verdict(&rule, 30_000.0, 20, false),
            Verdict::Keep
        );
        // Too few delivered say nothing, either way.
        assert_eq!(
            slow_delivery_verdict(&rule, 90_000.0, 19, false),
            Verdict::Keep
        );
        assert_eq!(
            slow_delivery_verdict(&rule, 1_000.0, 19, true),
            Verdict::Keep
        );
        // Under the threshold but not by the hysteresis: stays open.
        assert_eq!(
            slow_delivery_verdict(&rule, 27_000.0, 40, true),
            Verdict::Keep
        );
        assert_eq!(
            slow_delivery_verdict(&rule, 25_000.0, 40, true),
            Verdict::Resolve
        );
        let off = SlowDeliveryRule {
            enabled: false,
            ..rule
        };
        assert_eq!(
            slow_delivery_verdict(&off, 90_000.0, 40, true),
            Verdict::Resolve
        );
    }

    #[test]
    fn rules_stored_before_the_receipt_gap_rule_read_back_with_its_defaults() {
        let mut stored = serde_json::to_value(Rules::default()).unwrap();
        stored.as_object_mut().unwrap().remove("receipt_gap");
        stored.as_object_mut().unwrap().remove("slow_delivery");
        stored.as_object_mut().unwrap().remove("route_health");
        let rules: Rules = serde_json::from_value(stored).unwrap();
        assert_eq!(rules.route_health, RouteHealthRule::default());
        assert_eq!(rules.receipt_gap, ReceiptGapRule::default());
        assert_eq!(rules.slow_delivery, SlowDeliveryRule::default());
    }

    #[test]
    fn bad_rules_are_refused() {
        let mut rules = Rules::default();
        rules.success_rate.threshold = 1.5;
        assert!(rules.validate().is_err());
        let mut rules = Rules::default();
        rules.failure_burst.window_seconds = 1;
        assert!(rules.validate().is_err());
        let mut rules = Rules::default();
        rules.receipt_gap.threshold = -0.1;
        assert!(rules.validate().is_err());
        let mut rules = Rules::default();
        rules.slow_delivery.hysteresis_seconds = rules.slow_delivery.threshold_seconds;
        assert!(rules.validate().is_err());
        assert!(Rules::default().validate().is_ok());
    }
}
