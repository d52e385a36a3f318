use smsops_common::{ApiError, ErrorCode, mongo::StoreError};

/// Everything process-svc can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    InvalidRate(String),
    #[error("{0}")]
    InvalidRecipients(String),
    #[error("{0}")]
    InvalidPhone(String),
    #[error("{0}")]
    NumberNotInCountry(String),
    #[error("{0}")]
    InvalidTemplate(String),
    #[error("no session with id {0}")]
    NotFound(String),
    #[error("pair {0} already has an active session")]
    SessionActive(String),
    #[error("{0}")]
    Pinned(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    PairInUse(String),
    /// The pair's lock is held for its deletion.
    #[error("country-operator pair {0} is being deleted")]
    PairRetiring(String),
    #[error(transparent)]
    Upstream(ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ProcessError> for ApiError {
    fn from(err: ProcessError) -> Self {
        let message = err.to_string();
        match err {
            ProcessError::InvalidArgument(_) => ApiError::new(ErrorCode::InvalidArgument, message),
            ProcessError::InvalidRate(_) => ApiError::new(ErrorCode::InvalidRate, message),
            ProcessError::InvalidRecipients(_) => {
                ApiError::new(ErrorCode::InvalidRecipients, message)
            }
            ProcessError::InvalidPhone(_) => ApiError::new(ErrorCode::InvalidPhone, message),
            ProcessError::NumberNotInCountry(_) => {
                ApiError::new(ErrorCode::NumberNotInCountry, message)
            }
            ProcessError::InvalidTemplate(_) => ApiError::new(ErrorCode::InvalidTemplate, message),
            ProcessError::NotFound(_) => ApiError::new(ErrorCode::SessionNotFound, message),
            ProcessError::SessionActive(_) => ApiError::new(ErrorCode::SessionActive, message),
            ProcessError::Pinned(_) => ApiError::new(ErrorCode::PairPinned, message),
            ProcessError::Forbidden(_) => ApiError::new(ErrorCode::Forbidden, message),
            ProcessError::PairInUse(_) => ApiError::new(ErrorCode::PairInUse, message),
            ProcessError::PairRetiring(_) => ApiError::new(ErrorCode::Conflict, message),
            ProcessError::Upstream(api) => api,
            ProcessError::Store(store) => store.into(),
        }
    }
}

impl From<ProcessError> for tonic::Status {
    fn from(err: ProcessError) -> Self {
        ApiError::from(err).into()
    }
}
