//! Every error the gateway answers with is `{"code", "message"}` with the
//! HTTP status from the shared [`ErrorCode`] table.

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    error::{JsonPayloadError, QueryPayloadError},
    http::{StatusCode, header},
};
use serde::Serialize;
use smsops_common::{ApiError, ErrorCode};
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable code, e.g. `invalid_country`.
    #[schema(example = "not_found")]
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

#[derive(Debug)]
pub struct HttpError(pub ApiError);

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if self.0.code == ErrorCode::Unauthorized {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"smsops\""));
        }
        if let Some(secs) = self.0.retry_after {
            response.insert_header((header::RETRY_AFTER, secs));
        }
        response.json(ErrorBody {
            code: self.0.code.as_str(),
            message: self.0.message.clone(),
        })
    }
}

impl From<ApiError> for HttpError {
    fn from(err: ApiError) -> Self {
        Self(err)
    }
}

impl From<tonic::Status> for HttpError {
    fn from(status: tonic::Status) -> Self {
        Self(ApiError::from_status(&status))
    }
}

pub fn error(code: ErrorCode, message: impl Into<String>) -> HttpError {
    HttpError(ApiError::new(code, message))
}

/// Bad JSON bodies: too large, wrong content type, malformed, wrong types or
/// unknown fields all become a 4xx with a code, never a 500.
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let http = match &err {
        JsonPayloadError::OverflowKnownLength { limit, .. }
        | JsonPayloadError::Overflow { limit } => error(
            ErrorCode::PayloadTooLarge,
            format!("request body is larger than {limit} bytes"),
        ),
        JsonPayloadError::ContentType => error(
            ErrorCode::UnsupportedMediaType,
            "expected Content-Type: application/json",
        ),
        JsonPayloadError::Deserialize(inner) if inner.is_data() => error(
            ErrorCode::InvalidArgument,
            format!("invalid request body: {inner}"),
        ),
        JsonPayloadError::Deserialize(inner) => {
            error(ErrorCode::InvalidJson, format!("malformed JSON: {inner}"))
        }
        other => error(
            ErrorCode::InvalidJson,
            format!("unreadable request body: {other}"),
        ),
    };
    http.into()
}

pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    error(
        ErrorCode::InvalidArgument,
        format!("invalid query string: {err}"),
    )
    .into()
}

/// For paths no route matches.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    error(
        ErrorCode::NotFound,
        format!("no route for {} {}", req.method(), req.path()),
    )
    .error_response()
}

/// For known paths called with a method they do not support; `Allow`
/// lists the ones they do, as RFC 9110 asks.
pub async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let mut response = error(
        ErrorCode::MethodNotAllowed,
        format!("{} is not allowed on {}", req.method(), req.path()),
    )
    .error_response();
    let allowed = req
        .match_pattern()
        .and_then(|pattern| crate::openapi::allowed_methods(&pattern));
    if let Some(allowed) = allowed {
        response.headers_mut().insert(
            actix_web::http::header::ALLOW,
            actix_web::http::header::HeaderValue::from_static(allowed),
        );
    }
    response
}
