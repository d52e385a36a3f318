//! The test harness: starts the real services in-process on port 0 against a
//! real MongoDB-wire server, with fresh database names per test, and talks to
//! the gateway over HTTP like any client would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod amqp;
pub mod auth;
pub mod bench;
pub mod browser;
pub mod child;
pub mod host;
pub mod logs;
pub mod metrics;
pub mod mongo;
pub mod otlp;
pub mod process;
pub mod proxy;
pub mod sandbox;
pub mod sms;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use process_svc::config::ProcessConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use smsops_common::{config::TokenSettings, grpc::ClientTimeouts};
use tokio::{sync::oneshot, task::JoinHandle};

pub const ADMIN_PASSWORD: &str = "admin-password-0123";
pub const USER_PASSWORD: &str = "user-password-0123";
pub const SERVICE_PASSWORD: &str = "process-svc-password-0123";
pub const SERVICE_EMAIL: &str = "process-svc@smsops.test";
/// notify-svc's service account, which records its route switches.
pub const NOTIFY_EMAIL: &str = "notify-svc@smsops.test";

/// Knobs a test may turn before the stack starts.
#[derive(Clone)]
pub struct Options {
    pub auth_rate_per_minute: u32,
    pub auth_burst: u32,
    /// `POST /sms` and `POST /sessions` per user, each.
    pub send_rate_per_minute: u32,
    pub send_burst: u32,
    /// The gateway's `SMSOPS_GATEWAY_TRUSTED_PROXIES`.
    pub trusted_proxies: String,
    /// auth-svc's own limits; the default throttles nothing a test does.
    pub auth_limits: auth_svc::limits::LimitsConfig,
    /// How long an access token lasts (auth-svc in this process only).
    pub access_ttl: Duration,
    /// Run auth-svc from its own binary as a child process (see
    /// [`auth::AuthProcess`]): so a test can read its memory apart, and its
    /// hashing pool, one per process, is not shared with other tests.
    pub auth_apart: bool,
    pub rpc_timeout: Duration,
    /// Where sms-svc finds Twilio; the default goes nowhere.
    pub twilio_base_url: String,
    /// An SMSC to send through over SMPP instead (the sandbox's
    /// `smsc_addr`), bound with the sandbox's credentials: the account
    /// `smpp`, sms-svc's only one.
    pub smpp_addr: Option<String>,
    /// With `smpp_addr`: two accounts, `twilio` (first in the default
    /// order) and `smsc` over SMPP, for the routing tests.
    pub twilio_beside_smpp: bool,
    /// The `smsc` account's rate, messages a second; 0 is no limit.
    pub smsc_rate: u32,
    /// Where sms-svc finds RabbitMQ (a test may put a proxy in between).
    pub amqp_url: String,
    /// Where sms-svc finds MariaDB (likewise); the other services go direct.
    pub sms_mysql_url: String,
    pub provider_timeout: Duration,
    /// How long a message may stay `accepted` before the sweeper fails it.
    pub stale_after: Duration,
    pub sweep_every: Duration,
    /// Retention horizons: counted event ids (metrics-svc), messages
    /// (sms-svc), and how often they are pruned.
    pub dedupe_keep: Duration,
    pub messages_keep: Duration,
    pub retention_every: Duration,
    /// When sms-svc looks a late receipt up at the provider, and gives up.
    pub reconcile: sms_svc::core::ReconcileConfig,
    /// Consecutive provider failures that open sms-svc's circuit breaker.
    pub breaker_threshold: u32,
    /// Requests sms-svc keeps open at the provider at once.
    pub provider_concurrency: usize,
    /// process-svc's lease length and heartbeat.
    pub lease_ttl: Duration,
    pub heartbeat: Duration,
    /// Failed sends in a row after which a session fails.
    pub failure_streak: u32,
    /// Per-country caps, messages per minute.
    pub country_budgets: Vec<(String, f64)>,
    /// Where notify-svc finds the Telegram Bot API; the default goes nowhere.
    pub telegram_base_url: String,
    /// The Telegram chats alerts go to.
    pub telegram_chats: Vec<String>,
    /// Run process-svc in this process; off, a test starts replicas as
    /// child processes with [`TestApp::spawn_process_replica`].
    pub process_in_process: bool,
    /// Run sms-svc from its own binary as a child process (see
    /// [`sms::SmsProcess`]), not in this process: so a benchmark can read
    /// its memory apart.
    pub sms_apart: bool,
    /// Who may sign up (auth-svc's `SMSOPS_SIGNUP`).
    pub signup: auth_svc::core::SignupPolicy,
    /// What each role may send by default.
    pub quotas: auth_svc::core::RoleQuotas,
    /// sms-svc's cap on one provider account's messages a day.
    pub account_daily_cap: Option<u64>,
    /// Run metrics-svc and notify-svc as child processes from their
    /// binary, so a test can kill or stop them ([`TestApp::kill_metrics`]).
    pub consumers_apart: bool,
    /// Run the gateway from its own binary as a child process.
    pub gateway_apart: bool,
    /// The gateway's worker threads; 0 is one per core, as in production.
    pub gateway_workers: usize,
    /// The gateway's `SMSOPS_GATEWAY_BATCH_SENDS`.
    pub batch_sends: bool,
    /// Added to the environment of every service run as a child process
    /// (`OTEL_*` for the trace tests).
    pub child_env: Vec<(String, String)>,
    /// Run metrics-svc and notify-svc, the event consumers. A benchmark of
    /// the sending side turns them off: in production they have cores of
    /// their own, here they would take the ones being measured.
    pub consumers: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            auth_rate_per_minute: 60_000,
            auth_burst: 1_000,
            send_rate_per_minute: 600_000,
            send_burst: 100_000,
            trusted_proxies: String::new(),
            auth_limits: generous_auth_limits(),
            access_ttl: Duration::from_secs(900),
            auth_apart: false,
            rpc_timeout: Duration::from_secs(5),
            twilio_base_url: "http://127.0.0.1:9".into(),
            smpp_addr: None,
            twilio_beside_smpp: false,
            smsc_rate: 0,
            amqp_url: amqp::URL.into(),
            sms_mysql_url: "mysql://root@127.0.0.1:3306".into(),
            provider_timeout: Duration::from_secs(3),
            stale_after: Duration::from_secs(300),
            sweep_every: Duration::from_secs(30),
            reconcile: sms_svc::core::ReconcileConfig::default(),
            dedupe_keep: Duration::from_secs(3 * 86_400),
            messages_keep: Duration::from_secs(90 * 86_400),
            retention_every: Duration::from_secs(60),
            breaker_threshold: 20,
            provider_concurrency: 64,
            lease_ttl: Duration::from_secs(2),
            heartbeat: Duration::from_millis(250),
            failure_streak: 20,
            country_budgets: Vec::new(),
            process_in_process: true,
            sms_apart: false,
            consumers: true,
            consumers_apart: false,
            gateway_apart: false,
            gateway_workers: 1,
            batch_sends: true,
            child_env: Vec::new(),
            signup: auth_svc::core::SignupPolicy::Invite,
            // Tests that are not about quotas send as much as they like;
            // those that are set their own.
            quotas: auth_svc::core::RoleQuotas {
                admin: smsops_common::auth::Quota::UNLIMITED,
                operator: smsops_common::auth::Quota::UNLIMITED,
            },
            account_daily_cap: None,
            telegram_base_url: "http://127.0.0.1:9".into(),
            telegram_chats: vec!["-1001".into()],
        }
    }
}

