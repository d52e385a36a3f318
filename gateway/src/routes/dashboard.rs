//! The dashboard: the files `npm run build` writes to `dashboard/dist/`, built
//! into the binary by `build.rs`, so the gateway serves it with nothing to
//! install or fetch at run time. Without a build of the dashboard, `/` is a
//! placeholder page that says how to make one. The dashboard talks to the
//! REST API under `/api/v1` like any other client.
//!
//! - `/` and `/index.html`: the page, revalidated on every load (`no-cache`),
//!   so a new gateway version never meets an old page in a cache.
//! - `/assets/{file}`: the scripts, styles, fonts and images it loads. Their
//!   names carry a hash of their content, so they are cached for a year.
//! - A GET or HEAD below one of the app's views (`/sessions/{id}`, `/alerts`,
//!   see [`VIEWS`]) that does not name a file (a dot in its last segment)
//!   answers the page, which routes on the client, so such a URL can be
//!   reloaded or shared. A path that names a file answers that file of
//!   `dist/` if it has one (`/favicon.svg`).
//!
//! Everything else (an unknown `/api/v1/…` path, a missing file, another
//! method) answers the usual JSON 404.

use actix_web::{
    HttpRequest, HttpResponse,
    http::{Method, header},
};

use crate::error::not_found;

/// One file of the dashboard's build.
pub(crate) struct File {
    /// Relative to `dist/`, `/`-separated: `index.html`, `assets/index-AbC1.js`.
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

// `BUILT` (false when `FILES` is only the placeholder) and `FILES`.
include!(concat!(env!("OUT_DIR"), "/dashboard_files.rs"));

/// The page only loads its own scripts and styles and only calls this origin.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; \
    base-uri 'none'";

/// For the page and the files whose names do not change between builds.
const REVALIDATE: &str = "no-cache";
/// For `assets/`: a new build gives a changed file a new name.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Whether this binary holds a build of the dashboard rather than the
/// placeholder page.
pub fn is_built() -> bool {
    BUILT
}

fn lookup(path: &str) -> Option<&'static File> {
    FILES.iter().find(|file| file.path == path)
}

fn serve(file: &'static File, cache: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, file.content_type))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::CONTENT_SECURITY_POLICY, POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(file.body)
}

fn page() -> HttpResponse {
    match lookup("index.html") {
        Some(file) => serve(file, REVALIDATE),
        // build.rs always writes one; this is only for the type checker.
        None => HttpResponse::InternalServerError().finish(),
    }
}

/// `GET /` and `GET /index.html`.
pub async fn index() -> HttpResponse {
    page()
}

/// `GET /assets/{file}`.
pub async fn asset(req: HttpRequest) -> HttpResponse {
    match lookup(req.path().trim_start_matches('/')) {
        Some(file) => serve(file, IMMUTABLE),
        None => not_found(req).await,
    }
}

/// What a GET or HEAD no route matched is asking for.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    /// One of the app's own routes: the page answers it.
    Page,
    /// A file, by its path below `dist/`.
    File(&'a str),
    /// Neither: the gateway's own routes, or nothing at all.
    Other,
}

/// The first segments of the dashboard's own views (`dashboard/src/app/
/// Shell.tsx` routes them; the Ingress in deploy/k8s/gateway.yaml lists
/// them). Any other path is not the dashboard's, so a made-up one is a
/// plain 404 rather than a page.
const VIEWS: [&str; 5] = ["sessions", "messages", "pairs", "alerts", "admin"];

fn classify(path: &str) -> Target<'_> {
    let relative = path.trim_start_matches('/');
    let first = relative.split('/').next().unwrap_or_default();
    let last = relative.rsplit('/').next().unwrap_or_default();
    if last.contains('.') {
        Target::File(relative)
    } else if VIEWS.contains(&first) {
        Target::Page
    } else {
        Target::Other
    }
}

