//! The standard services every smsops gRPC server carries, and client channels.

use std::{
    task::{Context, Poll},
    time::Duration,
};

use futures::future::Either;
use tonic::{
    body::Body,
    codegen::{Service, http},
    service::Routes,
    transport::{Endpoint, channel::ResponseFuture},
};
use tonic_health::server::HealthReporter;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{config::ConfigError, trace::HeaderInjector};

/// A channel to another service whose calls, while traces are on, are
/// client spans that carry their context in `traceparent`.
#[derive(Clone, Debug)]
pub struct Channel {
    inner: tonic::transport::Channel,
}

impl Service<http::Request<Body>> for Channel {
    type Response = http::Response<Body>;
    type Error = tonic::transport::Error;
    type Future = Either<tracing::instrument::Instrumented<ResponseFuture>, ResponseFuture>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // A call outside any trace (a background refresh) starts none.
        if !crate::telemetry::traces_on() || tracing::Span::current().is_none() {
            return Either::Right(self.inner.call(request));
        }
        // "/smsops.sms.v1.SmsService/SendSms" → "smsops.sms.v1.SmsService/SendSms"
        let method = request.uri().path().trim_start_matches('/').to_string();
        let span = tracing::info_span!(
            "grpc client",
            otel.name = %method,
            otel.kind = "client",
            rpc.system = "grpc",
        );
        opentelemetry::global::get_text_map_propagator(|p| {
            p.inject_context(&span.context(), &mut HeaderInjector(request.headers_mut()));
        });
        Either::Left(self.inner.call(request).instrument(span))
    }
}

/// The gRPC health service (its reporter lets a server mark each of its
/// services serving) and server reflection over every smsops proto, as routes
/// a server starts from before adding its own service.
pub fn standard_routes() -> Result<(HealthReporter, Routes), tonic_reflection::server::Error> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(smsops_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    Ok((health_reporter, Routes::new(health).add_service(reflection)))
}

/// How long a call to another service may take before it is answered with
/// `timeout` instead of hanging the caller.
#[derive(Debug, Clone, Copy)]
pub struct ClientTimeouts {
    pub connect: Duration,
    pub request: Duration,
}

impl ClientTimeouts {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            connect: crate::config::millis_or("SMSOPS_RPC_CONNECT_TIMEOUT_MS", 2_000)?,
            request: crate::config::millis_or("SMSOPS_RPC_TIMEOUT_MS", 10_000)?,
        })
    }
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(10),
        }
    }
}

/// A lazily connecting channel: a service that is down yields `unavailable`
/// per call instead of stopping the caller from starting.
pub fn lazy_channel(
    name: &str,
    url: &str,
    timeouts: ClientTimeouts,
) -> Result<Channel, ConfigError> {
    let endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|err| ConfigError::new(name, format!("invalid URL {url:?}: {err}")))?
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.request)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    Ok(Channel {
        inner: endpoint.connect_lazy(),
    })
}