/// Limits no test reaches by accident: the harness signs in a lot.
pub fn generous_auth_limits() -> auth_svc::limits::LimitsConfig {
    use auth_svc::limits::{LimitsConfig, Rate, RpcLimit};
    let limit = RpcLimit {
        per_key: Rate::new(60_000, 1_000),
        overall: Rate::new(600_000, 10_000),
    };
    LimitsConfig {
        sign_in: limit,
        sign_up: limit,
        refresh: limit,
        exchange_api_key: limit,
        ..LimitsConfig::default()
    }
}

/// An sms-svc replica besides the test's own (see [`TestApp::spawn_sms_replica`]).
pub struct SmsReplica {
    pub addr: SocketAddr,
    pub prometheus: SocketAddr,
    running: Running,
}

impl SmsReplica {
    pub async fn stop(self) {
        self.running.stop().await;
    }
}

/// A service running in this process, stopped when asked or when dropped.
struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn spawn<F>(run: impl FnOnce(oneshot::Receiver<()>) -> F) -> Running
where
    F: Future<Output = ()> + Send + 'static,
{
    let (stop, stopped) = oneshot::channel();
    Running {
        stop: Some(stop),
        task: tokio::spawn(run(stopped)),
    }
}

pub struct TestApp {
    pub base_url: String,
    pub http: reqwest::Client,
    pub admin_email: String,
    pub key_dir: PathBuf,
    pub mongo_url: String,
    pub auth_db: String,
    pub operator_db: String,
    pub auth_addr: SocketAddr,
    pub operator_addr: SocketAddr,
    pub sms_addr: SocketAddr,
    pub sms_db: String,
    /// This test's own `sms.events` exchange.
    pub exchange: String,
    pub process_addr: SocketAddr,
    pub process_db: String,
    pub metrics_addr: SocketAddr,
    pub metrics_db: String,
    /// metrics-svc's own queue on this test's `sms.events` exchange.
    pub metrics_queue: String,
    /// This test's own `session.events` exchange.
    pub session_exchange: String,
    /// This test's own `changes.events` exchange (auth-svc's notices).
    pub changes_exchange: String,
    /// Where notify-svc publishes the sick routes sms-svc moves traffic off.
    pub route_health_exchange: String,
    pub notify_addr: SocketAddr,
    pub notify_db: String,
    /// notify-svc's own queue on this test's exchanges.
    pub notify_queue: String,
    /// Where each in-process service serves `GET /metrics`.
    pub prometheus: std::collections::BTreeMap<&'static str, SocketAddr>,
    options: Options,
    process: Option<Running>,
    metrics: Option<Running>,
    notify: Option<Running>,
    auth: Option<Running>,
    operator: Option<Running>,
    sms: Option<Running>,
    /// auth-svc when it runs apart ([`Options::auth_apart`]).
    pub auth_process: Option<auth::AuthProcess>,
    /// sms-svc when it runs apart ([`Options::sms_apart`]).
    pub sms_process: Option<sms::SmsProcess>,
    /// metrics-svc and notify-svc when they run apart
    /// ([`Options::consumers_apart`]).
    pub metrics_process: Option<child::ServiceChild>,
    pub gateway_process: Option<child::ServiceChild>,
    pub notify_process: Option<child::ServiceChild>,
    gateway: Option<Running>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> Self {
        let mongo_url = mongo::url();
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let key_dir = std::env::temp_dir().join(format!("smsops-test-{run_id}"));
        auth_svc::core::keys::write_new_key(&key_dir.join("signing.pem")).unwrap();
        let mut app = Self {
            base_url: String::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            admin_email: format!("admin-{run_id}@smsops.test"),
            key_dir,
            mongo_url,
            auth_db: format!("test_auth_{run_id}"),
            operator_db: format!("test_config_{run_id}"),
            auth_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            operator_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            sms_addr: free_addr(),
            sms_db: format!("test_sms_{run_id}"),
            exchange: format!("sms.events.test.{run_id}"),
            process_addr: free_addr(),
            process_db: format!("test_process_{run_id}"),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_db: format!("test_metrics_{run_id}"),
            metrics_queue: format!("metrics.test.{run_id}"),
            session_exchange: format!("session.events.test.{run_id}"),
            changes_exchange: format!("changes.events.test.{run_id}"),
            route_health_exchange: format!("route.health.test.{run_id}"),
            notify_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            notify_db: format!("test_notify_{run_id}"),
            notify_queue: format!("notify.test.{run_id}"),
            prometheus: Default::default(),
            options,
            process: None,
            metrics: None,
            notify: None,
            auth: None,
            operator: None,
            sms: None,
            auth_process: None,
            sms_process: None,
            metrics_process: None,
            gateway_process: None,
            notify_process: None,
            gateway: None,
        };
        app.start_auth(app.key_dir.join("signing.pem"), vec![])
            .await;
        app.start_operator().await;
        if app.options.process_in_process {
            // On the address chosen up front: operator-svc, started first,
            // asks process-svc before it deletes a pair.
            app.start_process().await;
        }
        if app.options.consumers {
            app.start_metrics().await;
            app.start_notify().await;
        }
        app.start_gateway().await;
        app.start_sms().await;
        app
    }

