use smsops_common::{ApiError, ErrorCode};

use smsops_common::mongo::StoreError;

/// Everything auth-svc can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    InvalidEmail(String),
    #[error("{0}")]
    InvalidPassword(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("a user with this email already exists")]
    UserExists,
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("invalid or expired refresh token")]
    InvalidToken,
    #[error(transparent)]
    Unauthorized(ApiError),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
    /// A refusal that passes (a full hashing pool), with its own code and
    /// `retry_after`.
    #[error(transparent)]
    Refused(ApiError),
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        let message = err.to_string();
        match err {
            AuthError::InvalidEmail(_) => ApiError::new(ErrorCode::InvalidEmail, message),
            AuthError::InvalidPassword(_) => ApiError::new(ErrorCode::InvalidPassword, message),
            AuthError::InvalidArgument(_) => ApiError::new(ErrorCode::InvalidArgument, message),
            AuthError::UserExists => ApiError::new(ErrorCode::UserExists, message),
            AuthError::InvalidCredentials => ApiError::new(ErrorCode::InvalidCredentials, message),
            AuthError::InvalidToken => ApiError::new(ErrorCode::InvalidToken, message),
            AuthError::Unauthorized(api) => api,
            AuthError::Forbidden(_) => ApiError::new(ErrorCode::Forbidden, message),
            AuthError::NotFound(_) => ApiError::new(ErrorCode::NotFound, message),
            AuthError::Store(store) => store.into(),
            AuthError::Internal(detail) => ApiError::internal(detail),
            AuthError::Refused(api) => api,
        }
    }
}

impl From<AuthError> for tonic::Status {
    fn from(err: AuthError) -> Self {
        ApiError::from(err).into()
    }
}
