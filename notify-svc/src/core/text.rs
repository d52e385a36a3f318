//! The Telegram messages (HTML parse mode) and the plain alert messages.
//! Each Telegram message names its alert, so an operator can look it up.

use super::event::SessionEvent;
use crate::store::AlertRow;

/// Escapes text for Telegram's HTML parse mode.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn short(id: &str) -> &str {
    id.get(id.len().saturating_sub(8)..).unwrap_or(id)
}

fn window(seconds: u64) -> String {
    if seconds.is_multiple_of(60) {
        format!("{} min", seconds / 60)
    } else {
        format!("{seconds} s")
    }
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

pub struct RateFacts<'a> {
    pub country: &'a str,
    pub operator: &'a str,
    pub delivered: u64,
    pub finished: u64,
    pub threshold: f64,
    pub high_priority: bool,
    pub window_seconds: u64,
}

impl RateFacts<'_> {
    fn rate(&self) -> f64 {
        if self.finished == 0 {
            0.0
        } else {
            self.delivered as f64 / self.finished as f64
        }
    }

    fn pair(&self) -> String {
        escape(&format!("{} / {}", self.country, self.operator))
    }

    fn priority(&self) -> &'static str {
        if self.high_priority {
            ", high priority"
        } else {
            ""
        }
    }
}

pub fn rate_low_plain(facts: &RateFacts<'_>) -> String {
    format!(
        "{} / {}: {} delivered of {} finished in the last {} (threshold {}{})",
        facts.country,
        facts.operator,
        percent(facts.rate()),
        facts.finished,
        window(facts.window_seconds),
        percent(facts.threshold),
        facts.priority()
    )
}

pub fn rate_low(id: &str, facts: &RateFacts<'_>) -> String {
    format!(
        "🔴 <b>Low success rate</b> {}: {} delivered of {} finished in the last {} (threshold {}{}). Alert <code>{}</code>",
        facts.pair(),
        percent(facts.rate()),
        facts.finished,
        window(facts.window_seconds),
        percent(facts.threshold),
        facts.priority(),
        short(id)
    )
}

pub fn rate_recovered(id: &str, facts: &RateFacts<'_>) -> String {
    format!(
        "✅ <b>Resolved</b> {}: success rate back to {} of {} finished (threshold {}). Alert <code>{}</code>",
        facts.pair(),
        percent(facts.rate()),
        facts.finished,
        percent(facts.threshold),
        short(id)
    )
}

/// A pair's delivered share through one provider account.
pub struct RouteFacts<'a> {
    pub rate: RateFacts<'a>,
    pub provider: &'a str,
}

pub fn route_sick_plain(facts: &RouteFacts<'_>) -> String {
    format!(
        "{} / {} through {}: {} delivered of {} finished in the last {} (threshold {}{}); new messages go to the route's next provider, if it has one",
        facts.rate.country,
        facts.rate.operator,
        facts.provider,
        percent(facts.rate.rate()),
        facts.rate.finished,
        window(facts.rate.window_seconds),
        percent(facts.rate.threshold),
        facts.rate.priority()
    )
}

pub fn route_sick(id: &str, facts: &RouteFacts<'_>) -> String {
    format!(
        "🔀 <b>Route failed over</b> {} off <code>{}</code>: {} delivered of {} finished in the last {} (threshold {}{}). Alert <code>{}</code>",
        facts.rate.pair(),
        escape(facts.provider),
        percent(facts.rate.rate()),
        facts.rate.finished,
        window(facts.rate.window_seconds),
        percent(facts.rate.threshold),
        facts.rate.priority(),
        short(id)
    )
}

pub fn route_back(id: &str, facts: &RouteFacts<'_>) -> String {
    format!(
        "✅ <b>Resolved</b> {}: <code>{}</code> delivers again, {} of {} finished; traffic returns to it. Alert <code>{}</code>",
        facts.rate.pair(),
        escape(facts.provider),
        percent(facts.rate.rate()),
        facts.rate.finished,
        short(id)
    )
}

pub struct GapFacts<'a> {
    pub country: &'a str,
    pub operator: &'a str,
    pub reconciled: u64,
    pub finished: u64,
    pub threshold: f64,
    pub window_seconds: u64,
}

impl GapFacts<'_> {
    fn share(&self) -> f64 {
        if self.finished == 0 {
            0.0
        } else {
            self.reconciled as f64 / self.finished as f64
        }
    }
}

pub fn gap_plain(facts: &GapFacts<'_>) -> String {
    format!(
        "{} / {}: {} of {} finished in the last {} had no delivery receipt and were reconciled with the provider ({}, threshold {})",
        facts.country,
        facts.operator,
        facts.reconciled,
        facts.finished,
        window(facts.window_seconds),
        percent(facts.share()),
        percent(facts.threshold)
    )
}