    fn tokens() -> TokenSettings {
        TokenSettings {
            issuer: "smsops".into(),
            audience: "smsops-api".into(),
        }
    }

    fn timeouts(&self) -> ClientTimeouts {
        ClientTimeouts {
            connect: Duration::from_secs(1),
            request: self.options.rpc_timeout,
        }
    }

    /// Starts auth-svc (again, on the same port if it ran before).
    pub async fn start_auth(&mut self, signing_key: PathBuf, extra_keys: Vec<PathBuf>) {
        let config = auth_svc::config::AuthConfig {
            grpc_addr: self.auth_addr,
            prometheus_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            mongo_url: self.mongo_url.clone(),
            database: self.auth_db.clone(),
            signing_key,
            extra_keys,
            tokens: Self::tokens(),
            access_ttl: self.options.access_ttl,
            refresh_ttl: Duration::from_secs(3600),
            admin: Some(auth_svc::config::AccountSeed {
                email: self.admin_email.clone(),
                password: ADMIN_PASSWORD.into(),
            }),
            service_account: Some(auth_svc::config::AccountSeed {
                email: SERVICE_EMAIL.into(),
                password: SERVICE_PASSWORD.into(),
            }),
            notify_account: Some(auth_svc::config::AccountSeed {
                email: NOTIFY_EMAIL.into(),
                password: SERVICE_PASSWORD.into(),
            }),
            signup: self.options.signup,
            quotas: self.options.quotas,
            limits: self.options.auth_limits.clone(),
            changes: Some(auth_svc::config::ChangesConfig {
                amqp_url: self.options.amqp_url.clone(),
                exchange: self.changes_exchange.clone(),
            }),
        };
        if self.options.auth_apart {
            if self.auth_addr.port() == 0 {
                self.auth_addr = free_addr();
            }
            let prometheus = free_addr();
            let auth = auth::AuthProcess::start(&auth_svc::config::AuthConfig {
                grpc_addr: self.auth_addr,
                prometheus_addr: prometheus,
                ..config
            });
            auth.ready(self.auth_addr).await;
            self.prometheus.insert("auth-svc", prometheus);
            self.auth_process = Some(auth);
            return;
        }
        let app = auth_svc::startup::Application::build(config).await.unwrap();
        self.auth_addr = app.grpc_addr();
        if let Some(addr) = app.prometheus_addr() {
            self.prometheus.insert("auth-svc", addr);
        }
        self.auth = Some(spawn(|stop| async move {
            app.run_until(async move {
                let _ = stop.await;
            })
            .await
            .unwrap();
        }));
    }

    pub async fn stop_auth(&mut self) {
        if let Some(running) = self.auth.take() {
            running.stop().await;
        }
        drop(self.auth_process.take());
    }

