//! The route-health rule run over its windows: the switches it makes (an
//! alert and an audit entry each way) and the snapshot of sick routes
//! sms-svc sends by.

use std::collections::{HashMap, HashSet};

use chrono::{TimeDelta, Utc};
use serde_json::json;
use smsops_common::audit::{Entry, kind};

use super::{
    NotifyCore, NotifyError, RULE_ROUTE_HEALTH,
    route_health::{SickRoute, Snapshot},
    rules::{Rules, Verdict},
    text,
};
use crate::store::{AlertRow, NewAlert, RouteWindow};

/// How long sms-svc follows a snapshot without a newer one, in
/// evaluations: a notify-svc gone quiet leaves routes as configured.
const VALID_FOR_EVALUATIONS: u32 = 10;
const MIN_VALID_SECS: u64 = 10;

impl NotifyCore {
    /// Moves traffic off the routes that stopped delivering and back onto
    /// those that recovered. High-priority pairs come first.
    pub(super) async fn evaluate_route_health(
        &self,
        rules: &Rules,
        open: &[AlertRow],
    ) -> Result<(), NotifyError> {
        let rule = &rules.route_health;
        let open: HashMap<(&str, &str), &AlertRow> = open
            .iter()
            .filter(|a| a.rule == RULE_ROUTE_HEALTH)
            .filter_map(|a| Some(((a.pair_id.as_deref()?, a.provider.as_deref()?), a)))
            .collect();
        let since = Utc::now() - TimeDelta::seconds(rule.window_seconds as i64);
        let windows = self.store.route_windows(since).await?;
        // Asked (at most once a minute) only while something could move.
        let names = if open.is_empty() && windows.is_empty() {
            None
        } else {
            self.route_health.providers.names().await
        };
        // Unknown counts as yes, so failover is never held back; with one
        // account a sick route has nowhere to go (the success-rate alert
        // tells of it), and one taken out gets no traffic to move.
        let can_move = names.as_ref().is_none_or(|names| names.len() > 1);
        let configured =
            |provider: &str| names.as_ref().is_none_or(|names| names.contains(provider));
        let mut looked_at = HashSet::new();
        for w in &windows {
            let key = (w.pair_id.as_str(), w.provider.as_str());
            looked_at.insert(key);
            let current = open.get(&key).copied();
            let high_priority = w.is_high_priority != 0;
            let delivered = w.delivered.max(0) as u64;
            let finished = w.finished.max(0) as u64;
            let facts = text::RouteFacts {
                rate: text::RateFacts {
                    country: &w.country,
                    operator: &w.operator,
                    delivered,
                    finished,
                    threshold: rule.threshold(high_priority),
                    high_priority,
                    window_seconds: rule.window_seconds,
                },
                provider: &w.provider,
            };
            match (
                rule.verdict(high_priority, delivered, finished, current.is_some()),
                current,
            ) {
                (Verdict::Open, None) if can_move && configured(&w.provider) => {
                    self.fail_over(w, &facts).await?
                }
                (Verdict::Resolve, Some(alert)) => {
                    let html = text::route_back(&alert.id, &facts);
                    self.restore(
                        alert,
                        &html,
                        json!({ "delivered": delivered, "finished": finished }),
                    )
                    .await?;
                }
                _ => {}
            }
        }
        // Switched off, it gives every route back, with or without outcomes.
        if !rule.enabled {
            for (key, alert) in &open {
                if !looked_at.contains(key) {
                    self.restore(alert, &text::rule_off(alert), json!({ "rule_off": true }))
                        .await?;
                }
            }
        }
        // A provider sms-svc no longer has gets no probes, so nothing would
        // ever show it recovered: its routes are given back (an alert the
        // passes above resolved is not resolved twice).
        if let Some(names) = &names {
            for alert in gone(open.values().copied(), names) {
                self.restore(
                    alert,
                    &text::provider_gone(alert),
                    json!({ "provider_gone": true }),
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn fail_over(
        &self,
        w: &RouteWindow,
        facts: &text::RouteFacts<'_>,
    ) -> Result<(), NotifyError> {
        let id = uuid::Uuid::now_v7().to_string();
        let alert = NewAlert {
            texts: self.to_every_chat(&text::route_sick(&id, facts)),
            rule: RULE_ROUTE_HEALTH.into(),
            pair_id: Some(w.pair_id.clone()),
            country: Some(w.country.clone()),
            operator: Some(w.operator.clone()),
            provider: Some(w.provider.clone()),
            message: text::route_sick_plain(facts),
            notice: false,
            id: id.clone(),
        };
        // No cooldown: a route that goes bad again must move again at
        // once. The hysteresis and the window keep it from flapping.
        if !self.store.open(&alert, TimeDelta::zero()).await? {
            return Ok(());
        }
        tracing::warn!(alert = %id, pair = %w.pair_id, provider = %w.provider, delivered = facts.rate.delivered, finished = facts.rate.finished, "route failed over");
        let after = json!({
            "provider": w.provider,
            "alert_id": id,
            "delivered": facts.rate.delivered,
            "finished": facts.rate.finished,
            "threshold": facts.rate.threshold,
            "window_seconds": facts.rate.window_seconds,
        });
        self.audit
            .record_service(Entry::new(kind::ROUTE_FAILED_OVER, &w.pair_id).after(after))
            .await;
        Ok(())
    }

    async fn restore(
        &self,
        alert: &AlertRow,
        html: &str,
        facts: serde_json::Value,
    ) -> Result<(), NotifyError> {
        if !self
            .store
            .resolve(&alert.id, &self.to_every_chat(html))
            .await?
        {
            return Ok(());
        }
        let pair = alert.pair_id.clone().unwrap_or_default();
        let provider = alert.provider.clone().unwrap_or_default();
        tracing::info!(alert = %alert.id, pair = %pair, provider = %provider, "route restored");
        let mut after = json!({ "provider": provider, "alert_id": alert.id });
        if let (Some(after), Some(facts)) = (after.as_object_mut(), facts.as_object()) {
            after.extend(facts.clone());
        }
        self.audit
            .record_service(Entry::new(kind::ROUTE_RESTORED, &pair).after(after))
            .await;
        Ok(())
    }

    /// Tells every sms-svc replica which routes are sick now: all of them
    /// each time, so a replica that missed one or just started catches up.
    pub async fn publish_route_health(&self) -> Result<(), NotifyError> {
        let sick = self
            .store
            .sick_routes()
            .await?
            .into_iter()
            .map(|(pair_id, provider)| SickRoute { pair_id, provider })
            .collect();
        let rules = self.rules();
        let every = self.route_health.every.as_secs_f64();
        let snapshot = Snapshot {
            sick,
            probe_share: rules.route_health.probe_share,
            valid_for_seconds: ((every * f64::from(VALID_FOR_EVALUATIONS)).ceil() as u64)
                .max(MIN_VALID_SECS),
        };
        let body = serde_json::to_value(&snapshot).unwrap_or_default();
        let id = uuid::Uuid::now_v7().to_string();
        self.route_health.changes.notify(&id, "route.health", &body);
        Ok(())
    }
}

/// The open route alerts whose provider is not among `names`.
fn gone<'a>(
    open: impl Iterator<Item = &'a AlertRow>,
    names: &HashSet<String>,
) -> Vec<&'a AlertRow> {
    open.filter(|alert| {
        alert
            .provider
            .as_ref()
            .is_some_and(|provider| !names.contains(provider))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: &str, provider: Option<&str>) -> AlertRow {
        AlertRow {
            id: id.into(),
            rule: RULE_ROUTE_HEALTH.into(),
            pair_id: Some("pair".into()),
            country: Some("GB".into()),
            operator: Some("Vodafone".into()),
            state: "open".into(),
            opened_at: Utc::now(),
            resolved_at: None,
            message: String::new(),
            updated_at: Utc::now(),
            delivery: "sent".into(),
            provider: provider.map(str::to_string),
        }
    }

    #[test]
    fn only_routes_through_a_provider_no_longer_there_are_given_back() {
        let open = [
            alert("kept", Some("smsc")),
            alert("removed", Some("old-smsc")),
            alert("unnamed", None),
        ];
        let names: HashSet<String> = ["smsc".to_string(), "twilio".to_string()].into();
        let ids: Vec<&str> = gone(open.iter(), &names)
            .into_iter()
            .map(|a| a.id.as_str())
            .collect();
        assert_eq!(ids, ["removed"]);
    }
}
