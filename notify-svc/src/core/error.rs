use smsops_common::{ApiError, ErrorCode};

use crate::store::StoreError;

/// Everything notify-svc can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<NotifyError> for ApiError {
    fn from(err: NotifyError) -> Self {
        match err {
            NotifyError::InvalidArgument(message) => {
                ApiError::new(ErrorCode::InvalidArgument, message)
            }
            NotifyError::Forbidden(message) => ApiError::new(ErrorCode::Forbidden, message),
            NotifyError::Store(store) => store.into(),
        }
    }
}

impl From<NotifyError> for tonic::Status {
    fn from(err: NotifyError) -> Self {
        ApiError::from(err).into()
    }
}