    /// Starts operator-svc (again, on the same port if it ran before).
    pub async fn start_operator(&mut self) {
        let config = operator_svc::config::OperatorConfig {
            grpc_addr: self.operator_addr,
            prometheus_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            mongo_url: self.mongo_url.clone(),
            database: self.operator_db.clone(),
            collection: "country_operator".into(),
            auth_url: format!("http://{}", self.auth_addr),
            process_url: format!("http://{}", self.process_addr),
            tokens: Self::tokens(),
            timeouts: self.timeouts(),
        };
        let app = operator_svc::startup::Application::build(config)
            .await
            .unwrap();
        self.operator_addr = app.grpc_addr();
        if let Some(addr) = app.prometheus_addr() {
            self.prometheus.insert("operator-svc", addr);
        }
        self.operator = Some(spawn(|stop| async move {
            app.run_until(async move {
                let _ = stop.await;
            })
            .await
            .unwrap();
        }));
    }

    pub async fn stop_operator(&mut self) {
        if let Some(running) = self.operator.take() {
            running.stop().await;
        }
    }

    /// Starts sms-svc (again, on the same port if it ran before).
    pub async fn start_sms(&mut self) {
        if self.options.sms_apart {
            let sms =
                sms::SmsProcess::start(&self.sms_config(self.sms_addr), &self.options.child_env);
            sms.ready(self.sms_addr).await;
            self.sms_process = Some(sms);
            return;
        }
        let replica = self.spawn_sms_replica(self.sms_addr).await;
        self.prometheus.insert("sms-svc", replica.prometheus);
        self.sms = Some(replica.running);
    }

    /// One more sms-svc on this test's database and exchange, as a second
    /// replica would run; the gateway does not call it.
    pub async fn spawn_sms_replica(&self, addr: SocketAddr) -> SmsReplica {
        let app = sms_svc::startup::Application::build(self.sms_config(addr))
            .await
            .unwrap();
        SmsReplica {
            addr: app.grpc_addr(),
            prometheus: app.prometheus_addr().unwrap(),
            running: spawn(|stop| async move {
                app.run_until(async move {
                    let _ = stop.await;
                })
                .await
                .unwrap();
            }),
        }
    }

    fn sms_config(&self, grpc_addr: SocketAddr) -> sms_svc::config::SmsConfig {
        sms_svc::config::SmsConfig {
            grpc_addr,
            prometheus_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            mysql_url: self.options.sms_mysql_url.clone(),
            database: self.sms_db.clone(),
            amqp_url: self.options.amqp_url.clone(),
            exchange: self.exchange.clone(),
            route_health_exchange: self.route_health_exchange.clone(),
            auth_url: format!("http://{}", self.auth_addr),
            operator_url: format!("http://{}", self.operator_addr),
            tokens: Self::tokens(),
            timeouts: self.timeouts(),
            providers: self.provider_accounts(),
            delivery: sms_svc::config::DeliveryConfig {
                request_timeout: self.options.provider_timeout,
                backoff_base: Duration::from_millis(20),
                stale_after: self.options.stale_after,
                sweep_every: self.options.sweep_every,
                breaker_threshold: self.options.breaker_threshold,
                concurrency: self.options.provider_concurrency,
                ..Default::default()
            },
            pair_cache_ttl: Duration::from_secs(30),
            account_daily_cap: self.options.account_daily_cap,
            reconcile: self.options.reconcile,
            messages_keep: self.options.messages_keep,
            retention_every: self.options.retention_every,
        }
    }

    /// sms-svc's provider accounts, as [`Options`] asks for them.
    fn provider_accounts(&self) -> Vec<sms_svc::config::ProviderAccount> {
        use sms_svc::config::{AccountKind, ProviderAccount};
        let twilio = ProviderAccount {
            name: "twilio".into(),
            rate_per_second: 0,
            concurrency: None,
            kind: AccountKind::Twilio(sms_svc::config::TwilioConfig {
                base_url: self.options.twilio_base_url.clone(),
                account_sid: sandbox::ACCOUNT_SID.into(),
                auth_token: sandbox::AUTH_TOKEN.into(),
                // As Twilio recommends and its libraries do: an API key for
                // requests, the auth token for callback signatures.
                api_key: Some(sms_svc::config::TwilioApiKey {
                    sid: sandbox::API_KEY_SID.into(),
                    secret: sandbox::API_KEY_SECRET.into(),
                }),
                from: Some("+15005550006".into()),
                messaging_service_sid: None,
                status_callback_url: Some(self.url("/webhooks/twilio/status")),
            }),
        };
        let Some(addr) = self.options.smpp_addr.clone() else {
            return vec![twilio];
        };
        let smpp = AccountKind::Smpp(sms_svc::config::SmppConfig {
            addr,
            system_id: sandbox::SMPP_SYSTEM_ID.into(),
            password: sandbox::SMPP_PASSWORD.into(),
            source_addr: "smsops".into(),
            window: 10,
            enquire_link_every: Duration::from_secs(5),
            response_timeout: self.options.provider_timeout,
        });
        if !self.options.twilio_beside_smpp {
            return vec![ProviderAccount {
                name: "smpp".into(),
                rate_per_second: self.options.smsc_rate,
                concurrency: None,
                kind: smpp,
            }];
        }
        vec![
            twilio,
            ProviderAccount {
                name: "smsc".into(),
                rate_per_second: self.options.smsc_rate,
                concurrency: None,
                kind: smpp,
            },
        ]
    }

    pub async fn stop_sms(&mut self) {
        if let Some(running) = self.sms.take() {
            running.stop().await;
        }
    }

