//! The parts of messages sent in several (migration 0008), read and
//! written inside a status batch's transaction.

use std::collections::HashMap;

use sqlx::{MySql, QueryBuilder, Transaction};

use super::padded;
use crate::domain::{Part, RepoError, Status};

#[derive(Debug, sqlx::FromRow)]
struct PartRow {
    part_sid: String,
    message_id: String,
    part_number: u16,
    status: Option<String>,
    error_code: Option<String>,
}

impl TryFrom<PartRow> for Part {
    type Error = RepoError;

    fn try_from(row: PartRow) -> Result<Self, Self::Error> {
        let status = match row.status.as_deref() {
            None => None,
            Some(stored) => Some(Status::parse(stored).ok_or_else(|| {
                RepoError::Corrupt(format!("part {} has status {stored:?}", row.part_sid))
            })?),
        };
        Ok(Part {
            message_id: row.message_id,
            sid: row.part_sid,
            number: u32::from(row.part_number),
            status,
            error_code: row.error_code,
        })
    }
}

/// Every part of the messages these part ids belong to, locked. The
/// messages are found first without a lock, so the parts can then be
/// locked in one order, whichever receipt came first.
pub(super) async fn locked_parts(
    tx: &mut Transaction<'_, MySql>,
    provider: &str,
    sids: &[&str],
) -> Result<HashMap<String, Part>, RepoError> {
    if sids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut find =
        QueryBuilder::<MySql>::new("SELECT DISTINCT message_id FROM sms_parts WHERE provider = ");
    find.push_bind(provider).push(" AND part_sid IN (");
    let mut list = find.separated(", ");
    for sid in padded(sids) {
        list.push_bind(*sid);
    }
    find.push(")");
    let messages: Vec<(String,)> = find.build_query_as().fetch_all(&mut **tx).await?;
    if messages.is_empty() {
        return Ok(HashMap::new());
    }
    let mut lock = QueryBuilder::<MySql>::new(
        "SELECT part_sid, message_id, part_number, status, error_code FROM sms_parts \
         WHERE message_id IN (",
    );
    let mut list = lock.separated(", ");
    for (id,) in padded(&messages) {
        list.push_bind(id);
    }
    lock.push(") ORDER BY provider, part_sid FOR UPDATE");
    let rows: Vec<PartRow> = lock.build_query_as().fetch_all(&mut **tx).await?;
    rows.into_iter()
        .map(|row| Ok((row.part_sid.clone(), Part::try_from(row)?)))
        .collect()
}

/// Keeps new parts and the receipts of known ones.
pub(super) async fn write_parts(
    tx: &mut Transaction<'_, MySql>,
    provider: &str,
    parts: &[&Part],
) -> Result<(), RepoError> {
    if parts.is_empty() {
        return Ok(());
    }
    let mut upsert = QueryBuilder::<MySql>::new(
        "INSERT INTO sms_parts (provider, part_sid, message_id, part_number, status, error_code) ",
    );
    upsert.push_values(padded(parts), |mut values, part| {
        values
            .push_bind(provider)
            .push_bind(&part.sid)
            .push_bind(&part.message_id)
            .push_bind(u16::try_from(part.number).unwrap_or(u16::MAX))
            .push_bind(part.status.map(Status::as_str))
            .push_bind(&part.error_code);
    });
    upsert
        .push(" ON DUPLICATE KEY UPDATE status = VALUES(status), error_code = VALUES(error_code)");
    upsert.build().execute(&mut **tx).await?;
    Ok(())
}
