use auth_svc::{config::AuthConfig, core::keys, startup::Application};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [command, path] = args.as_slice()
        && command == "gen-key"
    {
        // `auth-svc gen-key PATH`: writes a new Ed25519 signing key (PKCS#8 PEM).
        return Ok(keys::write_new_key(std::path::Path::new(path))?);
    }
    smsops_common::telemetry::init("auth-svc");
    let config = AuthConfig::from_env()?;
    let app = Application::build(config).await?;
    app.run_until_stopped().await?;
    Ok(())
}
