//! MongoDB helpers shared by the services that keep documents.

use std::time::Duration;

use crate::{ApiError, ErrorCode};

use mongodb::{
    Client,
    bson::doc,
    error::{Error, ErrorKind, WriteFailure},
    options::ClientOptions,
};

/// MongoDB's code for a unique-index violation.
const DUPLICATE_KEY: i32 = 11000;

/// Connects and pings, so a wrong URL fails start-up instead of the first request.
pub async fn connect(url: &str, app_name: &str) -> Result<Client, Error> {
    let mut options = ClientOptions::parse(url).await?;
    options.app_name = Some(app_name.to_string());
    options.connect_timeout = options.connect_timeout.or(Some(Duration::from_secs(3)));
    options.server_selection_timeout = options
        .server_selection_timeout
        .or(Some(Duration::from_secs(5)));
    let client = Client::with_options(options)?;
    client
        .database("admin")
        .run_command(doc! { "ping": 1 })
        .await?;
    Ok(client)
}

/// A database failure, as every store reports it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique index already holds the key.
    #[error("duplicate key")]
    Duplicate,
    #[error("database error: {0}")]
    Mongo(#[from] Error),
}

impl StoreError {
    /// Sorts a driver error into a duplicate key or anything else.
    pub fn classify(err: Error) -> Self {
        if is_duplicate_key(&err) {
            Self::Duplicate
        } else {
            Self::Mongo(err)
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Duplicate => ApiError::new(ErrorCode::Conflict, "already exists"),
            StoreError::Mongo(err) if is_unreachable(&err) => {
                tracing::warn!(error = %err, "database unreachable");
                ApiError::new(ErrorCode::Unavailable, "the database is unavailable")
            }
            StoreError::Mongo(err) => ApiError::internal(err),
        }
    }
}

/// Whether a write failed because a unique index already holds the key.
pub fn is_duplicate_key(err: &Error) -> bool {
    match err.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(write)) => write.code == DUPLICATE_KEY,
        ErrorKind::Command(command) => command.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(insert) => insert
            .write_errors
            .as_ref()
            .is_some_and(|errors| errors.iter().any(|write| write.code == DUPLICATE_KEY)),
        _ => false,
    }
}

/// Whether the database could not be reached at all (as opposed to refusing
/// an operation), which callers report as `unavailable`.
pub fn is_unreachable(err: &Error) -> bool {
    matches!(
        err.kind.as_ref(),
        ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
    )
}
