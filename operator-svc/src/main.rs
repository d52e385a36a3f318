use operator_svc::{config::OperatorConfig, startup::Application};
use smsops_common::startup::{StartupError, exit_on_error};

#[tokio::main]
async fn main() {
    smsops_common::telemetry::init("operator-svc");
    exit_on_error("operator-svc", run().await);
}

async fn run() -> Result<(), StartupError> {
    Application::build(OperatorConfig::from_env()?)
        .await?
        .run_until_stopped()
        .await
}