    /// process-svc's config for this test: in-process, or as a child's
    /// environment (see [`process::Replica`]).
    pub fn process_config(&self, addr: SocketAddr, replica: &str) -> ProcessConfig {
        ProcessConfig {
            grpc_addr: addr,
            prometheus_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            mongo_url: self.mongo_url.clone(),
            database: self.process_db.clone(),
            collection: "sessions".into(),
            amqp_url: self.options.amqp_url.clone(),
            exchange: self.session_exchange.clone(),
            auth_url: format!("http://{}", self.auth_addr),
            operator_url: format!("http://{}", self.operator_addr),
            sms_url: format!("http://{}", self.sms_addr),
            tokens: Self::tokens(),
            timeouts: self.timeouts(),
            account: smsops_common::account::ServiceAccount {
                email: SERVICE_EMAIL.into(),
                password: SERVICE_PASSWORD.into(),
                settings: "SMSOPS_PROCESS",
            },
            supervision: process_svc::config::Supervision {
                replica: replica.into(),
                lease_ttl: self.options.lease_ttl,
                heartbeat: self.options.heartbeat,
                failure_streak: self.options.failure_streak,
                ..Default::default()
            },
            country_budgets: self.options.country_budgets.iter().cloned().collect(),
        }
    }

    /// Starts process-svc in this process (again, on the same port if it ran before).
    pub async fn start_process(&mut self) {
        let config = self.process_config(self.process_addr, "in-process");
        let app = process_svc::startup::Application::build(config)
            .await
            .unwrap();
        self.process_addr = app.grpc_addr();
        if let Some(addr) = app.prometheus_addr() {
            self.prometheus.insert("process-svc", addr);
        }
        self.process = Some(spawn(|stop| async move {
            app.run_until(async move {
                let _ = stop.await;
            })
            .await
            .unwrap();
        }));
    }

    pub async fn stop_process(&mut self) {
        if let Some(running) = self.process.take() {
            running.stop().await;
        }
    }

    /// Starts metrics-svc (again, on the same port if it ran before).
    pub async fn start_metrics(&mut self) {
        let config = metrics_svc::config::MetricsConfig {
            grpc_addr: self.metrics_addr,
            prometheus_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            mysql_url: "mysql://root@127.0.0.1:3306".into(),
            database: self.metrics_db.clone(),
            amqp_url: self.options.amqp_url.clone(),
            exchange: self.exchange.clone(),
            session_exchange: self.session_exchange.clone(),
            changes_exchange: self.changes_exchange.clone(),
            queue: self.metrics_queue.clone(),
            prefetch: 1000,
            auth_url: format!("http://{}", self.auth_addr),
            tokens: Self::tokens(),
            timeouts: self.timeouts(),
            dedupe_keep: self.options.dedupe_keep,
            metrics_keep: Duration::from_secs(400 * 86_400),
            retention_every: self.options.retention_every,
        };
        if self.options.consumers_apart {
            // A child cannot tell the test which port 0 became.
            if self.metrics_addr.port() == 0 {
                self.metrics_addr = free_addr();
            }
            let config = metrics_svc::config::MetricsConfig {
                grpc_addr: self.metrics_addr,
                prometheus_addr: free_addr(),
                ..config
            };
            let child = child::ServiceChild::start(
                "metrics-svc",
                &child::with_extra(child::metrics_env(&config), &self.options.child_env),
            );
            wait_listening(config.grpc_addr, "metrics-svc").await;
            self.prometheus
                .insert("metrics-svc", config.prometheus_addr);
            self.metrics_process = Some(child);
            return;
        }
        let app = metrics_svc::startup::Application::build(config)
            .await
            .unwrap();
        self.metrics_addr = app.grpc_addr();
        if let Some(addr) = app.prometheus_addr() {
            self.prometheus.insert("metrics-svc", addr);
        }
        self.metrics = Some(spawn(|stop| async move {
            app.run_until(async move {
                let _ = stop.await;
            })
            .await
            .unwrap();
        }));
    }

    /// Stops metrics-svc as a crash would: its unacked events go back.
    pub async fn stop_metrics(&mut self) {
        if let Some(running) = self.metrics.take() {
            running.stop().await;
        }
    }

