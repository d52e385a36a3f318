//! W3C trace context across every hop: HTTP and gRPC headers, AMQP message
//! headers and the database rows (an outbox row, a message) that carry a
//! request's context to work done later.

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector},
    trace::{SpanContext, TraceContextExt},
};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The two W3C headers, as any carrier holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceHeaders {
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

impl Extractor for TraceHeaders {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.traceparent.as_deref(),
            "tracestate" => self.tracestate.as_deref(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

impl Injector for TraceHeaders {
    fn set(&mut self, key: &str, value: String) {
        match key {
            "traceparent" => self.traceparent = Some(value),
            "tracestate" => self.tracestate = Some(value).filter(|v| !v.is_empty()),
            _ => {}
        }
    }
}

impl TraceHeaders {
    /// The headers of a context; none for a context without a valid span.
    pub fn of(context: &Context) -> Self {
        let mut headers = Self::default();
        if context.span().span_context().is_valid() {
            opentelemetry::global::get_text_map_propagator(|p| {
                p.inject_context(context, &mut headers);
            });
        }
        headers
    }

    /// The headers of a tracing span; none while traces are off.
    pub fn of_span(span: &tracing::Span) -> Self {
        if !crate::telemetry::traces_on() || span.is_none() {
            return Self::default();
        }
        Self::of(&span.context())
    }

    /// Reads `traceparent` (and `tracestate`) with `get`.
    pub fn read<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Self {
        // 55 characters: version-traceid-spanid-flags; anything longer is not one.
        let traceparent = get("traceparent")
            .filter(|v| v.len() <= 55)
            .map(str::to_string);
        let tracestate = get("tracestate")
            .filter(|v| v.len() <= 512)
            .map(str::to_string);
        Self {
            traceparent,
            tracestate,
        }
    }

    /// The remote context these headers name, or the empty context.
    pub fn context(&self) -> Context {
        if self.traceparent.is_none() {
            return Context::new();
        }
        opentelemetry::global::get_text_map_propagator(|p| p.extract(self))
    }

    /// The span these headers name, for a link.
    pub fn span_context(&self) -> Option<SpanContext> {
        let context = self.context();
        let span = context.span().span_context().clone();
        span.is_valid().then_some(span)
    }
}

/// Makes `span` a child of the remote context `headers` name, if any.
pub fn continue_from(span: &tracing::Span, headers: &TraceHeaders) {
    if headers.span_context().is_some() {
        let _ = span.set_parent(headers.context());
    }
}

/// Links `span` to the span `headers` name, if any: for work that follows
/// from another trace without being part of it.
pub fn link_to(span: &tracing::Span, headers: &TraceHeaders) {
    if let Some(linked) = headers.span_context() {
        span.add_link(linked);
    }
}

/// Injects into gRPC (HTTP/2) request headers.
pub struct HeaderInjector<'a>(pub &'a mut tonic::codegen::http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            tonic::codegen::http::HeaderName::from_bytes(key.as_bytes()),
            tonic::codegen::http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_read_back_the_context_they_name() {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let headers = TraceHeaders::read(|key| (key == "traceparent").then_some(parent));
        let span = headers.span_context().unwrap();
        assert_eq!(
            span.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(span.is_sampled() && span.is_remote());
        let again = TraceHeaders::of(&Context::new().with_remote_span_context(span));
        assert_eq!(again.traceparent.as_deref(), Some(parent));
        // Garbage names no span, and a span-less context writes no header.
        assert!(
            TraceHeaders::read(|_| Some("nonsense"))
                .span_context()
                .is_none()
        );
        assert_eq!(TraceHeaders::of(&Context::new()), TraceHeaders::default());
    }
}
