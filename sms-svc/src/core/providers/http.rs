//! Providers with an HTTP API (Twilio): each describes its requests and
//! answers in [`HttpApi`]; [`HttpConnector`] makes the requests.

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;
use smsops_common::trace::TraceHeaders;
use tracing::Instrument;

use super::{Attempt, CallbackUpdate, Connector, Lookup, OutgoingSms, ProviderReply};
use crate::config::DeliveryConfig;

/// A provider's HTTP API: how to ask, and what its answers mean.
pub trait HttpApi: Send + Sync + 'static {
    /// Stored with every message, e.g. "twilio".
    fn name(&self) -> &'static str;
    fn build_request(
        &self,
        http: &reqwest::Client,
        sms: &OutgoingSms<'_>,
    ) -> reqwest::RequestBuilder;
    fn parse_response(&self, status: u16, body: &[u8]) -> ProviderReply;
    /// Whether a callback really comes from the provider. `url` is the full
    /// public URL it was sent to.
    fn verify_callback(&self, url: &str, params: &[(String, String)], signature: &str) -> bool;
    fn parse_callback(&self, params: &[(String, String)]) -> Option<CallbackUpdate>;
    /// Asks for the message the provider knows as `sid`.
    fn build_lookup(&self, http: &reqwest::Client, sid: &str) -> reqwest::RequestBuilder;
    fn parse_lookup(&self, sid: &str, status: u16, body: &[u8]) -> Lookup;
    /// The public URL the provider calls back, if configured.
    fn callback_url(&self) -> Option<&str>;
    /// See [`Connector::redact`].
    fn redact(&self, text: &str) -> String;
}

pub struct HttpConnector {
    api: Arc<dyn HttpApi>,
    http: reqwest::Client,
}

impl HttpConnector {
    pub fn new(api: Arc<dyn HttpApi>, config: &DeliveryConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(3)))
            .pool_max_idle_per_host(config.concurrency)
            .build()?;
        Ok(Self { api, http })
    }

    async fn post(&self, sms: &OutgoingSms<'_>) -> Attempt {
        let span = provider_span(self.api.name());
        let mut request = self.api.build_request(&self.http, sms);
        if let Some(traceparent) = TraceHeaders::of_span(&span).traceparent {
            request = request.header("traceparent", traceparent);
        }
        let response = match request.send().instrument(span.clone()).await {
            Ok(response) => response,
            Err(err) if err.is_connect() => {
                self.log_transport(err);
                return Attempt::Unreachable;
            }
            Err(err) => {
                let message = in_words(&err, "provider request failed");
                self.log_transport(err);
                return Attempt::Lost(message);
            }
        };
        let status = response.status().as_u16();
        span.record("http.response.status_code", status);
        match response.bytes().instrument(span).await {
            Ok(body) => Attempt::Answered(self.api.parse_response(status, &body)),
            Err(err) => {
                let message = in_words(&err, "provider answer could not be read");
                self.log_transport(err);
                Attempt::Lost(message)
            }
        }
    }

    async fn get(&self, sid: &str) -> Lookup {
        let request = self.api.build_lookup(&self.http, sid);
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => return Lookup::Failed(in_words(&err, "provider lookup failed")),
        };
        let status = response.status().as_u16();
        match response.bytes().await {
            Ok(body) => self.api.parse_lookup(sid, status, &body),
            Err(err) => Lookup::Failed(in_words(&err, "provider answer could not be read")),
        }
    }

    /// The cause of a transport failure, for operators. reqwest puts the
    /// request's URL into its errors, and Twilio's holds the account SID:
    /// the URL is dropped and the rest redacted too.
    fn log_transport(&self, err: reqwest::Error) {
        let err = err.without_url();
        // reqwest's own text ("error sending request") hides the cause.
        let mut cause = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(next) = source {
            cause.push_str(": ");
            cause.push_str(&next.to_string());
            source = next.source();
        }
        tracing::warn!(
            provider = self.api.name(),
            error = %self.api.redact(&cause),
            "provider request failed"
        );
    }
}

impl Connector for HttpConnector {
    fn name(&self) -> &'static str {
        self.api.name()
    }

    fn submit<'a>(&'a self, sms: &'a OutgoingSms<'a>) -> BoxFuture<'a, Attempt> {
        Box::pin(self.post(sms))
    }

    fn lookup<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Lookup> {
        Box::pin(self.get(sid))
    }

    fn callback_url(&self) -> Option<&str> {
        self.api.callback_url()
    }

    fn verify_callback(&self, url: &str, params: &[(String, String)], signature: &str) -> bool {
        self.api.verify_callback(url, params, signature)
    }

    fn parse_callback(&self, params: &[(String, String)]) -> Option<CallbackUpdate> {
        self.api.parse_callback(params)
    }

    fn redact(&self, text: &str) -> String {
        self.api.redact(text)
    }
}

/// The client span of one request to a provider; none while traces are off.
fn provider_span(provider: &str) -> tracing::Span {
    if !smsops_common::telemetry::traces_on() {
        return tracing::Span::none();
    }
    tracing::info_span!(
        "provider request",
        otel.name = %format!("POST {provider}"),
        otel.kind = "client",
        http.request.method = "POST",
        http.response.status_code = tracing::field::Empty,
        provider,
    )
}

/// A transport failure in plain words: what a user may read in a message's
/// `error_message`, which must never carry a URL or credentials.
fn in_words(err: &reqwest::Error, otherwise: &str) -> String {
    if err.is_timeout() {
        "provider request timed out".into()
    } else if err.is_connect() {
        "provider connection failed".into()
    } else {
        otherwise.into()
    }
}
