//! One of the services exactly as its own binary runs it (`replica sms-svc`,
//! `metrics-svc`, `notify-svc` or `gateway`), built in this package so the
//! end-to-end tests can start it as a child process, kill it and stop it.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let asked = std::env::args().nth(1).unwrap_or_default();
    let Some(service) = ["sms-svc", "metrics-svc", "notify-svc", "gateway"]
        .into_iter()
        .find(|known| *known == asked)
    else {
        eprintln!("replica: no service {asked:?} (sms-svc, metrics-svc, notify-svc or gateway)");
        std::process::exit(2);
    };
    let run = async move {
        match service {
            "sms-svc" => sms_svc::startup::run_from_env().await,
            "metrics-svc" => metrics_svc::startup::run_from_env().await,
            "gateway" => gateway_from_env().await,
            _ => notify_svc::startup::run_from_env().await,
        }
    };
    smsops_common::startup::serve_process(service, run).await;
}

async fn gateway_from_env() -> Result<(), smsops_common::startup::StartupError> {
    gateway::startup::Application::build(gateway::config::GatewayConfig::from_env()?)
        .await?
        .run_until_stopped()
        .await
}
