//! The SMS event: what every status change publishes (see docs/events.md).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::store::MessageRow;

/// The JSON body of an event on the `sms.events` exchange.
#[derive(Debug, Serialize)]
pub struct SmsEvent<'a> {
    pub event_id: &'a str,
    #[serde(rename = "type")]
    pub event_type: &'a str,
    pub occurred_at: String,
    /// When smsops accepted the message: with `occurred_at`, how long it
    /// took to reach this status.
    pub accepted_at: String,
    pub message_id: &'a str,
    pub session_id: Option<&'a str>,
    pub country_operator_id: &'a str,
    pub country: &'a str,
    pub operator: &'a str,
    pub is_high_priority: bool,
    pub status: &'a str,
    pub error_code: Option<&'a str>,
    pub provider: &'a str,
    pub provider_sid: Option<&'a str>,
    /// The status was read from the provider by reconciliation, its
    /// receipt having never come; absent otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reconciled: bool,
}

/// An event ready for the outbox.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub event_id: String,
    pub routing_key: String,
    pub event_type: String,
    pub traceparent: String,
    pub payload: String,
}

impl OutboxEvent {
    /// The event for `row` as it is now (its status is the new one).
    pub fn for_message(row: &MessageRow, at: DateTime<Utc>) -> Self {
        Self::build(row, at, false)
    }

    /// The event for a status reconciliation read from the provider.
    pub fn reconciled(row: &MessageRow, at: DateTime<Utc>) -> Self {
        Self::build(row, at, true)
    }

    fn build(row: &MessageRow, at: DateTime<Utc>, reconciled: bool) -> Self {
        let event_id = uuid::Uuid::now_v7().to_string();
        let event_type = format!("sms.{}", row.status);
        let event = SmsEvent {
            event_id: &event_id,
            event_type: &event_type,
            occurred_at: at.to_rfc3339_opts(SecondsFormat::Micros, true),
            accepted_at: row.created_at.to_rfc3339_opts(SecondsFormat::Micros, true),
            message_id: &row.id,
            session_id: row.session_id.as_deref(),
            country_operator_id: &row.pair_id,
            country: &row.country,
            operator: &row.operator,
            is_high_priority: row.is_high_priority,
            status: &row.status,
            error_code: row.error_code.as_deref(),
            provider: &row.provider,
            provider_sid: row.provider_sid.as_deref(),
            reconciled,
        };
        let payload = serde_json::to_string(&event).unwrap_or_default();
        Self {
            routing_key: event_type.clone(),
            // The request's own context while traces are on; otherwise one
            // made of the message's id, which groups its events.
            traceparent: row
                .traceparent
                .clone()
                .unwrap_or_else(|| smsops_common::amqp::traceparent(&row.id, &event_id)),
            event_type,
            event_id,
            payload,
        }
    }
}