    /// Starts notify-svc (again, on the same port if it ran before).
    pub async fn start_notify(&mut self) {
        let config = notify_svc::config::NotifyConfig {
            grpc_addr: self.notify_addr,
            prometheus_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            mysql_url: "mysql://root@127.0.0.1:3306".into(),
            database: self.notify_db.clone(),
            amqp_url: self.options.amqp_url.clone(),
            sms_exchange: self.exchange.clone(),
            session_exchange: self.session_exchange.clone(),
            queue: self.notify_queue.clone(),
            prefetch: 500,
            evaluate_every: Duration::from_millis(250),
            route_health_exchange: self.route_health_exchange.clone(),
            sms_url: format!("http://{}", self.sms_addr),
            account: Some(smsops_common::account::ServiceAccount {
                email: NOTIFY_EMAIL.into(),
                password: SERVICE_PASSWORD.into(),
                settings: "SMSOPS_NOTIFY",
            }),
            telegram: notify_svc::config::TelegramConfig {
                base_url: self.options.telegram_base_url.clone(),
                bot_token: Some(sandbox::BOT_TOKEN.into()),
                chat_ids: self.options.telegram_chats.clone(),
                request_timeout: Duration::from_secs(3),
            },
            auth_url: format!("http://{}", self.auth_addr),
            tokens: Self::tokens(),
            timeouts: self.timeouts(),
            dedupe_keep: self.options.dedupe_keep,
            retention_every: self.options.retention_every,
        };
        if self.options.consumers_apart {
            if self.notify_addr.port() == 0 {
                self.notify_addr = free_addr();
            }
            let config = notify_svc::config::NotifyConfig {
                grpc_addr: self.notify_addr,
                prometheus_addr: free_addr(),
                ..config
            };
            let child = child::ServiceChild::start(
                "notify-svc",
                &child::with_extra(child::notify_env(&config), &self.options.child_env),
            );
            wait_listening(config.grpc_addr, "notify-svc").await;
            self.prometheus.insert("notify-svc", config.prometheus_addr);
            self.notify_process = Some(child);
            return;
        }
        let app = notify_svc::startup::Application::build(config)
            .await
            .unwrap();
        self.notify_addr = app.grpc_addr();
        if let Some(addr) = app.prometheus_addr() {
            self.prometheus.insert("notify-svc", addr);
        }
        self.notify = Some(spawn(|stop| async move {
            app.run_until(async move {
                let _ = stop.await;
            })
            .await
            .unwrap();
        }));
    }

    /// SIGTERM to sms-svc, metrics-svc or notify-svc running apart; how
    /// long it took to exit, `None` if not within `grace` (then killed).
    pub fn terminate_sms(&mut self, grace: Duration) -> Option<Duration> {
        self.sms_process.take()?.child().terminate(grace)
    }

    pub fn terminate_metrics(&mut self, grace: Duration) -> Option<Duration> {
        self.metrics_process.take()?.terminate(grace)
    }

    pub fn terminate_notify(&mut self, grace: Duration) -> Option<Duration> {
        self.notify_process.take()?.terminate(grace)
    }

    /// SIGKILL to sms-svc, metrics-svc or notify-svc running apart.
    pub fn kill_sms(&mut self) {
        if let Some(mut sms) = self.sms_process.take() {
            sms.child().kill();
        }
    }

    pub fn kill_metrics(&mut self) {
        if let Some(mut child) = self.metrics_process.take() {
            child.kill();
        }
    }

    pub fn kill_notify(&mut self) {
        if let Some(mut child) = self.notify_process.take() {
            child.kill();
        }
    }

    pub async fn stop_notify(&mut self) {
        if let Some(running) = self.notify.take() {
            running.stop().await;
        }
    }

    /// Starts process-svc as a child process on `addr`, named `replica`.
    pub fn spawn_process_replica(&self, addr: SocketAddr, replica: &str) -> process::Replica {
        process::Replica::start(&self.process_config(addr, replica), &self.options.child_env)
    }

    async fn start_gateway(&mut self) {
        let config = gateway::config::GatewayConfig {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            auth_url: format!("http://{}", self.auth_addr),
            operator_url: format!("http://{}", self.operator_addr),
            sms_url: format!("http://{}", self.sms_addr),
            process_url: format!("http://{}", self.process_addr),
            metrics_url: format!("http://{}", self.metrics_addr),
            notify_url: format!("http://{}", self.notify_addr),
            tokens: Self::tokens(),
            timeouts: self.timeouts(),
            auth_rate: gateway::config::RateLimit {
                per_minute: self.options.auth_rate_per_minute,
                burst: self.options.auth_burst,
            },
            send_rate: gateway::config::RateLimit {
                per_minute: self.options.send_rate_per_minute,
                burst: self.options.send_burst,
            },
            trusted_proxies: self.options.trusted_proxies.parse().unwrap(),
            workers: self.options.gateway_workers,
            batch_sends: self.options.batch_sends,
        };
        if self.options.gateway_apart {
            let config = gateway::config::GatewayConfig {
                http_addr: free_addr(),
                ..config
            };
            let env = child::gateway_env(&config, &self.options.trusted_proxies);
            let child = child::ServiceChild::start(
                "gateway",
                &child::with_extra(env, &self.options.child_env),
            );
            wait_listening(config.http_addr, "gateway").await;
            self.base_url = format!("http://{}", config.http_addr);
            self.gateway_process = Some(child);
            return;
        }
        let app = gateway::startup::Application::build(config).await.unwrap();
        self.base_url = format!("http://{}", app.http_addr());
        self.gateway = Some(spawn(|stop| async move {
            app.run_until(async move {
                let _ = stop.await;
            })
            .await
            .unwrap();
        }));
    }

    /// Stops everything and drops this test's databases and key files.
    /// The sum of every sample named `name` that `service` exports to
    /// Prometheus; 0 before the first.
    pub async fn prometheus_sum(&self, service: &str, name: &str) -> f64 {
        self.prometheus_sum_at(self.prometheus[service], name).await
    }

    /// [`Self::prometheus_sum`] for the service serving metrics at `addr`.
    pub async fn prometheus_sum_at(&self, addr: SocketAddr, name: &str) -> f64 {
        self.prometheus_sum_where(addr, name, "").await
    }

    /// [`Self::prometheus_sum`] of the samples whose labels hold `label`
    /// (`method="SendSmsBatch"`, say).
    pub async fn prometheus_sum_labelled(&self, service: &str, name: &str, label: &str) -> f64 {
        self.prometheus_sum_where(self.prometheus[service], name, label)
            .await
    }

