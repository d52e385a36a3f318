//! One table of error codes shared by every service, mapping each code to an
//! HTTP status and a gRPC status. Services turn their own error enums into an
//! [`ApiError`]; the gateway turns the gRPC status back into the same code, so
//! a client sees the same `{"code", "message"}` whichever hop failed.

use std::{fmt, str::FromStr};

use tonic::{Code, Status, metadata::MetadataValue};

/// gRPC metadata entry that carries the stable code across a hop.
pub const CODE_METADATA: &str = "smsops-error-code";
/// gRPC metadata entry that carries, in whole seconds, when a refused call
/// (429, 503) is worth trying again; the gateway answers it as `Retry-After`.
pub const RETRY_AFTER_METADATA: &str = "smsops-retry-after";

/// A stable, client-visible error code. Never rename a variant's string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidArgument,
    InvalidJson,
    InvalidEmail,
    InvalidPassword,
    InvalidCountry,
    InvalidOperator,
    InvalidRoute,
    InvalidPhone,
    NumberNotInCountry,
    InvalidBody,
    InvalidRate,
    InvalidRecipients,
    InvalidTemplate,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unauthorized,
    InvalidCredentials,
    InvalidToken,
    Forbidden,
    PairPinned,
    InvalidSignature,
    NotFound,
    PairNotFound,
    SessionNotFound,
    MethodNotAllowed,
    Conflict,
    UserExists,
    PairExists,
    SessionActive,
    PairInUse,
    IdempotencyMismatch,
    RateLimited,
    QuotaExceeded,
    Unavailable,
    Timeout,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 36] = [
        ErrorCode::InvalidArgument,
        ErrorCode::InvalidJson,
        ErrorCode::InvalidEmail,
        ErrorCode::InvalidPassword,
        ErrorCode::InvalidCountry,
        ErrorCode::InvalidOperator,
        ErrorCode::InvalidRoute,
        ErrorCode::InvalidPhone,
        ErrorCode::NumberNotInCountry,
        ErrorCode::InvalidBody,
        ErrorCode::InvalidRate,
        ErrorCode::InvalidRecipients,
        ErrorCode::InvalidTemplate,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::Unauthorized,
        ErrorCode::InvalidCredentials,
        ErrorCode::InvalidToken,
        ErrorCode::Forbidden,
        ErrorCode::PairPinned,
        ErrorCode::InvalidSignature,
        ErrorCode::NotFound,
        ErrorCode::PairNotFound,
        ErrorCode::SessionNotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Conflict,
        ErrorCode::UserExists,
        ErrorCode::PairExists,
        ErrorCode::SessionActive,
        ErrorCode::PairInUse,
        ErrorCode::IdempotencyMismatch,
        ErrorCode::RateLimited,
        ErrorCode::QuotaExceeded,
        ErrorCode::Unavailable,
        ErrorCode::Timeout,
        ErrorCode::Internal,
    ];

    /// The string clients match on.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidEmail => "invalid_email",
            ErrorCode::InvalidPassword => "invalid_password",
            ErrorCode::InvalidCountry => "invalid_country",
            ErrorCode::InvalidOperator => "invalid_operator",
            ErrorCode::InvalidRoute => "invalid_route",
            ErrorCode::InvalidPhone => "invalid_phone",
            ErrorCode::NumberNotInCountry => "number_not_in_country",
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::InvalidRate => "invalid_rate",
            ErrorCode::InvalidRecipients => "invalid_recipients",
            ErrorCode::InvalidTemplate => "invalid_template",
            ErrorCode::PairPinned => "pair_pinned",
            ErrorCode::SessionNotFound => "session_not_found",
            ErrorCode::SessionActive => "session_active",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::InvalidSignature => "invalid_signature",
            ErrorCode::PairNotFound => "pair_not_found",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::UserExists => "user_exists",
            ErrorCode::PairExists => "pair_exists",
            ErrorCode::PairInUse => "pair_in_use",
            ErrorCode::IdempotencyMismatch => "idempotency_mismatch",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status the gateway answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidArgument
            | ErrorCode::InvalidJson
            | ErrorCode::InvalidEmail
            | ErrorCode::InvalidPassword
            | ErrorCode::InvalidCountry
            | ErrorCode::InvalidOperator
            | ErrorCode::InvalidRoute
            | ErrorCode::InvalidPhone
            | ErrorCode::NumberNotInCountry
            | ErrorCode::InvalidBody
            | ErrorCode::InvalidRate
            | ErrorCode::InvalidRecipients
            | ErrorCode::InvalidTemplate => 400,
            ErrorCode::Unauthorized | ErrorCode::InvalidCredentials | ErrorCode::InvalidToken => {
                401
            }
            ErrorCode::Forbidden | ErrorCode::PairPinned | ErrorCode::InvalidSignature => 403,
            ErrorCode::NotFound | ErrorCode::PairNotFound | ErrorCode::SessionNotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict
            | ErrorCode::UserExists
            | ErrorCode::PairExists
            | ErrorCode::SessionActive
            | ErrorCode::PairInUse
            | ErrorCode::IdempotencyMismatch => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::RateLimited | ErrorCode::QuotaExceeded => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
            ErrorCode::Timeout => 504,
        }
    }

    /// The gRPC status code the services answer with.
    pub fn grpc_code(self) -> Code {
        match self {
            ErrorCode::InvalidArgument
            | ErrorCode::InvalidJson
            | ErrorCode::InvalidEmail
            | ErrorCode::InvalidPassword
            | ErrorCode::InvalidCountry
            | ErrorCode::InvalidOperator
            | ErrorCode::InvalidRoute
            | ErrorCode::InvalidPhone
            | ErrorCode::NumberNotInCountry
            | ErrorCode::InvalidBody
            | ErrorCode::InvalidRate
            | ErrorCode::InvalidRecipients
            | ErrorCode::InvalidTemplate
            | ErrorCode::PayloadTooLarge
            | ErrorCode::UnsupportedMediaType => Code::InvalidArgument,
            ErrorCode::Unauthorized | ErrorCode::InvalidCredentials | ErrorCode::InvalidToken => {
                Code::Unauthenticated
            }
            ErrorCode::Forbidden | ErrorCode::PairPinned | ErrorCode::InvalidSignature => {
                Code::PermissionDenied
            }
            ErrorCode::NotFound | ErrorCode::PairNotFound | ErrorCode::SessionNotFound => {
                Code::NotFound
            }
            ErrorCode::MethodNotAllowed => Code::Unimplemented,
            ErrorCode::Conflict
            | ErrorCode::UserExists
            | ErrorCode::PairExists
            | ErrorCode::SessionActive => Code::AlreadyExists,
            ErrorCode::PairInUse | ErrorCode::IdempotencyMismatch => Code::FailedPrecondition,
            ErrorCode::RateLimited | ErrorCode::QuotaExceeded => Code::ResourceExhausted,
            ErrorCode::Unavailable => Code::Unavailable,
            ErrorCode::Timeout => Code::DeadlineExceeded,
            ErrorCode::Internal => Code::Internal,
        }
    }

    /// The code for a gRPC status that carried none of ours (a transport
    /// failure, or a peer that is not an smsops service).
    pub fn from_grpc_code(code: Code) -> ErrorCode {
        match code {
            Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
                ErrorCode::InvalidArgument
            }
            Code::Unauthenticated => ErrorCode::Unauthorized,
            Code::PermissionDenied => ErrorCode::Forbidden,
            Code::NotFound => ErrorCode::NotFound,
            Code::AlreadyExists | Code::Aborted => ErrorCode::Conflict,
            Code::ResourceExhausted => ErrorCode::RateLimited,
            Code::Unavailable | Code::Cancelled => ErrorCode::Unavailable,
            Code::DeadlineExceeded => ErrorCode::Timeout,
            Code::Unimplemented => ErrorCode::MethodNotAllowed,
            Code::Ok | Code::Unknown | Code::Internal | Code::DataLoss => ErrorCode::Internal,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ErrorCode {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL
            .into_iter()
            .find(|code| code.as_str() == s)
            .ok_or(())
    }
}

