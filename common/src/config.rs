//! Configuration from `SMSOPS_*` environment variables.
//!
//! Every service reads its settings through these helpers so that a bad value
//! always stops start-up with a message naming the variable, and so that tests
//! can build configs as plain structs without touching the environment.

use std::{fmt::Display, str::FromStr, time::Duration};

/// A setting that could not be used. The message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {reason}")]
pub struct ConfigError {
    pub name: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(name: &str, reason: impl Into<String>) -> Self {
        Self {
            name: name.to_string(),
            reason: reason.into(),
        }
    }
}

fn raw(name: &str) -> Result<Option<String>, ConfigError> {
    match std::env::var(name) {
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => Ok(Some(value.trim().to_string())),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::new(name, "is not valid UTF-8")),
    }
}

/// The parsed value of `name`, or `None` when it is unset or empty.
pub fn optional<T>(name: &str) -> Result<Option<T>, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    parse(name, raw(name)?)
}

fn parse<T>(name: &str, value: Option<String>) -> Result<Option<T>, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match value {
        None => Ok(None),
        Some(value) => value
            .parse()
            .map(Some)
            .map_err(|err| ConfigError::new(name, format!("invalid value {value:?}: {err}"))),
    }
}

/// The parsed value of `name`, or `default` when it is unset or empty.
pub fn or<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    Ok(optional(name)?.unwrap_or(default))
}

/// A string setting with a default.
pub fn string_or(name: &str, default: &str) -> Result<String, ConfigError> {
    Ok(raw(name)?.unwrap_or_else(|| default.to_string()))
}

/// A duration given in whole seconds; must be positive.
pub fn secs_or(name: &str, default: u64) -> Result<Duration, ConfigError> {
    positive(name, or(name, default)?).map(Duration::from_secs)
}

/// A duration given in milliseconds; must be positive.
pub fn millis_or(name: &str, default: u64) -> Result<Duration, ConfigError> {
    positive(name, or(name, default)?).map(Duration::from_millis)
}

fn positive(name: &str, value: u64) -> Result<u64, ConfigError> {
    if value == 0 {
        return Err(ConfigError::new(name, "must be greater than 0"));
    }
    Ok(value)
}

/// A comma-separated list; empty items are dropped.
pub fn list(name: &str) -> Result<Vec<String>, ConfigError> {
    Ok(raw(name)?
        .map(|value| {
            value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default())
}

/// Settings every service that checks access tokens needs.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
}

impl TokenSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            issuer: string_or("SMSOPS_JWT_ISSUER", "smsops")?,
            audience: string_or("SMSOPS_JWT_AUDIENCE", "smsops-api")?,
        })
    }
}

/// Where MongoDB is; shared by the services that keep documents.
pub fn mongo_url() -> Result<String, ConfigError> {
    string_or("SMSOPS_MONGO_URL", "mongodb://127.0.0.1:27017")
}

/// The MySQL server (no database part); each service names its own database.
pub fn mysql_url() -> Result<String, ConfigError> {
    string_or("SMSOPS_MYSQL_URL", "mysql://root@127.0.0.1:3306")
}

/// The RabbitMQ broker.
pub fn amqp_url() -> Result<String, ConfigError> {
    string_or("SMSOPS_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
}

/// Where auth-svc answers gRPC; the services fetch token keys from it.
pub fn auth_url() -> Result<String, ConfigError> {
    string_or("SMSOPS_AUTH_URL", "http://127.0.0.1:50051")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_value_names_the_variable() {
        let err = parse::<u16>("SMSOPS_X_PORT", Some("eighty".into())).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("SMSOPS_X_PORT: invalid value \"eighty\"")
        );
    }

    #[test]
    fn zero_duration_is_refused() {
        assert!(positive("SMSOPS_X_SECS", 0).is_err());
        assert_eq!(positive("SMSOPS_X_SECS", 3).unwrap(), 3);
    }
}