    async fn prometheus_sum_where(&self, addr: SocketAddr, name: &str, label: &str) -> f64 {
        let url = format!("http://{addr}/metrics");
        let text = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(['{', ' ']))
                    && line.contains(label)
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub async fn cleanup(mut self) {
        let services = [
            self.gateway.take(),
            self.process.take(),
            self.metrics.take(),
            self.notify.take(),
            self.sms.take(),
            self.operator.take(),
            self.auth.take(),
        ];
        for running in services.into_iter().flatten() {
            running.stop().await;
        }
        drop(self.sms_process.take());
        drop(self.metrics_process.take());
        drop(self.notify_process.take());
        drop(self.auth_process.take());
        let mysql = sqlx::MySqlPool::connect("mysql://root@127.0.0.1:3306")
            .await
            .unwrap();
        for db in [&self.sms_db, &self.metrics_db, &self.notify_db] {
            let drop = format!("DROP DATABASE IF EXISTS `{db}`");
            sqlx::query(&drop).execute(&mysql).await.unwrap();
        }
        mysql.close().await;
        amqp::delete_exchange(&self.exchange).await;
        amqp::delete_exchange(&self.session_exchange).await;
        amqp::delete_exchange(&self.changes_exchange).await;
        amqp::delete_exchange(&self.route_health_exchange).await;
        for queue in [&self.metrics_queue, &self.notify_queue] {
            let dead = format!("{queue}.dlq");
            amqp::delete_queue(queue).await;
            amqp::delete_queue(&dead).await;
            amqp::delete_exchange(&dead).await;
        }
        let client = mongodb::Client::with_uri_str(&self.mongo_url)
            .await
            .unwrap();
        for db in [&self.auth_db, &self.operator_db, &self.process_db] {
            client.database(db).drop().await.unwrap();
        }
        let _ = std::fs::remove_dir_all(&self.key_dir);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Sends a request; `body` is JSON when given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::from_response(request.send().await.unwrap()).await
    }