pub fn gap(id: &str, facts: &GapFacts<'_>) -> String {
    format!(
        "🔴 <b>Missing receipts</b> {}. Alert <code>{}</code>",
        escape(&gap_plain(facts)),
        short(id)
    )
}

pub fn gap_closed(id: &str, facts: &GapFacts<'_>) -> String {
    format!(
        "✅ <b>Resolved</b> {}: receipts arrive again, {} of {} finished reconciled. Alert <code>{}</code>",
        escape(&format!("{} / {}", facts.country, facts.operator)),
        facts.reconciled,
        facts.finished,
        short(id)
    )
}

pub struct SlowFacts<'a> {
    pub country: &'a str,
    pub operator: &'a str,
    pub p95_ms: f64,
    pub delivered: u64,
    pub threshold_seconds: f64,
    pub window_seconds: u64,
}

fn seconds(ms: f64) -> String {
    format!("{:.1} s", ms / 1000.0)
}

pub fn slow_plain(facts: &SlowFacts<'_>) -> String {
    format!(
        "{} / {}: 95% of the {} messages delivered in the last {} took up to {} from acceptance to delivery (threshold {})",
        facts.country,
        facts.operator,
        facts.delivered,
        window(facts.window_seconds),
        seconds(facts.p95_ms),
        seconds(facts.threshold_seconds * 1000.0)
    )
}

pub fn slow(id: &str, facts: &SlowFacts<'_>) -> String {
    format!(
        "🐢 <b>Slow delivery</b> {}. Alert <code>{}</code>",
        escape(&slow_plain(facts)),
        short(id)
    )
}

pub fn slow_over(id: &str, facts: &SlowFacts<'_>) -> String {
    format!(
        "✅ <b>Resolved</b> {}: delivery is fast again, p95 {} over {} delivered. Alert <code>{}</code>",
        escape(&format!("{} / {}", facts.country, facts.operator)),
        seconds(facts.p95_ms),
        facts.delivered,
        short(id)
    )
}

pub struct BurstFacts<'a> {
    pub country: &'a str,
    pub operator: &'a str,
    pub code: &'a str,
    pub count: u64,
    pub window_seconds: u64,
}

pub fn burst_plain(facts: &BurstFacts<'_>) -> String {
    format!(
        "{} / {}: {} messages ended with error {} in the last {}",
        facts.country,
        facts.operator,
        facts.count,
        facts.code,
        window(facts.window_seconds)
    )
}

pub fn burst(id: &str, facts: &BurstFacts<'_>) -> String {
    format!(
        "🔴 <b>Failure burst</b> {}. Alert <code>{}</code>",
        escape(&burst_plain(facts)),
        short(id)
    )
}

fn pair_of(alert: &AlertRow) -> String {
    escape(&format!(
        "{} / {}",
        alert.country.as_deref().unwrap_or("?"),
        alert.operator.as_deref().unwrap_or("?")
    ))
}

pub fn burst_over(alert: &AlertRow) -> String {
    format!(
        "✅ <b>Resolved</b> {}: the failure burst is over. Alert <code>{}</code>",
        pair_of(alert),
        short(&alert.id)
    )
}

pub fn rule_off(alert: &AlertRow) -> String {
    format!(
        "✅ <b>Resolved</b> {}: rule {} was switched off. Alert <code>{}</code>",
        pair_of(alert),
        escape(&alert.rule),
        short(&alert.id)
    )
}

pub fn provider_gone(alert: &AlertRow) -> String {
    format!(
        "✅ <b>Resolved</b> {}: provider {} is no longer configured; the route sends by its others. Alert <code>{}</code>",
        pair_of(alert),
        escape(alert.provider.as_deref().unwrap_or("?")),
        short(&alert.id)
    )
}

pub fn session_failed(id: &str, event: &SessionEvent, reason: &str) -> String {
    format!(
        "🔴 <b>Session failed</b> {}: session <code>{}</code>: {}. Alert <code>{}</code>",
        escape(&format!("{} / {}", event.country, event.operator)),
        escape(&event.session_id),
        escape(reason),
        short(id)
    )
}

pub fn session_recovered(event: &SessionEvent) -> String {
    format!(
        "✅ <b>Resolved</b> {}: session <code>{}</code> is running.",
        escape(&format!("{} / {}", event.country, event.operator)),
        escape(&event.session_id)
    )
}

pub fn manual(id: &str, message: &str, by: &str) -> String {
    format!(
        "📣 <b>Alert</b> from {}: {}. Alert <code>{}</code>",
        escape(by),
        escape(message),
        short(id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        let html = manual("0193c8a0-0000-7000-8000-000000000001", "<b>&", "ops@x");
        assert!(html.contains("&lt;b&gt;&amp;"), "{html}");
        assert!(html.ends_with("<code>00000001</code>"), "{html}");
    }
}
