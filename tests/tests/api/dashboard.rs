//! The dashboard the gateway serves: its page at `/` and at every client-side
//! route, its hashed assets, and the JSON 404s around them. These hold
//! whether or not `dashboard/dist/` was built (without it the page is a
//! placeholder). That the dashboard calls only real routes is the type
//! checker's job: its types come from `dashboard/openapi.json`, which a
//! gateway unit test keeps equal to the document the gateway serves.

use reqwest::{Response, StatusCode};
use smsops_tests::TestApp;

const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; \
    base-uri 'none'";

fn header(reply: &Response, name: &str) -> String {
    reply
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// GETs `path`, checks it is the dashboard's page, and returns its text.
async fn page(app: &TestApp, path: &str) -> String {
    let reply = app.http.get(app.url(path)).send().await.unwrap();
    assert_eq!(reply.status(), StatusCode::OK, "{path}");
    assert!(
        header(&reply, "content-type").starts_with("text/html"),
        "{path}"
    );
    assert_eq!(header(&reply, "content-security-policy"), POLICY, "{path}");
    assert_eq!(
        header(&reply, "x-content-type-options"),
        "nosniff",
        "{path}"
    );
    assert_eq!(header(&reply, "cache-control"), "no-cache", "{path}");
    let text = reply.text().await.unwrap();
    assert!(
        text.to_lowercase().starts_with("<!doctype html>"),
        "{path}: {text}"
    );
    text
}

/// Asserts the usual JSON 404 of a path no route matches.
async fn json_404(app: &TestApp, path: &str) {
    let reply = app.http.get(app.url(path)).send().await.unwrap();
    assert_eq!(reply.status(), StatusCode::NOT_FOUND, "{path}");
    assert!(
        header(&reply, "content-type").starts_with("application/json"),
        "{path}"
    );
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["code"], "not_found", "{path}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_the_dashboard_at_its_routes_and_assets() {
    let app = TestApp::spawn().await;

    // The page, at `/` and at the app's own routes, so they can be reloaded.
    let index = page(&app, "/").await;
    assert!(index.contains("smsops"), "{index}");
    assert_eq!(page(&app, "/index.html").await, index);
    for route in [
        "/sessions",
        "/sessions/some-id",
        "/pairs/abc-123",
        "/alerts",
    ] {
        assert_eq!(page(&app, route).await, index, "{route}");
    }
    let head = app
        .http
        .head(app.url("/sessions/some-id"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "content-security-policy"), POLICY);

    // Every asset the page loads, cached for good: its name is its hash.
    let assets: Vec<&str> = index
        .split(['"', '\''])
        .filter(|part| part.starts_with("/assets/"))
        .collect();
    for asset in &assets {
        let reply = app.http.get(app.url(asset)).send().await.unwrap();
        assert_eq!(reply.status(), StatusCode::OK, "{asset}");
        assert_eq!(
            header(&reply, "cache-control"),
            "public, max-age=31536000, immutable",
            "{asset}"
        );
        assert_eq!(header(&reply, "content-security-policy"), POLICY, "{asset}");
        assert_eq!(
            header(&reply, "x-content-type-options"),
            "nosniff",
            "{asset}"
        );
        let kind = header(&reply, "content-type");
        if asset.ends_with(".js") {
            assert!(kind.starts_with("text/javascript"), "{asset}: {kind}");
        } else if asset.ends_with(".css") {
            assert!(kind.starts_with("text/css"), "{asset}: {kind}");
        }
        assert!(!reply.bytes().await.unwrap().is_empty(), "{asset}");
    }

    // No such asset, the old script's path, a file-like path, the
    // gateway's own unknown paths, a path below no view of the app: the
    // JSON 404 they have always been.
    for path in [
        "/made-up/x",
        "/dashboard",
        "/assets/nope.js",
        "/dashboard/app.js",
        "/nope.txt",
        "/api/v1/nope",
        "/api/v1/sessions/some-id/nope",
        "/webhooks/nope",
    ] {
        json_404(&app, path).await;
    }
    // Other methods on a client route are not the dashboard's either.
    let post = app.http.post(app.url("/sessions")).send().await.unwrap();
    assert_eq!(post.status(), StatusCode::NOT_FOUND);

    // The gateway's own routes still answer as themselves.
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(!header(&health, "content-type").starts_with("text/html"));
    let spec = app
        .http
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(spec.status(), StatusCode::OK);
    let spec: serde_json::Value = spec.json().await.unwrap();
    assert!(
        spec["paths"]
            .as_object()
            .is_some_and(|paths| !paths.is_empty())
    );

    app.cleanup().await;
}