/// The app's default service: the dashboard's client-side routes and its
/// other files, else the JSON 404 for a path no route matches.
pub async fn fallback(req: HttpRequest) -> HttpResponse {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        match classify(req.path()) {
            Target::Page => return page(),
            Target::File(path) => {
                if let Some(file) = lookup(path) {
                    return serve(file, REVALIDATE);
                }
            }
            Target::Other => {}
        }
    }
    not_found(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_files_and_everything_else_are_told_apart() {
        for page in [
            "/sessions",
            "/sessions/",
            "/sessions/0190-abc",
            "/pairs/abc-123",
            "/alerts",
            "/admin",
            "/messages/x",
        ] {
            assert_eq!(classify(page), Target::Page, "{page}");
        }
        for (path, file) in [
            ("/favicon.svg", "favicon.svg"),
            ("/robots.txt", "robots.txt"),
            ("/dashboard/app.js", "dashboard/app.js"),
            ("/pairs/abc.def", "pairs/abc.def"),
        ] {
            assert_eq!(classify(path), Target::File(file), "{path}");
        }
        for other in [
            "/api",
            "/api/v1/nope",
            "/api/v1/sessions/abc",
            "/docs/",
            "/webhooks/twilio/status",
            "/healthz",
            "/metrics",
            "/made-up-1/x",
            "/dashboard",
            "/sessionsx",
        ] {
            assert_eq!(classify(other), Target::Other, "{other}");
        }
    }

    #[test]
    fn the_table_always_has_a_page_and_types_its_files() {
        let index = lookup("index.html").expect("index.html");
        assert_eq!(index.content_type, "text/html; charset=utf-8");
        assert!(!index.body.is_empty());
        if !is_built() {
            assert_eq!(FILES.len(), 1);
            let text = std::str::from_utf8(index.body).expect("UTF-8");
            assert!(text.contains("npm ci &amp;&amp; npm run build") && text.contains("make up"));
            assert!(!text.contains("<script") && !text.contains("<style"));
        }
        for file in FILES {
            assert!(!file.path.starts_with('/') && !file.path.contains('\\'));
            assert!(!file.content_type.is_empty(), "{}", file.path);
        }
    }

    fn header_of(response: &HttpResponse, name: header::HeaderName) -> &str {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn cache_control(response: &HttpResponse) -> &str {
        header_of(response, header::CACHE_CONTROL)
    }

    #[tokio::test]
    async fn every_file_is_served_with_its_headers() {
        use actix_web::{http::StatusCode, test::TestRequest};

        for file in FILES {
            let uri = format!("/{}", file.path);
            let req = TestRequest::get().uri(&uri).to_http_request();
            let response = if file.path.starts_with("assets/") {
                asset(req).await
            } else {
                fallback(req).await
            };
            assert_eq!(response.status(), StatusCode::OK, "{uri}");
            let expected = if file.path.starts_with("assets/") {
                IMMUTABLE
            } else {
                REVALIDATE
            };
            assert_eq!(cache_control(&response), expected, "{uri}");
            let content_type = header_of(&response, header::CONTENT_TYPE);
            assert_eq!(content_type, file.content_type, "{uri}");
            let policy = header_of(&response, header::CONTENT_SECURITY_POLICY);
            assert_eq!(policy, POLICY, "{uri}");
            let sniff = header_of(&response, header::X_CONTENT_TYPE_OPTIONS);
            assert_eq!(sniff, "nosniff", "{uri}");
        }
        let req = TestRequest::get().uri("/assets/nope.js").to_http_request();
        assert_eq!(asset(req).await.status(), StatusCode::NOT_FOUND);
        for (method, uri, status) in [
            (Method::GET, "/sessions/some-id", StatusCode::OK),
            (Method::HEAD, "/alerts", StatusCode::OK),
            (Method::POST, "/sessions", StatusCode::NOT_FOUND),
            (Method::GET, "/api/v1/nope", StatusCode::NOT_FOUND),
            (Method::GET, "/nope.js", StatusCode::NOT_FOUND),
        ] {
            let req = TestRequest::default()
                .method(method.clone())
                .uri(uri)
                .to_http_request();
            let response = fallback(req).await;
            assert_eq!(response.status(), status, "{method} {uri}");
            if status == StatusCode::OK {
                assert_eq!(cache_control(&response), REVALIDATE, "{uri}");
            }
        }
    }
}
