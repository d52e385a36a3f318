use smsops_common::startup::exit_on_error;

// The same allocator as every smsops binary (see sms-svc).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    smsops_common::telemetry::init("notify-svc");
    exit_on_error("notify-svc", notify_svc::startup::run_from_env().await);
}
