use metrics_svc::{config::MetricsConfig, startup::Application};
use smsops_common::startup::{StartupError, exit_on_error};

// glibc malloc spent a fifth of the SMS pipeline's CPU in bench-sms.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    smsops_common::telemetry::init("metrics-svc");
    exit_on_error("metrics-svc", run().await);
}

async fn run() -> Result<(), StartupError> {
    Application::build(MetricsConfig::from_env()?)
        .await?
        .run_until_stopped()
        .await
}
