use smsops_common::{ApiError, ErrorCode};

use smsops_common::mongo::StoreError;

/// Everything operator-svc can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("{0}")]
    InvalidCountry(String),
    #[error("{0}")]
    InvalidOperator(String),
    #[error("{0}")]
    InvalidRoute(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("this country already has an operator with that name")]
    PairExists,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    /// A refusal that came from another service, passed on as it is.
    #[error(transparent)]
    Upstream(ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<OperatorError> for ApiError {
    fn from(err: OperatorError) -> Self {
        let message = err.to_string();
        match err {
            OperatorError::InvalidCountry(_) => ApiError::new(ErrorCode::InvalidCountry, message),
            OperatorError::InvalidOperator(_) => ApiError::new(ErrorCode::InvalidOperator, message),
            OperatorError::InvalidRoute(_) => ApiError::new(ErrorCode::InvalidRoute, message),
            OperatorError::InvalidArgument(_) => ApiError::new(ErrorCode::InvalidArgument, message),
            OperatorError::PairExists => ApiError::new(ErrorCode::PairExists, message),
            OperatorError::NotFound(_) => ApiError::new(ErrorCode::NotFound, message),
            OperatorError::Forbidden(_) => ApiError::new(ErrorCode::Forbidden, message),
            OperatorError::Upstream(api) => api,
            OperatorError::Store(store) => store.into(),
        }
    }
}

impl From<OperatorError> for tonic::Status {
    fn from(err: OperatorError) -> Self {
        ApiError::from(err).into()
    }
}
