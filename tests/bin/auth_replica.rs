//! auth-svc exactly as its own binary runs it, built in this package so the
//! end-to-end tests can start it as a child process and read its memory.

// As auth-svc's own binary: the allocator is part of what is measured.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    smsops_common::startup::serve_process("auth-svc", run()).await;
}

async fn run() -> Result<(), smsops_common::startup::StartupError> {
    let config = auth_svc::config::AuthConfig::from_env()?;
    auth_svc::startup::Application::build(config)
        .await?
        .run_until_stopped()
        .await
}
