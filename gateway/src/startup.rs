//! Builds the gateway from its config and runs it until asked to stop.

use std::{future::Future, net::SocketAddr, sync::Arc};

use actix_web::{App, HttpServer, dev::Server, middleware, web};
use smsops_common::{
    shutdown,
    startup::{StartupError, bind},
};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::{
    access_log,
    callbacks::CallbackBatcher,
    config::GatewayConfig,
    error::{json_error, query_error},
    grpc::Services,
    limiter::{self, Limits},
    openapi::ApiDoc,
    routes::{
        alerts, api_keys, audit, auth, dashboard, health, ingest, invitations, live, metrics,
        pairs, prometheus, providers, resource, sessions, sms, sms_batch, users, webhooks,
    },
    sends::SendBatcher,
};

/// Request bodies above this size are refused with 413 `payload_too_large`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// `POST /api/v1/ingest/sms-events` takes up to 1,000 results of ~200 bytes.
pub const MAX_INGEST_BYTES: usize = 512 * 1024;
/// `POST /api/v1/sms/batch` takes 1,000 messages of up to 1,600
/// characters, four bytes each at most in UTF-8.
pub const MAX_SMS_BATCH_BYTES: usize = 8 * 1024 * 1024;

pub struct Application {
    http_addr: SocketAddr,
    server: Server,
}

