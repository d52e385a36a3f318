//! Structured logging for every service.

use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber: `SMSOPS_LOG` is the filter (default `info`),
/// `SMSOPS_LOG_FORMAT=json` switches to one JSON object per line. Calling it
/// twice (as tests do) keeps the first subscriber.
pub fn init(service: &'static str) {
    let filter = EnvFilter::try_from_env("SMSOPS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("SMSOPS_LOG_FORMAT").is_ok_and(|format| format == "json");
    // Colour only on a terminal: `make up` writes logs to files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi);
    let result = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if result.is_ok() {
        tracing::info!(service, version = env!("CARGO_PKG_VERSION"), "starting");
    }
}
