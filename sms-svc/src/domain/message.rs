//! A message and the one rule for how it changes.

use chrono::{DateTime, Utc};

use super::{OutboxEvent, RouteReason, RouteStep, Status};

/// The country-operator pair a message is for, as operator-svc knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub id: String,
    pub country: String,
    pub operator: String,
    pub is_high_priority: bool,
    /// Empty: the accounts in their configured order.
    pub route: Vec<RouteStep>,
}

/// One SMS as smsops keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    /// Scoped to its caller (see `core::scoped_key`).
    pub idempotency_key: Option<String>,
    pub pair: Pair,
    pub session_id: Option<String>,
    pub to: String,
    pub body_length: u32,
    pub segments: u32,
    pub status: Status,
    /// The provider account it went (or is going) to.
    pub provider: String,
    /// Why that account; `None` for messages older than routes and for
    /// reported results.
    pub route_reason: Option<RouteReason>,
    pub provider_sid: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// What was asked, to tell a repeat from a reuse of its key; `None`
    /// for messages older than the hash.
    pub request_hash: Option<String>,
    /// The accepting request's W3C trace context, while traces are on.
    pub traceparent: Option<String>,
}

/// A status change to apply to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub status: Status,
    pub provider_sid: Option<String>,
    pub provider_status: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// The provider's ids for the parts it took the message in, in order,
    /// when it sends each part a receipt of its own; empty otherwise.
    pub parts: Vec<String>,
    /// Another account than the one chosen at acceptance took (or
    /// refused) the message, and why it came to it.
    pub routed: Option<(String, RouteReason)>,
}

impl Change {
    /// The message failed with our own error `code`.
    pub fn failed(code: impl Into<String>, message: &str) -> Self {
        Self {
            status: Status::Failed,
            provider_sid: None,
            provider_status: None,
            error_code: Some(code.into()),
            error_message: Some(message.chars().take(250).collect()),
            parts: Vec::new(),
            routed: None,
        }
    }
}

/// Which message a change is for: ours, the provider's id for it, or the
/// provider's id for one of its parts (see [`super::Part`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Id(String),
    Sid(String),
    Part(String),
}

/// How a change came to be known, as its event tells consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// From the send itself, a callback or smsops's own sweep.
    Live,
    /// Read from the provider by reconciliation, the receipt never having come.
    Reconciled,
}

/// One entry of a message's status history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub status: Status,
    pub error_code: Option<String>,
    pub provider_status: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

/// What a change that moved a message leaves to be written with it.
#[derive(Debug, Clone)]
pub struct Transition {
    pub history: StatusChange,
    pub event: OutboxEvent,
}

/// What became of a status change.
#[derive(Debug, Clone)]
pub enum Applied {
    /// The message moved; here it is as it is now.
    Moved(Box<Message>),
    /// The message is already as far or further; nothing changed.
    Stale(Box<Message>),
    /// No message matches.
    Unknown,
}

impl Message {
    /// Applies `change` if it moves the message forward: the one place the
    /// forward-only rule lives, so a late `sent` never overwrites
    /// `delivered` and a final status never changes. Answers the history
    /// entry and event to record with the move, or `None` when nothing
    /// changed.
    pub fn apply(
        &mut self,
        change: &Change,
        at: DateTime<Utc>,
        origin: Origin,
    ) -> Option<Transition> {
        if change.status.rank() <= self.status.rank() {
            return None;
        }
        // Only the first answer to a send names another account: once a
        // provider answered, the message is that provider's for good.
        if let Some((provider, reason)) = &change.routed
            && self.status == Status::Accepted
        {
            self.provider.clone_from(provider);
            self.route_reason = Some(*reason);
        }
        self.status = change.status;
        self.updated_at = at;
        if let Some(sid) = &change.provider_sid {
            self.provider_sid = Some(sid.clone());
        }
        if change.error_code.is_some() {
            self.error_code.clone_from(&change.error_code);
            self.error_message.clone_from(&change.error_message);
        }
        Some(Transition {
            history: StatusChange {
                status: change.status,
                error_code: change.error_code.clone(),
                provider_status: change.provider_status.clone(),
                occurred_at: at,
            },
            event: OutboxEvent::of(self, at, origin),
        })
    }