/// An error as a client sees it: a stable code and a human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds after which the same call may succeed, for refusals that
    /// pass (rate limits, quotas, a full hashing pool).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error, telling the caller when to try again (at least 1 s:
    /// "0" would invite an immediate retry).
    pub fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// An internal failure. The detail is logged here and never shown to clients.
    pub fn internal(detail: impl fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }

    /// Rebuilds the error a service sent, or classifies a transport failure.
    pub fn from_status(status: &Status) -> Self {
        let carried = status
            .metadata()
            .get(CODE_METADATA)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<ErrorCode>().ok());
        let retry_after = status
            .metadata()
            .get(RETRY_AFTER_METADATA)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u32>().ok());
        match carried {
            Some(code) => Self {
                retry_after,
                ..Self::new(code, status.message())
            },
            None => {
                let code = ErrorCode::from_grpc_code(status.code());
                let message = match code {
                    ErrorCode::Unavailable => "a downstream service is unavailable".to_string(),
                    ErrorCode::Timeout => "a downstream service did not answer in time".to_string(),
                    ErrorCode::Internal => "internal error".to_string(),
                    _ => status.message().to_string(),
                };
                if code == ErrorCode::Internal {
                    tracing::error!(status = %status, "downstream failure");
                }
                Self::new(code, message)
            }
        }
    }
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Self {
        let mut status = Status::new(err.code.grpc_code(), err.message);
        status
            .metadata_mut()
            .insert(CODE_METADATA, MetadataValue::from_static(err.code.as_str()));
        if let Some(secs) = err.retry_after {
            status
                .metadata_mut()
                .insert(RETRY_AFTER_METADATA, MetadataValue::from(secs));
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_survives_a_grpc_hop() {
        for code in ErrorCode::ALL {
            let status = Status::from(ApiError::new(code, "why"));
            assert_eq!(status.code(), code.grpc_code());
            assert_eq!(ApiError::from_status(&status), ApiError::new(code, "why"));
        }
    }

    #[test]
    fn codes_are_unique_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()));
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
            assert!((400..600).contains(&code.http_status()));
        }
    }

    #[test]
    fn retry_after_survives_a_grpc_hop() {
        let err = ApiError::new(ErrorCode::QuotaExceeded, "later").retry_after(42);
        let back = ApiError::from_status(&Status::from(err.clone()));
        assert_eq!(back, err);
        assert_eq!(back.retry_after, Some(42));
        assert_eq!(
            ApiError::new(ErrorCode::Unavailable, "x")
                .retry_after(0)
                .retry_after,
            Some(1)
        );
    }

    #[test]
    fn transport_failure_is_unavailable() {
        let err = ApiError::from_status(&Status::unavailable("connection refused"));
        assert_eq!(err.code, ErrorCode::Unavailable);
        assert_eq!(err.code.http_status(), 503);
    }
}
