//! What can stop a service from starting, and binding its listener.

use std::{future::Future, net::SocketAddr};

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::server::Router;

use crate::config::ConfigError;

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
        })
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
        self.router
            .serve_with_incoming_shutdown(TcpListenerStream::new(self.listener), stop)
            .await
            .map_err(|err| StartupError::Serve(err.to_string()))?;
        tracing::info!("stopped");
        Ok(())
    }
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
