//! The dashboard: three static files built into the binary, so the gateway
//! serves it with nothing to install or fetch. It talks to the REST API
//! under `/api/v1` like any other client.

use actix_web::{HttpResponse, http::header};

const INDEX: &str = include_str!("../../../dashboard/index.html");
const SCRIPT: &str = include_str!("../../../dashboard/app.js");
const STYLE: &str = include_str!("../../../dashboard/style.css");

/// The page only loads its own script and style and only calls this origin.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; \
    base-uri 'none'";

fn file(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        // A new gateway version must not meet an old script in a cache.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}

pub async fn index() -> HttpResponse {
    file("text/html; charset=utf-8", INDEX)
}

pub async fn script() -> HttpResponse {
    file("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn style() -> HttpResponse {
    file("text/css; charset=utf-8", STYLE)
}
