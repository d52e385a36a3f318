//! Results of SMS programs smsops does not run (like seed 002's checker),
//! reported with an API key: each becomes an SMS event in the outbox, so it
//! reaches metrics and alerts exactly like smsops's own. A batch is checked
//! whole first, and a bad item refuses it with the item's index.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Serialize;
use smsops_common::auth::{Caller, Role};

use super::{SmsCore, SmsError};
use crate::domain::{MessageRepository, OutboxEvent, PairLookup, QuotaLedger, Status};

pub const MAX_INGEST_BATCH: usize = 1000;
/// Reports from further ahead than this are clock errors.
const MAX_CLOCK_AHEAD: TimeDelta = TimeDelta::minutes(5);
/// Metrics keep 30 days; older reports would land in no window.
const MAX_AGE: TimeDelta = TimeDelta::days(30);

/// One reported result, as the caller gives it.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub event_id: String,
    pub country: String,
    pub operator: String,
    pub status: String,
    pub error_code: String,
    pub occurred_at: String,
}

/// The event body for a reported result: the SMS event's shape
/// (docs/events.md) with no message of ours behind it.
#[derive(Debug, Serialize)]
struct ReportedEvent<'a> {
    event_id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    occurred_at: String,
    message_id: Option<&'a str>,
    session_id: Option<&'a str>,
    country_operator_id: &'a str,
    country: &'a str,
    operator: &'a str,
    is_high_priority: bool,
    status: &'a str,
    error_code: Option<&'a str>,
    provider: &'a str,
    provider_sid: Option<&'a str>,
    /// The API key that reported it.
    source: &'a str,
}

struct Checked<'a> {
    report: &'a Report,
    event_id: String,
    status: Status,
    occurred_at: DateTime<Utc>,
}

fn check(index: usize, report: &Report, now: DateTime<Utc>) -> Result<Checked<'_>, SmsError> {
    let bad = |field: &str, why: &str| {
        SmsError::InvalidArgument(format!("events[{index}].{field}: {why}"))
    };
    let event_id = uuid::Uuid::parse_str(report.event_id.trim())
        .map_err(|_| bad("event_id", "must be a UUID"))?
        .to_string();
    let country = report.country.trim();
    if country.len() != 2 || !country.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(bad("country", "must be an ISO 3166-1 alpha-2 code"));
    }
    let operator = report.operator.trim();
    if operator.is_empty() || operator.chars().count() > 50 {
        return Err(bad("operator", "must be 1 to 50 characters"));
    }
    let status = Status::parse(report.status.trim()).ok_or_else(|| {
        bad(
            "status",
            "must be accepted, queued, sent, delivered, undelivered or failed",
        )
    })?;
    if report.error_code.chars().count() > 64 {
        return Err(bad("error_code", "must be at most 64 characters"));
    }
    let occurred_at = DateTime::parse_from_rfc3339(report.occurred_at.trim())
        .map_err(|_| bad("occurred_at", "must be an RFC 3339 time"))?
        .with_timezone(&Utc);
    if occurred_at > now + MAX_CLOCK_AHEAD || occurred_at < now - MAX_AGE {
        return Err(bad(
            "occurred_at",
            "must be within the last 30 days and not in the future",
        ));
    }
    Ok(Checked {
        report,
        event_id,
        status,
        occurred_at,
    })
}

impl<M, P> SmsCore<M, P>
where
    M: MessageRepository + QuotaLedger,
    P: PairLookup,
{
    /// Takes a batch of reports whole, or refuses it whole; returns how
    /// many were taken.
    pub async fn ingest(
        &self,
        caller: &Caller,
        source: &str,
        reports: &[Report],
    ) -> Result<usize, SmsError> {
        if !matches!(caller.role, Role::Ingest | Role::Admin) {
            return Err(SmsError::Forbidden(
                "reporting results needs an api key".into(),
            ));
        }
        if reports.is_empty() || reports.len() > MAX_INGEST_BATCH {
            return Err(SmsError::InvalidArgument(format!(
                "events must hold 1 to {MAX_INGEST_BATCH} items"
            )));
        }
        let now = Utc::now();
        let checked = reports
            .iter()
            .enumerate()
            .map(|(index, report)| check(index, report, now))
            .collect::<Result<Vec<_>, _>>()?;
        let mut events = Vec::with_capacity(checked.len());
        for (index, item) in checked.iter().enumerate() {
            let report = item.report;
            let pair = self
                .pairs
                .find(caller, report.country.trim(), report.operator.trim())
                .await
                .map_err(SmsError::Upstream)?
                .ok_or_else(|| {
                    SmsError::PairNotFound(format!(
                        "events[{index}]: no country-operator pair {} / {}",
                        report.country.trim().to_ascii_uppercase(),
                        report.operator.trim()
                    ))
                })?;
            let event_type = format!("sms.{}", item.status.as_str());
            let error_code = Some(report.error_code.trim()).filter(|c| !c.is_empty());
            let body = ReportedEvent {
                event_id: &item.event_id,
                event_type: &event_type,
                occurred_at: item
                    .occurred_at
                    .to_rfc3339_opts(SecondsFormat::Micros, true),
                message_id: None,
                session_id: None,
                country_operator_id: &pair.id,
                country: &pair.country,
                operator: &pair.operator,
                is_high_priority: pair.is_high_priority,
                status: item.status.as_str(),
                error_code,
                provider: "external",
                provider_sid: None,
                source,
            };
            events.push(OutboxEvent {
                traceparent: smsops_common::amqp::traceparent(&item.event_id, &item.event_id),
                payload: serde_json::to_string(&body)
                    .map_err(|err| SmsError::Internal(err.to_string()))?,
                routing_key: event_type.clone(),
                event_type,
                event_id: item.event_id.clone(),
            });
        }
        self.store.insert_events(&events).await?;
        self.outbox.notify_one();
        tracing::info!(source, count = events.len(), "reported results taken in");
        Ok(events.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            event_id: uuid::Uuid::now_v7().to_string(),
            country: "gb".into(),
            operator: "Vodafone".into(),
            status: "delivered".into(),
            error_code: String::new(),
            occurred_at: Utc::now().to_rfc3339(),
        }
    }

    #[test]
    fn bad_items_name_their_index_and_field() {
        let now = Utc::now();
        assert!(check(0, &report(), now).is_ok());
        let mut bad = report();
        bad.status = "lost".into();
        let err = check(3, &bad, now).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "events[3].status: must be accepted, queued, sent, delivered, undelivered or failed"
            )
        );
        let mut bad = report();
        bad.event_id = "e1".into();
        assert!(check(0, &bad, now).is_err());
        let mut bad = report();
        bad.occurred_at = (now + TimeDelta::hours(1)).to_rfc3339();
        assert!(check(0, &bad, now).is_err());
    }
}
