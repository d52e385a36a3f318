use gateway::{config::GatewayConfig, startup::Application};
use smsops_common::startup::{StartupError, exit_on_error};

#[tokio::main]
async fn main() {
    smsops_common::telemetry::init("gateway");
    exit_on_error("gateway", run().await);
}

async fn run() -> Result<(), StartupError> {
    Application::build(GatewayConfig::from_env()?)
        .await?
        .run_until_stopped()
        .await
}
