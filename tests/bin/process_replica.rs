//! process-svc exactly as its own binary runs it, built in this package so
//! the end-to-end tests can start it as a child process and kill it.

#[tokio::main]
async fn main() {
    smsops_common::startup::serve_process("process-svc", process_svc::startup::run_from_env())
        .await;
}