    /// The history entry and event of a message just made, `accepted`.
    pub fn accepted(&self) -> Transition {
        debug_assert_eq!(self.status, Status::Accepted);
        Transition {
            history: StatusChange {
                status: Status::Accepted,
                error_code: None,
                provider_status: None,
                occurred_at: self.created_at,
            },
            event: OutboxEvent::of(self, self.created_at, Origin::Live),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A message just accepted, for the domain's tests.
    pub(in crate::domain) fn message() -> Message {
        let at = Utc::now();
        Message {
            id: "m1".into(),
            idempotency_key: None,
            pair: Pair {
                id: "p1".into(),
                country: "GB".into(),
                operator: "Vodafone".into(),
                is_high_priority: false,
                route: Vec::new(),
            },
            session_id: None,
            to: "+447700900123".into(),
            body_length: 5,
            segments: 1,
            status: Status::Accepted,
            provider: "twilio".into(),
            route_reason: Some(RouteReason::Default),
            provider_sid: None,
            error_code: None,
            error_message: None,
            created_at: at,
            updated_at: at,
            request_hash: None,
            traceparent: None,
        }
    }

    fn to(status: Status) -> Change {
        Change {
            status,
            provider_sid: None,
            provider_status: Some(status.as_str().into()),
            error_code: None,
            error_message: None,
            parts: Vec::new(),
            routed: None,
        }
    }

    #[test]
    fn a_change_moves_forward_only() {
        let mut message = message();
        let at = Utc::now();
        let queued = Change {
            provider_sid: Some("SM1".into()),
            ..to(Status::Queued)
        };
        let moved = message.apply(&queued, at, Origin::Live);
        assert_eq!(moved.map(|t| t.history.status), Some(Status::Queued));
        assert_eq!(message.provider_sid.as_deref(), Some("SM1"));
        assert!(
            message
                .apply(&to(Status::Delivered), at, Origin::Live)
                .is_some()
        );
        // A late `sent`, a repeated `delivered` and a contrary final status
        // all leave it as it is.
        for late in [Status::Sent, Status::Delivered, Status::Undelivered] {
            assert!(message.apply(&to(late), at, Origin::Live).is_none());
        }
        assert_eq!(message.status, Status::Delivered);
    }

    #[test]
    fn only_the_first_answer_moves_a_message_to_another_account() {
        let mut message = message();
        let routed = Some(("smsc".to_string(), RouteReason::FailoverNotTaken));
        let queued = Change {
            routed: routed.clone(),
            ..to(Status::Queued)
        };
        let moved = message.apply(&queued, Utc::now(), Origin::Live);
        assert!(moved.is_some_and(|t| {
            t.event
                .payload
                .contains("\"route_reason\":\"failover_not_taken\"")
        }));
        assert_eq!(message.provider, "smsc");
        let later = Change {
            routed: Some(("spare".into(), RouteReason::FailoverOutage)),
            ..to(Status::Sent)
        };
        message.apply(&later, Utc::now(), Origin::Live);
        assert_eq!(message.status, Status::Sent);
        assert_eq!(
            (message.provider.as_str(), message.route_reason),
            ("smsc", Some(RouteReason::FailoverNotTaken))
        );
    }

    #[test]
    fn a_status_may_be_skipped_and_an_error_kept() {
        let mut message = message();
        let failed = Change::failed("provider_uncertain", &"x".repeat(300));
        let moved = message.apply(&failed, Utc::now(), Origin::Reconciled);
        assert!(moved.is_some_and(|t| t.event.payload.contains("\"reconciled\":true")));
        assert_eq!(message.status, Status::Failed);
        assert_eq!(message.error_code.as_deref(), Some("provider_uncertain"));
        assert_eq!(message.error_message.map(|m| m.len()), Some(250));
    }

    #[test]
    fn a_change_without_an_error_keeps_the_last_one() {
        let mut message = message();
        let sent = Change {
            error_code: Some("30003".into()),
            ..to(Status::Sent)
        };
        message.apply(&sent, Utc::now(), Origin::Live);
        message.apply(&to(Status::Undelivered), Utc::now(), Origin::Live);
        assert_eq!(message.error_code.as_deref(), Some("30003"));
    }

    #[test]
    fn the_event_says_what_the_message_became() {
        let mut message = message();
        assert_eq!(message.accepted().event.event_type, "sms.accepted");
        let moved = message.apply(&to(Status::Sent), Utc::now(), Origin::Live);
        let event = moved.map(|t| t.event);
        assert_eq!(
            event.as_ref().map(|e| e.event_type.as_str()),
            Some("sms.sent")
        );
        assert!(event.is_some_and(|e| e.payload.contains("\"status\":\"sent\"")));
    }
}
