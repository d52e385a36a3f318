//! Prometheus metrics: every service counts and times the calls it serves,
//! and serves them on `/metrics` (OpenMetrics text) on a port of its own, so
//! a scrape never queues behind gRPC traffic.

use std::{
    borrow::Cow,
    convert::Infallible,
    net::SocketAddr,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use http_body_util::Full;
use hyper::{Request, Response, body::Bytes, service::service_fn};
use hyper_util::rt::TokioIo;
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};
use tokio::net::TcpListener;
use tonic::{
    Code,
    codegen::{BoxFuture, Service, http},
    server::NamedService,
};
use tracing::Instrument;

use crate::startup::{StartupError, bind};

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    method: String,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

/// Request latency buckets, 1 ms to about 16 s.
fn latency() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 15,
    ))
}

/// One service's registry, with the request metrics every service has.
/// Services register their own metrics on [`Telemetry::registry`] before
/// they start serving.
pub struct Telemetry {
    registry: Registry,
    rpc_requests: Family<RpcLabels, Counter>,
    rpc_latency: Family<MethodLabels, Histogram>,
    http_requests: Family<HttpLabels, Counter>,
    http_latency: Family<RouteLabels, Histogram>,
}

impl Telemetry {
    /// Every metric carries `service="<service>"`.
    pub fn new(service: &'static str) -> Self {
        let mut registry = Registry::with_prefix_and_labels(
            "smsops",
            [(Cow::Borrowed("service"), Cow::Borrowed(service))].into_iter(),
        );
        let rpc_requests = Family::<RpcLabels, Counter>::default();
        let rpc_latency =
            Family::<MethodLabels, Histogram>::new_with_constructor(latency as fn() -> Histogram);
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_latency =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency as fn() -> Histogram);
        registry.register(
            "grpc_server_requests",
            "gRPC calls served, by method and status code",
            rpc_requests.clone(),
        );
        registry.register(
            "grpc_server_request_duration_seconds",
            "time to answer a gRPC call (to its response headers for a stream)",
            rpc_latency.clone(),
        );
        registry.register(
            "http_server_requests",
            "HTTP requests served, by method, route and status",
            http_requests.clone(),
        );
        registry.register(
            "http_server_request_duration_seconds",
            "time to answer an HTTP request, by route",
            http_latency.clone(),
        );
        Self {
            registry,
            rpc_requests,
            rpc_latency,
            http_requests,
            http_latency,
        }
    }

    /// For a service's own metrics, registered before it starts.
    pub fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(err) = encode(&mut text, &self.registry) {
            tracing::warn!(error = %err, "encoding metrics failed");
        }
        text
    }

    /// Counts one HTTP request; `route` is the matched pattern, never the
    /// raw path, so ids do not make new series.
    pub fn record_http(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.http_requests
            .get_or_create(&HttpLabels {
                method: http_method_label(method),
                route: route.to_string(),
                status,
            })
            .inc();
        self.http_latency
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    fn record_rpc(&self, method: String, code: Code, took: Duration) {
        // Unknown methods would let any client make new series.
        let method = if code == Code::Unimplemented {
            "unknown".to_string()
        } else {
            method
        };
        self.rpc_latency
            .get_or_create(&MethodLabels {
                method: method.clone(),
            })
            .observe(took.as_secs_f64());
        self.rpc_requests
            .get_or_create(&RpcLabels {
                method,
                code: code_name(code),
            })
            .inc();
    }
}

/// A gRPC service whose calls are counted and timed.
#[derive(Clone)]
pub struct Instrumented<S> {
    inner: S,
    telemetry: Arc<Telemetry>,
}

impl<S> Instrumented<S> {
    pub fn new(inner: S, telemetry: Arc<Telemetry>) -> Self {
        Self { inner, telemetry }
    }
}

impl<S: NamedService> NamedService for Instrumented<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for Instrumented<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // "/smsops.sms.v1.SmsService/SendSms" → "SmsService/SendSms"
        let path = request.uri().path();
        let method = path
            .trim_start_matches('/')
            .rsplit_once('.')
            .map_or(path, |(_, method)| method)
            .chars()
            .take(80)
            .collect::<String>();
        let span = server_span(&request);
        let telemetry = self.telemetry.clone();
        // The clone that was made ready is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let started = Instant::now();
        Box::pin(
            async move {
                let response = inner.call(request).await?;
                // Errors come back trailers-only, their status in the headers;
                // a call that answers normally puts its status in the trailers.
                let code = response
                    .headers()
                    .get("grpc-status")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse::<i32>().ok())
                    .map_or(Code::Ok, Code::from_i32);
                telemetry.record_rpc(method, code, started.elapsed());
                let span = tracing::Span::current();
                span.record("rpc.grpc.status_code", code as i32);
                if matches!(
                    code,
                    Code::Internal | Code::Unknown | Code::DataLoss | Code::Unavailable
                ) {
                    span.record("otel.status_code", "ERROR");
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// A server span for a call, continuing the caller's trace; none while
/// traces are off.
fn server_span<B>(request: &http::Request<B>) -> tracing::Span {
    if !crate::telemetry::traces_on() {
        return tracing::Span::none();
    }
    let method = request.uri().path().trim_start_matches('/');
    let span = tracing::info_span!(
        "grpc server",
        otel.name = %method,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.grpc.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    let headers = crate::trace::TraceHeaders::read(|name| {
        request.headers().get(name).and_then(|v| v.to_str().ok())
    });
    crate::trace::continue_from(&span, &headers);
    span
}

/// The methods the API serves keep their name; any other (a client may send
/// any token, of any length) is `other`, so no client can make new series.
pub fn http_method_label(method: &str) -> &'static str {
    const SERVED: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    SERVED
        .into_iter()
        .find(|served| *served == method)
        .unwrap_or("other")
}

fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// The `/metrics` listener of a gRPC service, bound and ready to serve.
pub struct MetricsServer {
    listener: TcpListener,
    addr: SocketAddr,
}

impl MetricsServer {
    /// Binds `addr`; port 0 picks a free port.
    pub async fn bind(addr: SocketAddr) -> Result<Self, StartupError> {
        let (listener, addr) = bind(addr).await?;
        tracing::info!(addr = %addr, "metrics listening");
        Ok(Self { listener, addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers `GET /metrics` (404 for anything else) until `stop` turns true.
    pub async fn run(
        self,
        telemetry: Arc<Telemetry>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = stop.changed() => return,
            };
            let Ok((stream, _)) = accepted else {
                continue;
            };
            let telemetry = telemetry.clone();
            tokio::spawn(async move {
                let answer = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let telemetry = telemetry.clone();
                    async move { Ok::<_, Infallible>(answer(&telemetry, &request)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), answer)
                    .await;
            });
        }
    }
}

fn answer<B>(telemetry: &Telemetry, request: &Request<B>) -> Response<Full<Bytes>> {
    let found = request.method() == hyper::Method::GET && request.uri().path() == "/metrics";
    let (status, content_type, body) = if found {
        (200, CONTENT_TYPE, telemetry.encode())
    } else {
        (
            404,
            "text/plain",
            "only GET /metrics is served here\n".to_string(),
        )
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_served_methods_name_their_label() {
        for method in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            assert_eq!(http_method_label(method), method);
        }
        let long = "Z".repeat(4_000);
        for method in [
            "get",
            "ZZ1",
            "PROPFIND",
            "TRACE",
            "CONNECT",
            "",
            long.as_str(),
        ] {
            assert_eq!(http_method_label(method), "other", "{method}");
        }
    }
}
