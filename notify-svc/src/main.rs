use notify_svc::{config::NotifyConfig, startup::Application};
use smsops_common::startup::{StartupError, exit_on_error};

// The same allocator as every smsops binary (see sms-svc).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    smsops_common::telemetry::init("notify-svc");
    exit_on_error("notify-svc", run().await);
}

async fn run() -> Result<(), StartupError> {
    Application::build(NotifyConfig::from_env()?)
        .await?
        .run_until_stopped()
        .await
}
