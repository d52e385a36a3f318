//! MySQL helpers shared by the services that keep rows.

use std::time::Duration;

use crate::{ApiError, ErrorCode};

use sqlx::{
    MySqlPool,
    mysql::{MySqlConnectOptions, MySqlPoolOptions},
};

/// Creates `database` on the server if missing (utf8mb4) and connects a
/// pool of `max_connections` to it. Each service then runs its own
/// migrations on the pool.
pub async fn connect(
    server_url: &str,
    database: &str,
    max_connections: u32,
) -> Result<MySqlPool, sqlx::Error> {
    let server: MySqlConnectOptions = server_url.parse()?;
    let admin = MySqlPoolOptions::new()
        .max_connections(1)
        .connect_with(server.clone())
        .await?;
    let quoted = database.replace('`', "``");
    sqlx::query(&format!(
        "CREATE DATABASE IF NOT EXISTS `{quoted}` CHARACTER SET utf8mb4"
    ))
    .execute(&admin)
    .await?;
    admin.close().await;
    MySqlPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(server.database(database))
        .await
}

/// What a caller is told about a failed query on `store` ("the alert
/// store"): unavailable (and worth a retry) when the database cannot be
/// reached, internal otherwise.
pub fn api_error(store: &str, err: sqlx::Error) -> ApiError {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => ApiError::new(
            ErrorCode::Unavailable,
            format!("the {store} is unavailable"),
        ),
        err => ApiError::internal(err),
    }
}
