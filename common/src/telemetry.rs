//! Logs and traces for every service.
//!
//! Logs: `SMSOPS_LOG` is their filter (default `info`), and
//! `SMSOPS_LOG_FORMAT=json` writes one JSON object per line, with the
//! `trace_id` and `span_id` of the span it was written in when traces are on.
//!
//! Traces go over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, with the standard
//! `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and
//! `OTEL_TRACES_SAMPLER_ARG`; `OTEL_SDK_DISABLED=true` or
//! `OTEL_TRACES_EXPORTER=none` turn them off. `SMSOPS_TRACE` filters spans
//! (default `info`) apart from the logs, so quieter logs keep every span.
//! Unset, no tracing layer is installed: spans cost what logging costs.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::{
    Resource,
    trace::{SdkTracerProvider, span_processor_with_async_runtime::BatchSpanProcessor},
};
use tracing::Subscriber;
use tracing_subscriber::{
    EnvFilter, Layer,
    fmt::{
        self, FmtContext, FormatEvent, FormatFields,
        format::{Json, JsonFields, Writer},
    },
    layer::SubscriberExt,
    registry::LookupSpan,
    util::SubscriberInitExt,
};

static TRACES_ON: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported: code that would make a span only for the
/// trace (one per event of a batch) asks first.
pub fn traces_on() -> bool {
    TRACES_ON.load(Ordering::Relaxed)
}

/// Keeps the trace exporter; `shutdown` sends what is still buffered.
#[must_use = "traces still buffered are lost unless it is shut down"]
pub struct Tracing {
    provider: Option<SdkTracerProvider>,
}

impl Tracing {
    /// Flushes and stops the exporter (at most its export timeout).
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        // The SDK blocks until its batch task answers; that task runs on
        // this runtime, so wait on a thread of its own.
        let stopped = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(err)) = stopped {
            eprintln!("traces: shutting the exporter down failed: {err}");
        }
    }
}

fn otlp_configured() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let is = |name: &str, value: &str| {
        std::env::var(name).is_ok_and(|v| v.trim().eq_ignore_ascii_case(value))
    };
    (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        && !is("OTEL_SDK_DISABLED", "true")
        && !is("OTEL_TRACES_EXPORTER", "none")
}

/// The tracer provider the environment asks for; `None` when it asks for
/// none or the exporter cannot be built (said on stderr: logging is not
/// up yet).
fn provider(service: &'static str) -> Option<SdkTracerProvider> {
    if !otlp_configured() {
        return None;
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
    {
        Ok(exporter) => exporter,
        Err(err) => {
            eprintln!("{service}: traces are off, the OTLP exporter failed: {err}");
            return None;
        }
    };
    let resource = if std::env::var_os("OTEL_SERVICE_NAME").is_some() {
        Resource::builder().build()
    } else {
        Resource::builder().with_service_name(service).build()
    };
    // The batch task runs on the service's runtime, where tonic's
    // connection lives; the SDK's default one runs on a bare thread.
    let batches = BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
    Some(
        SdkTracerProvider::builder()
            .with_span_processor(batches)
            .with_resource(resource)
            .build(),
    )
}

/// Installs the global subscriber; call it once, inside the runtime.
/// Calling it again (as tests do) keeps the first subscriber.
pub fn init(service: &'static str) -> Tracing {
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let logs = EnvFilter::try_from_env("SMSOPS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("SMSOPS_LOG_FORMAT").is_ok_and(|format| format == "json");
    // Colour only on a terminal: `make up` writes logs to files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let fmt_layer = if json {
        fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(WithTraceIds(fmt::format().json().with_target(false)))
            .with_filter(logs)
            .boxed()
    } else {
        fmt::layer()
            .with_target(false)
            .with_ansi(ansi)
            .with_filter(logs)
            .boxed()
    };
    let provider = provider(service);
    let trace_layer = provider.as_ref().map(|provider| {
        let spans =
            EnvFilter::try_from_env("SMSOPS_TRACE").unwrap_or_else(|_| EnvFilter::new("info"));
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service))
            .with_filter(spans)
    });
    let installed = tracing_subscriber::registry()
        .with(fmt_layer)
        .with(trace_layer)
        .try_init()
        .is_ok();
    if !installed {
        return Tracing { provider: None };
    }
    TRACES_ON.store(provider.is_some(), Ordering::Relaxed);
    tracing::info!(
        service,
        version = env!("CARGO_PKG_VERSION"),
        traces = provider.is_some(),
        "starting"
    );
    Tracing { provider }
}

/// The JSON line of an event, with the ids of the span it came in.
struct WithTraceIds(fmt::format::Format<Json, fmt::time::SystemTime>);

impl<S, N> FormatEvent<S, N> for WithTraceIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        // The tracing layer makes an entered span's context the current one.
        let context = opentelemetry::Context::current();
        let span = context.span();
        let ids = span.span_context();
        if !ids.is_valid() {
            return self.0.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        match line.trim_end().strip_suffix('}') {
            Some(head) => writeln!(
                writer,
                "{head},\"trace_id\":\"{}\",\"span_id\":\"{}\"}}",
                ids.trace_id(),
                ids.span_id()
            ),
            None => writer.write_str(&line),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_written_in_a_span_carry_its_trace_and_span_ids() {
        let lines = Lines::default();
        let writer = lines.clone();
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(
                fmt::layer()
                    .fmt_fields(JsonFields::new())
                    .event_format(WithTraceIds(fmt::format().json().with_target(false)))
                    .with_writer(move || writer.clone()),
            )
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside");
            let span = tracing::info_span!("request");
            let _entered = span.enter();
            tracing::info!(answer = 42, "inside");
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let parsed: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(parsed.len(), 2, "{text}");
        assert!(parsed[0].get("trace_id").is_none(), "{text}");
        assert_eq!(parsed[1]["fields"]["answer"], 42, "{text}");
        assert_eq!(
            parsed[1]["trace_id"].as_str().map(str::len),
            Some(32),
            "{text}"
        );
        assert_eq!(
            parsed[1]["span_id"].as_str().map(str::len),
            Some(16),
            "{text}"
        );
    }

    #[test]
    fn no_endpoint_means_no_exporter() {
        // The variables are the process's; this test runs without them.
        if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none()
            && std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none()
        {
            assert!(!otlp_configured());
            assert!(provider("test").is_none());
        }
    }
}
