//! The dashboard the gateway serves, and the API calls its script makes.

use reqwest::StatusCode;
use smsops_tests::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_the_dashboard_and_it_calls_only_real_routes() {
    let app = TestApp::spawn().await;
    let mut files = Vec::new();
    for (path, kind) in [
        ("/", "text/html"),
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/style.css", "text/css"),
    ] {
        let reply = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(reply.status(), StatusCode::OK, "{path}");
        let header = |name: &str| {
            reply
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert!(header("content-type").starts_with(kind), "{path}");
        assert!(header("content-security-policy").contains("default-src 'none'"));
        files.push(reply.text().await.unwrap());
    }
    assert!(files[0].contains("/dashboard/app.js") && files[0].contains("Sign in"));

    // Every `call("METHOD", "/path")` in the script names an operation of
    // the OpenAPI document, so the page cannot drift from the API unseen.
    let spec: serde_json::Value = app
        .http
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let calls = api_calls(&files[1]);
    assert!(calls.len() >= 10, "{calls:?}");
    for (method, path) in calls {
        let known = spec["paths"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(p, _)| without_params(p) == format!("/api/v1{path}"))
            .is_some_and(|(_, ops)| ops.get(method.to_lowercase()).is_some());
        assert!(
            known,
            "the dashboard calls {method} {path}, which the API does not have"
        );
    }
    app.cleanup().await;
}

/// The method and path (parameters as `{}`, no query) of each API call.
fn api_calls(script: &str) -> Vec<(String, String)> {
    let mut calls = Vec::new();
    for part in script.split("call(\"").skip(1) {
        let Some((method, rest)) = part.split_once("\", ") else {
            continue;
        };
        let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '`') else {
            continue;
        };
        let path = rest[1..].split(quote).next().unwrap_or_default();
        let path = path.split('?').next().unwrap_or_default();
        calls.push((method.to_string(), without_params(path)));
    }
    calls
}

/// `/sessions/${encodeURIComponent(s.id)}/stop` and `/sessions/{id}/stop`
/// both become `/sessions/{}/stop`.
fn without_params(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') || segment.starts_with("${") {
                "{}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}
