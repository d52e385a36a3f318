use operator_svc::{config::OperatorConfig, startup::Application};
use smsops_common::startup::StartupError;

// glibc malloc spent a fifth of the SMS pipeline's CPU in bench-sms.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    smsops_common::startup::serve_process("operator-svc", run()).await;
}

async fn run() -> Result<(), StartupError> {
    Application::build(OperatorConfig::from_env()?)
        .await?
        .run_until_stopped()
        .await
}
