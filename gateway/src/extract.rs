//! Request extractors: the verified caller and JSON bodies.

use std::{future::Future, pin::Pin};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use serde::de::DeserializeOwned;
use serde_json::Value;
use smsops_common::{ApiError, ErrorCode, auth::Caller};

use crate::{
    error::{HttpError, error},
    grpc::Services,
};

/// A signed-in caller: the request carried a valid access token.
pub struct Authed(pub Caller);

/// A signed-in caller with the admin role.
pub struct Admin(pub Caller);

/// A signed-in caller that may spend money: an operator or an admin.
pub struct Sender(pub Caller);

fn verify(req: &HttpRequest) -> Pin<Box<dyn Future<Output = Result<Caller, HttpError>>>> {
    let services = req.app_data::<web::Data<Services>>().cloned();
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Box::pin(async move {
        let services =
            services.ok_or_else(|| ApiError::internal("services missing from app data"))?;
        Ok(services.verifier.caller(authorization.as_deref()).await?)
    })
}

impl FromRequest for Authed {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, HttpError>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let caller = verify(req);
        Box::pin(async move { caller.await.map(Authed) })
    }
}

impl FromRequest for Admin {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, HttpError>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let caller = verify(req);
        Box::pin(async move {
            let caller = caller.await?;
            caller.require_admin()?;
            Ok(Admin(caller))
        })
    }
}

impl FromRequest for Sender {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, HttpError>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let caller = verify(req);
        Box::pin(async move {
            let caller = caller.await?;
            caller.require_sender()?;
            Ok(Sender(caller))
        })
    }
}

/// The `X-Api-Key` a request carries; before its body, so a request
/// without one is a 401 whatever it holds.
pub struct ApiKey(pub String);

impl FromRequest for ApiKey {
    type Error = HttpError;
    type Future = std::future::Ready<Result<Self, HttpError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let key = req
            .headers()
            .get(crate::routes::ingest::API_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| ApiKey(k.to_string()))
            .ok_or_else(|| ApiError::unauthorized("missing X-Api-Key header").into());
        std::future::ready(key)
    }
}

/// Like [`Body`], for a body that may be left out: no body means
/// `T::default()` (an action's options, say).
pub struct OptionalBody<T>(pub T);

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalBody<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let length = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
        if !chunked && length.unwrap_or(0) == 0 {
            return Box::pin(async { Ok(OptionalBody(T::default())) });
        }
        // `null` is no body too, as the document's optional body allows.
        let json = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move {
            match json.await?.into_inner() {
                Value::Null => Ok(OptionalBody(T::default())),
                value => object_body(value).map(OptionalBody),
            }
        })
    }
}

/// A JSON request body that must be an object. `web::Json` alone would also
/// accept a positional array for a struct, which no client means to send.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move { object_body(json.await?.into_inner()).map(Body) })
    }
}

fn object_body<T: DeserializeOwned>(value: Value) -> Result<T, actix_web::Error> {
    if !value.is_object() {
        return Err(error(
            ErrorCode::InvalidArgument,
            "request body must be a JSON object",
        )
        .into());
    }
    serde_json::from_value(value).map_err(|err| {
        error(
            ErrorCode::InvalidArgument,
            format!("invalid request body: {err}"),
        )
        .into()
    })
}
