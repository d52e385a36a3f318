use smsops_common::{ApiError, ErrorCode};

use crate::store::StoreError;

/// Everything metrics-svc can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<MetricsError> for ApiError {
    fn from(err: MetricsError) -> Self {
        match err {
            MetricsError::InvalidArgument(message) => {
                ApiError::new(ErrorCode::InvalidArgument, message)
            }
            MetricsError::Store(store) => store.into(),
        }
    }
}

impl From<MetricsError> for tonic::Status {
    fn from(err: MetricsError) -> Self {
        ApiError::from(err).into()
    }
}