    /// `GET /sms/{id}` until the message is final, for at most `within`.
    pub async fn wait_final(&self, token: &str, id: &str, within: Duration) -> Value {
        let started = std::time::Instant::now();
        loop {
            let reply = self.get(&format!("/api/v1/sms/{id}"), token).await;
            let status = reply.body["status"].as_str().unwrap_or("");
            if ["delivered", "undelivered", "failed"].contains(&status) {
                return reply.body;
            }
            assert!(
                started.elapsed() < within,
                "message {id} never became final: {}",
                reply.body
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn sign_up(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/api/v1/auth/sign-up",
            None,
            json!({ "email": email, "password": password }),
        )
        .await
    }

    pub async fn sign_up_invited(&self, email: &str, password: &str, invitation: &str) -> Reply {
        self.post(
            "/api/v1/auth/sign-up",
            None,
            json!({ "email": email, "password": password, "invitation": invitation }),
        )
        .await
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/api/v1/auth/sign-in",
            None,
            json!({ "email": email, "password": password }),
        )
        .await
    }

    /// An access and refresh token for the seeded admin.
    pub async fn admin_tokens(&self) -> Tokens {
        let reply = self.sign_in(&self.admin_email, ADMIN_PASSWORD).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        Tokens::from(&reply.body)
    }

    /// An access token for process-svc's service account: the one caller
    /// that may write a session's messages.
    pub async fn service_token(&self) -> String {
        let reply = self.sign_in(SERVICE_EMAIL, SERVICE_PASSWORD).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        Tokens::from(&reply.body).access
    }

    /// A new API key (made by the admin): the whole key, for `X-Api-Key`.
    pub async fn api_key(&self) -> String {
        let admin = self.admin_tokens().await.access;
        let reply = self
            .post(
                "/api/v1/api-keys",
                Some(&admin),
                json!({ "name": "test key" }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["key"].as_str().unwrap().to_string()
    }

    /// The one-minute `ingest` token a new API key is exchanged for, from
    /// auth-svc itself.
    pub async fn ingest_token(&self) -> String {
        let key = self.api_key().await;
        let mut auth = smsops_proto::auth::v1::auth_service_client::AuthServiceClient::connect(
            format!("http://{}", self.auth_addr),
        )
        .await
        .unwrap();
        auth.exchange_api_key(smsops_proto::auth::v1::ExchangeApiKeyRequest { key })
            .await
            .unwrap()
            .into_inner()
            .access_token
    }

    /// A token signed by this stack's key that expired an hour ago.
    pub fn expired_token(&self, user_id: &str) -> String {
        let keys = auth_svc::core::KeyRing::load(&self.key_dir.join("signing.pem"), &[]).unwrap();
        let now = chrono::Utc::now().timestamp();
        let tokens = Self::tokens();
        let claims = smsops_common::auth::Claims {
            sub: user_id.to_string(),
            email: "expired@smsops.test".into(),
            role: smsops_common::auth::Role::Admin,
            iss: tokens.issuer,
            aud: tokens.audience,
            iat: now - 7200,
            exp: now - 3600,
            jti: uuid::Uuid::new_v4().to_string(),
            ver: 0,
            quota: Default::default(),
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(keys.signing_kid().to_string());
        jsonwebtoken::encode(&header, &claims, keys.signing_key()).unwrap()
    }

    /// An admin's invitation to sign up as `role`.
    pub async fn invitation(&self, role: &str) -> String {
        let admin = self.admin_tokens().await.access;
        let reply = self
            .post("/api/v1/invitations", Some(&admin), json!({ "role": role }))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["token"].as_str().unwrap().to_string()
    }

    /// Signs up a new `operator` (by invitation) and signs it in.
    pub async fn new_user(&self) -> (String, Tokens) {
        self.new_user_as("operator").await
    }

    /// Signs up a new user in `role` (by invitation), password
    /// [`USER_PASSWORD`]; its email.
    pub async fn new_account(&self, role: &str) -> String {
        let email = format!("user-{}@smsops.test", uuid::Uuid::new_v4().simple());
        let invitation = self.invitation(role).await;
        let reply = self
            .sign_up_invited(&email, USER_PASSWORD, &invitation)
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        email
    }

    /// A new operator with its own quota (as `PUT /users/{id}/quota`
    /// takes it), and a token that carries it.
    pub async fn operator_with_quota(&self, quota: Value) -> (String, String) {
        let (id, _) = self.new_user_as("operator").await;
        let admin = self.admin_tokens().await.access;
        let reply = self
            .call(
                Method::PUT,
                &format!("/api/v1/users/{id}/quota"),
                Some(&admin),
                Some(quota),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.body["quota"]["source"], "user");
        let email = reply.body["email"].as_str().unwrap().to_string();
        let token = self.sign_in(&email, USER_PASSWORD).await.body["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        (id, token)
    }

    /// Signs up a new user in `role` (by invitation) and signs it in.
    pub async fn new_user_as(&self, role: &str) -> (String, Tokens) {
        let email = self.new_account(role).await;
        let reply = self.sign_in(&email, USER_PASSWORD).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        (
            reply_id(
                &self
                    .get("/api/v1/auth/me", &Tokens::from(&reply.body).access)
                    .await,
            ),
            Tokens::from(&reply.body),
        )
    }
}

/// A binary of this workspace, built in the same profile as the running
/// executable: Cargo puts binaries beside each other, and test executables
/// one folder below (deps/).
pub fn built_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    [dir.join(name), dir.join("..").join(name)]
        .into_iter()
        .find(|path| path.exists())
        .unwrap_or_else(|| panic!("no {name} binary near {}", exe.display()))
}

/// Waits (up to 10 s) until a child process listens on `addr`.
pub async fn wait_listening(addr: SocketAddr, what: &str) {
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what} never listened on {addr}");
}

/// A free loopback port, for a service that others must know before it starts.
/// A loopback address nobody listens on, chosen below the kernel's ephemeral
/// range: a port the kernel handed out for `:0` could be handed out again (to a
/// client socket or another test's listener) before the service binds it, which
/// is how CI once failed with AddrInUse. One counter per process keeps parallel
/// tests apart; the random start keeps concurrent test processes apart.
pub fn free_addr() -> SocketAddr {
    use std::sync::atomic::{AtomicU16, Ordering};
    const LOW: u16 = 20_000;
    const HIGH: u16 = 32_000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        LOW + (std::process::id() % u32::from(HIGH - LOW)) as u16,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let port = NEXT
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| {
                Some(if p + 1 >= HIGH { LOW } else { p + 1 })
            })
            .unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if std::net::TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
}

fn reply_id(reply: &Reply) -> String {
    reply.body["id"].as_str().unwrap().to_string()
}

#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

impl From<&Value> for Tokens {
    fn from(body: &Value) -> Self {
        Self {
            access: body["access_token"].as_str().unwrap().to_string(),
            refresh: body["refresh_token"].as_str().unwrap().to_string(),
        }
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub async fn from_response(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Self {
            status,
            headers,
            body,
        }
    }

    /// The error code of an error reply.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("<no code>")
    }

    pub fn id(&self) -> String {
        reply_id(self)
    }

    /// Asserts the status and error code together, showing the body when not.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status.as_u16(), self.code()),
            (status, code),
            "body: {}",
            self.body
        );
        assert!(
            self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "body: {}",
            self.body
        );
    }
}

/// `count` messages for `pair`, to `+4477009NNNNN`, each body `"{label} {n}"`.
pub fn numbered_messages(
    pair: &str,
    label: &str,
    count: usize,
) -> Vec<smsops_proto::sms::v1::SendSmsRequest> {
    (0..count)
        .map(|n| smsops_proto::sms::v1::SendSmsRequest {
            country_operator_id: pair.into(),
            to: format!("+4477009{n:05}"),
            body: format!("{label} {n}"),
            ..Default::default()
        })
        .collect()
}

/// Sends one batch straight to the sms-svc at `addr`, as `token`.
pub async fn send_sms_batch(
    addr: SocketAddr,
    token: &str,
    messages: Vec<smsops_proto::sms::v1::SendSmsRequest>,
) -> smsops_proto::sms::v1::SendSmsBatchResponse {
    use smsops_proto::sms::v1::{SendSmsBatchRequest, sms_service_client::SmsServiceClient};
    let mut client = SmsServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let mut request = tonic::Request::new(SendSmsBatchRequest { messages });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    client.send_sms_batch(request).await.unwrap().into_inner()
}
