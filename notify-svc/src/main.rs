// The same allocator as every smsops binary (see sms-svc).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    smsops_common::startup::serve_process("notify-svc", notify_svc::startup::run_from_env()).await;
}
