use auth_svc::{config::AuthConfig, core::keys, startup::Application};
use smsops_common::startup::{StartupError, exit_on_error};

// glibc malloc spent a fifth of the SMS pipeline's CPU in bench-sms.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [command, path] = args.as_slice()
        && command == "gen-key"
    {
        // `auth-svc gen-key PATH`: writes a new Ed25519 signing key (PKCS#8 PEM).
        let written = keys::write_new_key(std::path::Path::new(path));
        return exit_on_error(
            "auth-svc",
            written.map_err(|err| StartupError::Setup(err.to_string())),
        );
    }
    smsops_common::startup::serve_process("auth-svc", run()).await;
}

async fn run() -> Result<(), StartupError> {
    Application::build(AuthConfig::from_env()?)
        .await?
        .run_until_stopped()
        .await
}
