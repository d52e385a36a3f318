use smsops_common::{ApiError, ErrorCode};

use crate::store::StoreError;

/// Everything sms-svc can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error("{0}")]
    InvalidPhone(String),
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
    Store(#[from] StoreError),
}

impl From<SmsError> for ApiError {
    fn from(err: SmsError) -> Self {
        let message = err.to_string();
        match err {
            SmsError::InvalidPhone(_) => ApiError::new(ErrorCode::InvalidPhone, message),
            SmsError::InvalidBody(_) => ApiError::new(ErrorCode::InvalidBody, message),
            SmsError::InvalidArgument(_) => ApiError::new(ErrorCode::InvalidArgument, message),
            SmsError::PairNotFound(_) => ApiError::new(ErrorCode::PairNotFound, message),
            SmsError::NotFound(_) => ApiError::new(ErrorCode::NotFound, message),
            SmsError::Forbidden(_) => ApiError::new(ErrorCode::Forbidden, message),
            SmsError::QuotaExceeded(_, retry_after) => {
                ApiError::new(ErrorCode::QuotaExceeded, message).retry_after(retry_after)
            }
            SmsError::IdempotencyMismatch(_) => {
                ApiError::new(ErrorCode::IdempotencyMismatch, message)
            }
            SmsError::InvalidSignature => ApiError::new(ErrorCode::InvalidSignature, message),
            SmsError::Upstream(api) => api,
            SmsError::Internal(message) => ApiError::new(ErrorCode::Internal, message),
            SmsError::Store(store) => store.into(),
        }
    }
}

impl From<SmsError> for tonic::Status {
    fn from(err: SmsError) -> Self {
        ApiError::from(err).into()
    }
}
