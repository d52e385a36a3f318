use operator_svc::{config::OperatorConfig, startup::Application};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    smsops_common::telemetry::init("operator-svc");
    let config = OperatorConfig::from_env()?;
    let app = Application::build(config).await?;
    app.run_until_stopped().await?;
    Ok(())
}
