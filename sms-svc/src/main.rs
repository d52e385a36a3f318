use sms_svc::{config::SmsConfig, startup::Application};
use smsops_common::startup::{StartupError, exit_on_error};

#[tokio::main]
async fn main() {
    smsops_common::telemetry::init("sms-svc");
    exit_on_error("sms-svc", run().await);
}

async fn run() -> Result<(), StartupError> {
    Application::build(SmsConfig::from_env()?)
        .await?
        .run_until_stopped()
        .await
}