impl Application {
    /// Binds the HTTP listener and prepares the server; the services behind
    /// it may still be down (their routes answer 503 until they are up).
    pub async fn build(config: GatewayConfig) -> Result<Self, StartupError> {
        let services = web::Data::new(Services::connect(&config)?);
        let callbacks = web::Data::new(CallbackBatcher::start(services.sms.clone()));
        let sends = web::Data::new(SendBatcher::start(services.sms.clone(), config.batch_sends));
        let limits = Arc::new(
            Limits::new(&config).ok_or_else(|| StartupError::Setup("invalid rate limit".into()))?,
        );
        Limits::prune_periodically(&limits);
        let limits = web::Data::from(limits);
        let trusted_proxies = config.trusted_proxies.clone();
        let (listener, http_addr) = bind(config.http_addr).await?;
        let listener = listener.into_std().map_err(|source| StartupError::Bind {
            addr: http_addr,
            source,
        })?;
        let openapi = ApiDoc::openapi();
        if !dashboard::is_built() {
            tracing::warn!(
                "the dashboard is not built: / serves a page that says how \
                 (cd dashboard && npm ci && npm run build, then rebuild the gateway)"
            );
        }
        let telemetry = web::Data::new(smsops_common::prom::Telemetry::new("gateway"));
        // The access log renders parts of every request up front; skip it
        // altogether when nothing would print it (SMSOPS_LOG=warn).
        let access_log_on = tracing::enabled!(target: "http", tracing::Level::INFO);
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(services.clone())
                .app_data(callbacks.clone())
                .app_data(sends.clone())
                .app_data(telemetry.clone())
                .app_data(limits.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(MAX_BODY_BYTES)
                        .error_handler(json_error),
                )
                .app_data(web::QueryConfig::default().error_handler(query_error))
                .app_data(web::PayloadConfig::default().limit(MAX_BODY_BYTES))
                .wrap(middleware::Condition::new(
                    access_log_on,
                    access_log::logger(trusted_proxies.clone()),
                ))
                .wrap(middleware::from_fn(prometheus::record))
                // Outermost, so the access log and everything below it run
                // inside the request's span.
                .wrap(middleware::from_fn(crate::traces::server_span))
                .service(resource("/healthz").route(web::get().to(health::healthz)))
                .service(resource("/readyz").route(web::get().to(health::readyz)))
                .service(resource("/metrics").route(web::get().to(prometheus::metrics)))
                .service(
                    resource("/")
                        .route(web::get().to(dashboard::index))
                        .route(web::head().to(dashboard::index)),
                )
                .service(
                    resource("/index.html")
                        .route(web::get().to(dashboard::index))
                        .route(web::head().to(dashboard::index)),
                )
                .service(
                    resource("/assets/{file:.*}")
                        .route(web::get().to(dashboard::asset))
                        .route(web::head().to(dashboard::asset)),
                )
                .service(web::redirect("/docs", "/docs/"))
                .service(
                    SwaggerUi::new("/docs/{_:.*}").url("/api/v1/openapi.json", openapi.clone()),
                )
                .service(
                    web::scope("/api/v1")
                        .service(
                            resource("/auth/sign-up")
                                .wrap(middleware::from_fn(limiter::per_address))
                                .route(web::post().to(auth::sign_up)),
                        )
                        .service(
                            resource("/auth/sign-in")
                                .wrap(middleware::from_fn(limiter::per_address))
                                .route(web::post().to(auth::sign_in)),
                        )
                        .service(resource("/auth/refresh").route(web::post().to(auth::refresh)))
                        .service(resource("/auth/sign-out").route(web::post().to(auth::sign_out)))
                        .service(resource("/auth/me").route(web::get().to(auth::me)))
                        .service(resource("/users").route(web::get().to(users::list)))
                        .service(
                            resource("/users/{id}")
                                .route(web::patch().to(users::update_role))
                                .route(web::delete().to(users::delete)),
                        )
                        .service(
                            resource("/users/{id}/quota").route(web::put().to(users::set_quota)),
                        )
                        .service(
                            resource("/invitations")
                                .route(web::get().to(invitations::list))
                                .route(web::post().to(invitations::create)),
                        )
                        .service(
                            resource("/invitations/{id}")
                                .route(web::delete().to(invitations::revoke)),
                        )
                        .service(resource("/audit").route(web::get().to(audit::list)))
                        .service(
                            resource("/country-operators")
                                .route(web::get().to(pairs::list))
                                .route(web::post().to(pairs::create)),
                        )
                        .service(
                            resource("/country-operators/{id}")
                                .route(web::get().to(pairs::get))
                                .route(web::patch().to(pairs::update))
                                .route(web::delete().to(pairs::delete)),
                        )
                        .service(
                            resource("/sms")
                                .route(web::get().to(sms::list))
                                .route(web::post().to(sms::send)),
                        )
                        .service(resource("/sms/preview").route(web::post().to(sms::preview)))
                        .service(
                            resource("/sms/batch")
                                // 1,000 bodies of up to 1,600 characters.
                                .app_data(
                                    web::JsonConfig::default()
                                        .limit(MAX_SMS_BATCH_BYTES)
                                        .error_handler(json_error),
                                )
                                .route(web::post().to(sms_batch::send_batch)),
                        )
                        .service(resource("/providers").route(web::get().to(providers::list)))
                        .service(resource("/sms/{id}").route(web::get().to(sms::get)))
                        .service(
                            resource("/sessions")
                                .route(web::get().to(sessions::list))
                                .route(web::post().to(sessions::create)),
                        )
                        .service(resource("/sessions/{id}").route(web::get().to(sessions::get)))
                        .service(
                            resource("/metrics/summary").route(web::get().to(metrics::summary)),
                        )
                        .service(resource("/metrics/series").route(web::get().to(metrics::series)))
                        .service(resource("/live").route(web::get().to(live::live)))
                        .service(
                            resource("/api-keys")
                                .route(web::get().to(api_keys::list))
                                .route(web::post().to(api_keys::create)),
                        )
                        .service(
                            resource("/api-keys/{id}").route(web::delete().to(api_keys::revoke)),
                        )
                        .service(
                            resource("/ingest/sms-events")
                                // A full batch of 1,000 results is larger than
                                // any other request body.
                                .app_data(
                                    web::JsonConfig::default()
                                        .limit(MAX_INGEST_BYTES)
                                        .error_handler(json_error),
                                )
                                .route(web::post().to(ingest::sms_events)),
                        )
                        .service(
                            resource("/alerts")
                                .route(web::get().to(alerts::list))
                                .route(web::post().to(alerts::trigger)),
                        )
                        .service(
                            resource("/alerts/rules")
                                .route(web::get().to(alerts::get_rules))
                                .route(web::put().to(alerts::update_rules)),
                        )
                        .service(
                            resource("/sessions/{id}/stop").route(web::post().to(sessions::stop)),
                        )
                        .service(
                            resource("/sessions/{id}/restart")
                                .route(web::post().to(sessions::restart)),
                        )
                        .service(
                            resource("/sessions/{id}/audit").route(web::get().to(sessions::audit)),
                        ),
                )
                .service(
                    resource("/webhooks/twilio/status")
                        .route(web::post().to(webhooks::twilio_status)),
                )
                // The dashboard's client-side routes, else the JSON 404.
                .default_service(web::to(dashboard::fallback))
        })
        .disable_signals()
        // Live feeds and small JSON replies must not wait for delayed acks.
        .tcp_nodelay(true)
        .shutdown_timeout(10)
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr: http_addr,
            source,
        })?;
        if config.workers > 0 {
            server = server.workers(config.workers);
        }
        tracing::info!(addr = %http_addr, "http listening");
        Ok(Self {
            http_addr,
            server: server.run(),
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        self.run_until(shutdown::signal()).await
    }

    /// Serves until `stop` resolves, then finishes in-flight requests.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<(), StartupError> {
        let handle = self.server.handle();
        let server = self.server;
        tokio::pin!(server);
        tokio::select! {
            result = &mut server => result.map_err(|err| StartupError::Serve(err.to_string()))?,
            () = stop => {
                // The server future must keep being polled to act on the stop command.
                let (_, result) = tokio::join!(handle.stop(true), server);
                result.map_err(|err| StartupError::Serve(err.to_string()))?;
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}
