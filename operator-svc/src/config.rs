use std::net::SocketAddr;

use smsops_common::{
    config::{self, ConfigError, TokenSettings},
    grpc::ClientTimeouts,
};

#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// gRPC listen address; port 0 picks a free port.
    pub grpc_addr: SocketAddr,
    /// Where Prometheus scrapes `GET /metrics`; port 0 picks a free port.
    pub prometheus_addr: SocketAddr,
    pub mongo_url: String,
    pub database: String,
    pub collection: String,
    /// auth-svc, for the public keys that verify forwarded tokens.
    pub auth_url: String,
    /// process-svc, asked whether a session uses a pair before it is deleted.
    pub process_url: String,
    pub tokens: TokenSettings,
    pub timeouts: ClientTimeouts,
}

impl OperatorConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            prometheus_addr: config::or(
                "SMSOPS_OPERATOR_PROMETHEUS_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 9102)),
            )?,
            grpc_addr: config::or(
                "SMSOPS_OPERATOR_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 50052)),
            )?,
            mongo_url: config::mongo_url()?,
            database: config::string_or("SMSOPS_OPERATOR_DB", "sms_config")?,
            collection: config::string_or("SMSOPS_OPERATOR_COLLECTION", "country_operator")?,
            auth_url: config::auth_url()?,
            process_url: config::string_or("SMSOPS_PROCESS_URL", "http://127.0.0.1:50054")?,
            tokens: TokenSettings::from_env()?,
            timeouts: ClientTimeouts::from_env()?,
        })
    }
}
