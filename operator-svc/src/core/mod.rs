//! Transport-neutral pair logic: validation, uniqueness, paging, roles.

pub mod country;
mod error;
pub mod route;
pub mod sessions;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use mongodb::bson::DateTime;
use serde_json::json;
use smsops_common::{
    audit::{Entry, Recorder, kind},
    auth::Caller,
};

pub use error::OperatorError;

use smsops_common::mongo::StoreError;

use self::{route::RouteStep, sessions::Sessions};
use crate::store::{PairDoc, PairUpdate, Store};

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 200;
pub const MAX_OPERATOR_CHARS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub id: String,
    pub country: String,
    pub operator: String,
    pub is_high_priority: bool,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: String,
    pub route: Vec<RouteStep>,
}

impl From<PairDoc> for Pair {
    fn from(doc: PairDoc) -> Self {
        Self {
            id: doc.id,
            country: doc.country,
            operator: doc.operator,
            is_high_priority: doc.is_high_priority,
            created_at: doc.created_at.try_to_rfc3339_string().unwrap_or_default(),
            updated_at: doc.updated_at.try_to_rfc3339_string().unwrap_or_default(),
            created_by: doc.created_by,
            route: doc.route,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct PairPatch {
    pub country: Option<String>,
    pub operator: Option<String>,
    pub is_high_priority: Option<bool>,
    /// Replaces the route (empty clears it).
    pub route: Option<Vec<RouteStep>>,
}

#[derive(Debug, Clone, Default)]
pub struct PairQuery {
    pub country: Option<String>,
    pub is_high_priority: Option<bool>,
    pub page_size: u32,
    pub page_token: String,
}

pub struct OperatorCore {
    store: Store,
    sessions: Sessions,
    audit: Recorder,
}

/// What the audit log shows of a pair.
fn audited(pair: &PairDoc) -> serde_json::Value {
    json!({
        "country": pair.country,
        "operator": pair.operator,
        "is_high_priority": pair.is_high_priority,
        "route": pair.route,
    })
}

impl OperatorCore {
    pub fn new(store: Store, sessions: Sessions, audit: Recorder) -> Self {
        Self {
            store,
            sessions,
            audit,
        }
    }

    pub async fn create(
        &self,
        caller: &Caller,
        country: &str,
        operator: &str,
        is_high_priority: bool,
    ) -> Result<Pair, OperatorError> {
        require_admin(caller)?;
        let country = validate_country(country)?;
        let operator = validate_operator(operator)?;
        let now = DateTime::now();
        let doc = PairDoc {
            id: uuid::Uuid::now_v7().to_string(),
            operator_key: operator_key(&operator),
            country,
            operator,
            is_high_priority,
            created_at: now,
            updated_at: now,
            created_by: caller.user_id.clone(),
            route: Vec::new(),
        };
        match self.store.insert(&doc).await {
            Ok(()) => {
                tracing::info!(pair = %doc.id, country = %doc.country, operator = %doc.operator, "pair created");
                let entry = Entry::new(kind::PAIR_CREATED, &doc.id).after(audited(&doc));
                self.audit.record(caller, entry).await;
                Ok(doc.into())
            }
            Err(StoreError::Duplicate) => Err(OperatorError::PairExists),
            Err(err) => Err(err.into()),
        }
    }

    pub async fn get(&self, _caller: &Caller, id: &str) -> Result<Pair, OperatorError> {
        self.store
            .get(id)
            .await?
            .map(Pair::from)
            .ok_or_else(|| not_found(id))
    }

    pub async fn list(
        &self,
        _caller: &Caller,
        query: PairQuery,
    ) -> Result<(Vec<Pair>, Option<String>), OperatorError> {
        let size = match query.page_size {
            0 => DEFAULT_PAGE_SIZE,
            1..=MAX_PAGE_SIZE => query.page_size,
            _ => {
                return Err(OperatorError::InvalidArgument(format!(
                    "page_size must be between 1 and {MAX_PAGE_SIZE}"
                )));
            }
        };
        let country = query.country.as_deref().map(validate_country).transpose()?;
        let after = decode_page_token(&query.page_token)?;
        let mut docs = self
            .store
            .list(
                country.as_deref(),
                query.is_high_priority,
                after.as_deref(),
                i64::from(size) + 1,
            )
            .await?;
        let next = if docs.len() > size as usize {
            docs.truncate(size as usize);
            docs.last().map(|doc| URL_SAFE_NO_PAD.encode(&doc.id))
        } else {
            None
        };
        Ok((docs.into_iter().map(Pair::from).collect(), next))
    }

    pub async fn update(
        &self,
        caller: &Caller,
        id: &str,
        patch: PairPatch,
    ) -> Result<Pair, OperatorError> {
        require_admin(caller)?;
        let country = patch.country.as_deref().map(validate_country).transpose()?;
        let operator = patch
            .operator
            .as_deref()
            .map(validate_operator)
            .transpose()?;
        let route = patch.route.map(route::validated).transpose()?;
        let update = PairUpdate {
            route,
            operator_key: operator.as_deref().map(operator_key),
            country,
            operator,
            is_high_priority: patch.is_high_priority,
        };
        let was = self.store.get(id).await?;
        match self.store.update(id, update).await {
            Ok(Some(doc)) => {
                tracing::info!(pair = %id, by = %caller.user_id, "pair updated");
                let before = was.as_ref().map(audited).unwrap_or_default();
                let entry = Entry::new(kind::PAIR_UPDATED, id).change(before, audited(&doc));
                if !entry.changes_nothing() {
                    self.audit.record(caller, entry).await;
                }
                Ok(doc.into())
            }
            Ok(None) => Err(not_found(id)),
            Err(StoreError::Duplicate) => Err(OperatorError::PairExists),
            Err(err) => Err(err.into()),
        }
    }

    /// Deletes a pair no session uses: process-svc says so and keeps new
    /// sessions off it first (see [`sessions`]), so a session cannot start
    /// on the pair between the question and the delete.
    pub async fn delete(&self, caller: &Caller, id: &str) -> Result<(), OperatorError> {
        require_admin(caller)?;
        // An unknown pair is a 404 whether or not process-svc is up.
        let Some(was) = self.store.get(id).await? else {
            return Err(not_found(id));
        };
        self.sessions.retire(caller, id).await?;
        if !self.store.delete(id).await? {
            return Err(not_found(id));
        }
        tracing::info!(pair = %id, by = %caller.user_id, "pair deleted");
        self.audit
            .record(
                caller,
                Entry::new(kind::PAIR_DELETED, id).before(audited(&was)),
            )
            .await;
        Ok(())
    }
}

fn require_admin(caller: &Caller) -> Result<(), OperatorError> {
    caller
        .require_admin()
        .map_err(|_| OperatorError::Forbidden("this action needs the admin role".into()))
}

fn not_found(id: &str) -> OperatorError {
    OperatorError::NotFound(format!("no country-operator pair with id {id}"))
}

fn validate_country(raw: &str) -> Result<String, OperatorError> {
    country::normalize(raw).ok_or_else(|| {
        OperatorError::InvalidCountry(format!(
            "country must be an ISO 3166-1 alpha-2 code, got {:?}",
            raw.chars().take(16).collect::<String>()
        ))
    })
}

fn validate_operator(raw: &str) -> Result<String, OperatorError> {
    let operator = raw.trim();
    let chars = operator.chars().count();
    if chars == 0 || chars > MAX_OPERATOR_CHARS {
        return Err(OperatorError::InvalidOperator(format!(
            "operator must be 1 to {MAX_OPERATOR_CHARS} characters, got {chars}"
        )));
    }
    if operator.chars().any(char::is_control) {
        return Err(OperatorError::InvalidOperator(
            "operator must not contain control characters".into(),
        ));
    }
    Ok(operator.to_string())
}

/// The form uniqueness is checked on: operators that differ only in case are
/// the same operator. Kept as a field so any MongoDB enforces it with a plain
/// unique index, no collation needed.
fn operator_key(operator: &str) -> String {
    operator.to_lowercase()
}

fn decode_page_token(token: &str) -> Result<Option<String>, OperatorError> {
    if token.is_empty() {
        return Ok(None);
    }
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(Some)
        .ok_or_else(|| OperatorError::InvalidArgument("page_token is not valid".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators() {
        assert_eq!(validate_operator("  Vodafone ").unwrap(), "Vodafone");
        assert_eq!(
            validate_operator(&"\u{41c}".repeat(50))
                .unwrap()
                .chars()
                .count(),
            50
        );
        assert!(validate_operator(&"x".repeat(51)).is_err());
        assert!(validate_operator("   ").is_err());
        assert!(validate_operator("a\u{0}b").is_err());
        assert_eq!(operator_key("MegaFon"), operator_key("MEGAFON"));
    }

    #[test]
    fn page_tokens() {
        assert_eq!(decode_page_token("").unwrap(), None);
        let token = URL_SAFE_NO_PAD.encode("0193-abc");
        assert_eq!(
            decode_page_token(&token).unwrap().as_deref(),
            Some("0193-abc")
        );
        assert!(decode_page_token("***").is_err());
    }
}
