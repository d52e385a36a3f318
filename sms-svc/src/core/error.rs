use smsops_common::{ApiError, ErrorCode};

use crate::domain::RepoError;

/// Everything sms-svc can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error("{0}")]
    InvalidPhone(String),
    #[error("{0}")]
    NumberNotInCountry(String),
    #[error("{0}")]
    InvalidBody(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("no country-operator pair with id {0}")]
    PairNotFound(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    IdempotencyMismatch(String),
    /// Over a quota; the seconds until the window that refused it opens.
    #[error("{0}")]
    QuotaExceeded(String, u32),
    #[error("the provider signature does not match")]
    InvalidSignature,
    #[error(transparent)]
    Upstream(ApiError),
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] RepoError),
}

impl SmsError {
    /// The stable code callers see for it.
    pub fn code(&self) -> ErrorCode {
        match self {
            SmsError::InvalidPhone(_) => ErrorCode::InvalidPhone,
            SmsError::NumberNotInCountry(_) => ErrorCode::NumberNotInCountry,
            SmsError::InvalidBody(_) => ErrorCode::InvalidBody,
            SmsError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            SmsError::PairNotFound(_) => ErrorCode::PairNotFound,
            SmsError::NotFound(_) => ErrorCode::NotFound,
            SmsError::Forbidden(_) => ErrorCode::Forbidden,
            SmsError::IdempotencyMismatch(_) => ErrorCode::IdempotencyMismatch,
            SmsError::QuotaExceeded(..) => ErrorCode::QuotaExceeded,
            SmsError::InvalidSignature => ErrorCode::InvalidSignature,
            SmsError::Upstream(api) => api.code,
            SmsError::Internal(_) => ErrorCode::Internal,
            SmsError::Store(store) => store.code(),
        }
    }
}

impl From<SmsError> for ApiError {
    fn from(err: SmsError) -> Self {
        match err {
            SmsError::Upstream(api) => api,
            SmsError::Store(store) => store.into(),
            SmsError::QuotaExceeded(message, retry_after) => {
                ApiError::new(ErrorCode::QuotaExceeded, message).retry_after(retry_after)
            }
            other => ApiError::new(other.code(), other.to_string()),
        }
    }
}

impl From<SmsError> for tonic::Status {
    fn from(err: SmsError) -> Self {
        ApiError::from(err).into()
    }
}
