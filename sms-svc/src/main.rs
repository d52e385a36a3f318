// glibc malloc spent a fifth of the SMS pipeline's CPU in bench-sms.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    smsops_common::startup::serve_process("sms-svc", sms_svc::startup::run_from_env()).await;
}
