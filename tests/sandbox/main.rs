//! The sandbox: local stand-ins for the Twilio and Telegram HTTP APIs, on
//! loopback, speaking their real request and response shapes (error bodies
//! and 429s included), with switches to inject latency and failures.
//!
//! An SMSC too, speaking SMPP 3.4 on its own port.
//!
//! `sandbox [--addr 127.0.0.1:4010] [--smsc-addr 127.0.0.1:2775] [--config rules.json]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bucket;
mod config;
mod faults;
mod server;
mod smsc;
mod telegram;
mod twilio;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let addr = value("--addr").unwrap_or_else(|| "127.0.0.1:4010".into());
    let smsc_addr = value("--smsc-addr").unwrap_or_else(|| "127.0.0.1:0".into());
    let config = match value("--config") {
        Some(path) => config::Config::load(&path).map_err(std::io::Error::other)?,
        None => config::Config::default(),
    };
    server::run(&addr, &smsc_addr, config).await
}
