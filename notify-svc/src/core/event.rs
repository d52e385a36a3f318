//! The events notify-svc reads: SMS outcomes from `sms.events` and session
//! lifecycle steps from `session.events` (docs/events.md).

use chrono::{DateTime, Utc};
use serde::Deserialize;

#[derive(Debug, Clone)]
pub enum Event {
    Sms(SmsOutcome),
    Session(SessionEvent),
}

/// A message's final status; the other statuses are not bound to our queue.
#[derive(Debug, Clone, Deserialize)]
pub struct SmsOutcome {
    pub event_id: String,
    pub occurred_at: DateTime<Utc>,
    pub country_operator_id: String,
    pub country: String,
    pub operator: String,
    #[serde(default)]
    pub is_high_priority: bool,
    pub status: String,
    #[serde(default)]
    pub error_code: Option<String>,
    /// The status came from receipt reconciliation (docs/events.md).
    #[serde(default)]
    pub reconciled: bool,
    /// When sms-svc accepted the message; absent on reported results.
    #[serde(default)]
    pub accepted_at: Option<DateTime<Utc>>,
    /// The provider account that carried it (`external` for reported results).
    #[serde(default)]
    pub provider: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SessionEvent {
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    pub session_id: String,
    pub country_operator_id: String,
    pub country: String,
    pub operator: String,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type", default)]
    kind: String,
}

impl Event {
    /// Reads an event body; `None` for what is neither (poison).
    pub fn parse(body: &[u8]) -> Option<Self> {
        let envelope: Envelope = serde_json::from_slice(body).ok()?;
        let event = if envelope.kind.starts_with("session.") {
            Event::Session(serde_json::from_slice(body).ok()?)
        } else {
            Event::Sms(serde_json::from_slice(body).ok()?)
        };
        let (id, pair, country, operator) = match &event {
            Event::Sms(e) => (&e.event_id, &e.country_operator_id, &e.country, &e.operator),
            Event::Session(e) => (&e.event_id, &e.country_operator_id, &e.country, &e.operator),
        };
        let valid = !id.is_empty()
            && id.len() <= 36
            && !pair.is_empty()
            && pair.len() <= 64
            && country.len() <= 10
            && operator.len() <= 50;
        valid.then_some(event)
    }

    pub fn id(&self) -> &str {
        match self {
            Event::Sms(e) => &e.event_id,
            Event::Session(e) => &e.event_id,
        }
    }
}

impl SmsOutcome {
    /// The error code kept for bursts: undelivered and failed only, and not
    /// the codes reconciliation ends late messages with: a backlog of them
    /// ends together, long after the messages were sent, and is the
    /// receipt-gap rule's to report.
    pub fn burst_code(&self) -> Option<&str> {
        let code = self.error_code.as_deref()?;
        if self.reconciled && code.starts_with("receipt_") {
            return None;
        }
        let finished_badly = matches!(self.status.as_str(), "undelivered" | "failed");
        (finished_badly && !code.is_empty() && code.len() <= 64).then_some(code)
    }
}

impl SmsOutcome {
    /// The provider account whose delivery this outcome tells of, for the
    /// route-health rule, and whether it was delivered. None for results
    /// reported from outside, and for failures that never reached a
    /// provider (our `provider_*` codes: outages are the breaker's to see).
    pub fn route_outcome(&self) -> Option<(&str, bool)> {
        let provider = self.provider.as_deref()?;
        let named = (1..=32).contains(&provider.len()) && provider != "external";
        let not_taken = self.status == "failed"
            && self
                .error_code
                .as_deref()
                .is_some_and(|code| code.starts_with("provider_"));
        let finished = matches!(self.status.as_str(), "delivered" | "undelivered" | "failed");
        (named && finished && !not_taken).then_some((provider, self.status == "delivered"))
    }

    /// How long a delivered message took from its acceptance, in ms; none
    /// for the other outcomes, for a status reconciliation found (its
    /// time is when we asked, not when it was delivered) and without an
    /// acceptance time. A clock behind sms-svc's counts as no time.
    pub fn delivery_ms(&self) -> Option<u64> {
        if self.status != "delivered" || self.reconciled {
            return None;
        }
        let ms = (self.occurred_at - self.accepted_at?).num_milliseconds();
        Some(u64::try_from(ms).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_kinds_and_refuses_poison() {
        let sms = br#"{"event_id":"e1","type":"sms.failed","occurred_at":"2026-11-22T10:00:00Z","country_operator_id":"p","country":"GB","operator":"V","status":"failed","error_code":"30003"}"#;
        assert!(
            matches!(Event::parse(sms), Some(Event::Sms(e)) if e.burst_code() == Some("30003"))
        );
        let session = br#"{"event_id":"e2","type":"session.failed","occurred_at":"2026-11-22T10:00:00Z","session_id":"s","country_operator_id":"p","country":"GB","operator":"V","reason":"x"}"#;
        assert!(matches!(Event::parse(session), Some(Event::Session(_))));
        assert!(Event::parse(b"{}").is_none());
        assert!(Event::parse(b"garbage").is_none());
    }

    #[test]
    fn only_what_a_provider_carried_counts_for_its_route() {
        let outcome = |status: &str, code: Option<&str>, provider: Option<&str>| SmsOutcome {
            event_id: "e".into(),
            occurred_at: Utc::now(),
            country_operator_id: "p".into(),
            country: "GB".into(),
            operator: "V".into(),
            is_high_priority: false,
            status: status.into(),
            error_code: code.map(Into::into),
            reconciled: false,
            accepted_at: None,
            provider: provider.map(Into::into),
        };
        let smsc = Some("smsc");
        assert_eq!(
            outcome("delivered", None, smsc).route_outcome(),
            Some(("smsc", true))
        );
        assert_eq!(
            outcome("undelivered", Some("30003"), smsc).route_outcome(),
            Some(("smsc", false))
        );
        assert_eq!(
            outcome("failed", Some("receipt_unknown"), smsc).route_outcome(),
            Some(("smsc", false))
        );
        assert_eq!(
            outcome("failed", Some("provider_unreachable"), smsc).route_outcome(),
            None
        );
        assert_eq!(
            outcome("delivered", None, Some("external")).route_outcome(),
            None
        );
        assert_eq!(outcome("delivered", None, None).route_outcome(), None);
    }
}
