//! The one bootstrap of a gRPC service: health and reflection, the
//! Prometheus registry and listener, the gRPC listener, the background
//! tasks, and the order everything stops in. A service's `startup.rs`
//! adds only what is its own: its stores, its core and its tasks.

use std::{convert::Infallible, future::Future, net::SocketAddr, pin::Pin, sync::Arc};

use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tonic::{
    codegen::{Service as GrpcService, http},
    server::NamedService,
};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    grpc::standard_routes,
    prom::{Instrumented, Telemetry},
    startup::{GrpcServer, StartupError},
};

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;
type StartTask = Box<dyn FnOnce(watch::Receiver<bool>) -> Task + Send>;
type OnStop = Box<dyn FnOnce() + Send>;

/// A service being put together.
pub struct Bootstrap {
    telemetry: Telemetry,
    health: HealthReporter,
    routes: tonic::service::Routes,
    tasks: Vec<StartTask>,
    on_stop: Vec<OnStop>,
}

impl Bootstrap {
    /// Health (with `grpc_name` serving) and reflection, and the registry
    /// of `service`'s metrics.
    pub async fn new(service: &'static str, grpc_name: &str) -> Result<Self, StartupError> {
        let (health, routes) =
            standard_routes().map_err(|err| StartupError::Setup(err.to_string()))?;
        health
            .set_service_status(grpc_name, ServingStatus::Serving)
            .await;
        Ok(Self {
            telemetry: Telemetry::new(service),
            health,
            routes,
            tasks: Vec::new(),
            on_stop: Vec::new(),
        })
    }

    /// Where the service's own metrics register.
    pub fn registry(&mut self) -> &mut Registry {
        self.telemetry.registry()
    }

    /// For a part whose health shows as its own service name.
    pub fn health(&self) -> HealthReporter {
        self.health.clone()
    }

    /// A task that runs while the service serves; `stop` turns true when
    /// the server has drained, and the service waits for the task to end.
    pub fn task<F, Fut>(&mut self, run: F)
    where
        F: FnOnce(watch::Receiver<bool>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tasks.push(Box::new(move |stop| Box::pin(run(stop))));
    }

    /// Runs `round` now and then every `period` while the service serves.
    pub fn every<F, Fut>(&mut self, period: std::time::Duration, round: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.task(move |stop| crate::shutdown::every(period, stop, round));
    }

    /// Runs when the stop begins, before the server drains: what ends the
    /// streams that would keep it waiting.
    pub fn on_stop(&mut self, stop: impl FnOnce() + Send + 'static) {
        self.on_stop.push(Box::new(stop));
    }

    /// Binds the gRPC listener for `service` (counted and timed) and the
    /// Prometheus one; port 0 picks a free port for either.
    pub async fn serve<S>(
        self,
        grpc_addr: SocketAddr,
        prometheus_addr: SocketAddr,
        service: S,
    ) -> Result<Service, StartupError>
    where
        S: GrpcService<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let telemetry = Arc::new(self.telemetry);
        let router = tonic::transport::Server::builder()
            .add_routes(self.routes)
            .add_service(Instrumented::new(service, telemetry.clone()));
        let server = GrpcServer::bind(grpc_addr, router)
            .await?
            .with_metrics(prometheus_addr, telemetry)
            .await?;
        Ok(Service {
            server,
            tasks: self.tasks,
            on_stop: self.on_stop,
        })
    }
}

/// A service with its listeners bound, not serving yet.
pub struct Service {
    server: GrpcServer,
    tasks: Vec<StartTask>,
    on_stop: Vec<OnStop>,
}

impl Service {
    /// The gRPC address actually bound.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Where `GET /metrics` is served.
    pub fn prometheus_addr(&self) -> Option<SocketAddr> {
        self.server.metrics_addr()
    }

    /// Serves until SIGTERM or SIGINT.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        self.run_until(crate::shutdown::signal()).await
    }

    /// Starts the tasks and serves until `stop` resolves; then lets
    /// in-flight calls finish, stops the tasks and waits for them.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<(), StartupError> {
        let (stop_tasks, stopped) = watch::channel(false);
        let tasks: Vec<_> = self
            .tasks
            .into_iter()
            .map(|start| tokio::spawn(start(stopped.clone())))
            .collect();
        let on_stop = self.on_stop;
        let served = self
            .server
            .run_until(async move {
                stop.await;
                for stop in on_stop {
                    stop();
                }
            })
            .await;
        let _ = stop_tasks.send(true);
        for task in tasks {
            let _ = task.await;
        }
        served
    }
}
