//! What can stop a service from starting, and binding its listener.

use std::{future::Future, net::SocketAddr, sync::Arc};

use tokio::net::TcpListener;
use tonic::transport::server::{Router, TcpIncoming};

use crate::{
    config::ConfigError,
    prom::{MetricsServer, Telemetry},
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Database(String),
    #[error("{0}")]
    Setup(String),
    #[error("server failed: {0}")]
    Serve(String),
}

/// Binds a listener; port 0 picks a free port, read it back from the listener.
pub async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartupError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| StartupError::Bind { addr, source })?;
    Ok((listener, bound))
}

/// A gRPC server with its listener bound, ready to serve.
pub struct GrpcServer {
    addr: SocketAddr,
    listener: TcpListener,
    router: Router,
    metrics: Option<(MetricsServer, Arc<Telemetry>)>,
}

impl GrpcServer {
    /// Binds `addr` (port 0 picks a free port) for `router`.
    pub async fn bind(addr: SocketAddr, router: Router) -> Result<Self, StartupError> {
        let (listener, addr) = bind(addr).await?;
        tracing::info!(addr = %addr, "grpc listening");
        Ok(Self {
            addr,
            listener,
            router,
            metrics: None,
        })
    }

    /// Also serves `telemetry` as `GET /metrics` on `metrics_addr`.
    pub async fn with_metrics(
        mut self,
        metrics_addr: SocketAddr,
        telemetry: Arc<Telemetry>,
    ) -> Result<Self, StartupError> {
        self.metrics = Some((MetricsServer::bind(metrics_addr).await?, telemetry));
        Ok(self)
    }

    /// Where `/metrics` is served, if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(server, _)| server.addr())
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until SIGTERM or SIGINT.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        self.run_until(crate::shutdown::signal()).await
    }

    /// Serves until `stop` resolves, then lets in-flight calls finish.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<(), StartupError> {
        let (stop_metrics, metrics_stopped) = tokio::sync::watch::channel(false);
        let metrics = self
            .metrics
            .map(|(server, telemetry)| tokio::spawn(server.run(telemetry, metrics_stopped)));
        let served = self
            .router
            // Without TCP_NODELAY, a streamed reply that follows another
            // waits for the peer's delayed ack: 40 ms on Linux.
            .serve_with_incoming_shutdown(
                TcpIncoming::from(self.listener).with_nodelay(Some(true)),
                stop,
            )
            .await
            .map_err(|err| StartupError::Serve(err.to_string()));
        let _ = stop_metrics.send(true);
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        served?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// What a service binary's `main` does: logs and traces up, `run`, traces
/// still buffered sent, and the process ended with a message if `run`
/// failed.
pub async fn serve_process(
    service: &'static str,
    run: impl Future<Output = Result<(), StartupError>>,
) {
    let tracing = crate::telemetry::init(service);
    let result = run.await;
    tracing.shutdown().await;
    exit_on_error(service, result);
}

/// Ends the process with a readable message (not a `Debug` dump) when
/// start-up or serving failed.
pub fn exit_on_error(service: &str, result: Result<(), StartupError>) {
    if let Err(err) = result {
        tracing::error!(error = %err, "exiting");
        eprintln!("{service}: {err}");
        std::process::exit(1);
    }
}
