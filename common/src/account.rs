//! A service's own account in auth-svc, for what it does on no caller's
//! behalf: process-svc's sends and session records, notify-svc's route
//! switches. auth-svc creates each account at its start-up from the same
//! settings the service signs in with.

use std::{
    future::Future,
    pin::Pin,
    time::{Duration, Instant},
};

use smsops_proto::auth::v1::{SignInRequest, auth_service_client::AuthServiceClient};
use tokio::sync::Mutex;

use crate::{ApiError, ErrorCode, audit::ServiceToken, grpc::Channel};

/// Access tokens are renewed this long before they expire.
const RENEW_BEFORE: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct ServiceAccount {
    pub email: String,
    pub password: String,
    /// The settings' prefix (`SMSOPS_PROCESS`), named when auth-svc refuses.
    pub settings: &'static str,
}

/// Without the password: a config printed into a log must not carry it.
impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// The account's access token, signed in for on first use and renewed
/// before it expires.
pub struct AccountToken {
    auth: AuthServiceClient<Channel>,
    account: ServiceAccount,
    current: Mutex<Option<(String, Instant)>>,
}

impl AccountToken {
    pub fn new(auth: Channel, account: ServiceAccount) -> Self {
        Self {
            auth: AuthServiceClient::new(auth),
            account,
            current: Mutex::new(None),
        }
    }

    pub async fn token(&self) -> Result<String, ApiError> {
        let mut current = self.current.lock().await;
        if let Some((token, renew_at)) = current.as_ref()
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let (token, expires_in) = self.sign_in().await.inspect_err(|err| {
            if err.code == ErrorCode::InvalidCredentials {
                let settings = self.account.settings;
                tracing::error!(
                    email = %self.account.email,
                    "service account refused: auth-svc needs the same {settings}_EMAIL and {settings}_PASSWORD"
                );
            }
        })?;
        let renew_in = Duration::from_secs(expires_in).saturating_sub(RENEW_BEFORE);
        *current = Some((token.clone(), Instant::now() + renew_in));
        Ok(token)
    }

    /// The token was refused: sign in again next time.
    pub async fn forget(&self) {
        *self.current.lock().await = None;
    }

    async fn sign_in(&self) -> Result<(String, u64), ApiError> {
        let request = SignInRequest {
            email: self.account.email.clone(),
            password: self.account.password.clone(),
        };
        let reply = self
            .auth
            .clone()
            .sign_in(request)
            .await
            .map_err(|status| ApiError::from_status(&status))?
            .into_inner();
        Ok((reply.access_token, reply.expires_in))
    }
}

impl ServiceToken for AccountToken {
    fn token(&self) -> Pin<Box<dyn Future<Output = Result<String, ApiError>> + Send + '_>> {
        Box::pin(AccountToken::token(self))
    }

    fn forget(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(AccountToken::forget(self))
    }
}
