//! Every service serves Prometheus metrics; metrics-svc also exports SMS
//! counts and success rates per pair.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use smsops_tests::{Options, TestApp, sandbox::Sandbox};

async fn scrape(app: &TestApp, url: &str) -> String {
    let response = app.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

/// The value of the first sample named `name` whose labels contain every
/// one of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// A stack on a sandbox that delivers everything 10 ms after each step.
async fn delivering_app() -> (Sandbox, TestApp) {
    let sandbox = Sandbox::start(json!({"default_rule": {
        "delivered": 1.0, "callback_latency_ms": 10
    }}));
    let app = TestApp::spawn_with(Options {
        twilio_base_url: sandbox.url.clone(),
        ..Options::default()
    })
    .await;
    (sandbox, app)
}

/// A GB pair named `operator`; its id.
async fn new_pair(app: &TestApp, admin: &str, operator: &str) -> String {
    app.post(
        "/api/v1/country-operators",
        Some(admin),
        json!({"country": "GB", "operator": operator}),
    )
    .await
    .id()
}

/// Sends one message to `to` on `pair`.
async fn send(app: &TestApp, admin: &str, pair: &str, to: &str, body: &str) {
    let reply = app
        .post(
            "/api/v1/sms",
            Some(admin),
            json!({"country_operator_id": pair, "to": to, "body": body}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_serves_metrics_and_sms_counts_are_exported() {
    let (_sandbox, app) = delivering_app().await;
    let admin = app.admin_tokens().await.access;
    let operator = format!("op-{}", uuid::Uuid::new_v4().simple());
    let pair = new_pair(&app, &admin, &operator).await;
    for n in 0..3 {
        send(&app, &admin, &pair, &format!("+44770090010{n}"), "prom").await;
    }

    let metrics_url = format!("http://{}/metrics", app.prometheus["metrics-svc"]);
    let operator_label = format!("operator=\"{operator}\"");
    let mut text = String::new();
    for _ in 0..150 {
        text = scrape(&app, &metrics_url).await;
        let rate = sample(&text, "smsops_sms_success_rate", &[&operator_label]);
        let delivered = sample(
            &text,
            "smsops_sms_total",
            &[&operator_label, "status=\"delivered\""],
        );
        if rate == Some(1.0) && delivered == Some(3.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        sample(
            &text,
            "smsops_sms_total",
            &[&operator_label, "status=\"accepted\"", "country=\"GB\""]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "smsops_sms_total",
            &[&operator_label, "status=\"delivered\""]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "smsops_sms_success_rate", &[&operator_label]),
        Some(1.0),
        "{text}"
    );

    let sms = scrape(
        &app,
        &format!("http://{}/metrics", app.prometheus["sms-svc"]),
    )
    .await;
    assert_eq!(
        sample(
            &sms,
            "smsops_grpc_server_requests_total",
            &[
                "method=\"SmsService/SendSms\"",
                "code=\"ok\"",
                "service=\"sms-svc\""
            ]
        ),
        Some(3.0),
        "{sms}"
    );
    assert!(sms.contains("smsops_grpc_server_request_duration_seconds_bucket"));

    let gateway = scrape(&app, &app.url("/metrics")).await;
    assert_eq!(
        sample(
            &gateway,
            "smsops_http_server_requests_total",
            &["route=\"/api/v1/sms\"", "method=\"POST\"", "status=\"202\""]
        ),
        Some(3.0),
        "{gateway}"
    );

    let mut exported = format!("{text}{sms}{gateway}");
    for service in ["auth-svc", "operator-svc", "process-svc", "notify-svc"] {
        let text = scrape(&app, &format!("http://{}/metrics", app.prometheus[service])).await;
        assert!(
            text.contains(&format!("service=\"{service}\"")) || text.ends_with("# EOF\n"),
            "{service}: {text}"
        );
        exported.push_str(&text);
    }
    // The Grafana dashboard and the Prometheus alert rules in deploy/ name
    // only metrics that exist, so a renamed metric cannot leave them blank.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for file in ["deploy/grafana/smsops.json", "deploy/prometheus/rules.yml"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let names = metric_names(&text);
        assert!(!names.is_empty(), "{file}");
        for name in names {
            assert!(
                exported.contains(&format!("\n{name}{{"))
                    || exported.contains(&format!("\n{name} ")),
                "{file} names {name}, which no service exports"
            );
        }
    }
    let other = app
        .http
        .get(format!("http://{}/other", app.prometheus["sms-svc"]))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    app.cleanup().await;
}

/// Every `smsops_…` name in a dashboard or rules file.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    text.match_indices("smsops_")
        .map(|(at, _)| {
            text[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// The distinct values of `label` on the gateway's request counter.
fn label_values(text: &str, label: &str) -> std::collections::BTreeSet<String> {
    let key = format!("{label}=\"");
    text.lines()
        .filter(|line| line.starts_with("smsops_http_server_requests_total{"))
        .filter_map(|line| {
            let rest = &line[line.find(&key)? + key.len()..];
            Some(rest[..rest.find('"')?].to_string())
        })
        .collect()
}

/// Method names and paths come from the client: none may become a series of
/// its own (200 made-up methods once made 200 series, and a 4,000-character
/// method a 4,009-character label).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_and_paths_make_no_new_series() {
    let app = TestApp::spawn().await;
    for n in 0..200 {
        let method = reqwest::Method::from_bytes(format!("ZZ{n}").as_bytes()).unwrap();
        let path = if n % 2 == 0 {
            "/api/v1/sms"
        } else {
            "/healthz"
        };
        let response = app
            .http
            .request(method, app.url(path))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    let long = reqwest::Method::from_bytes("Q".repeat(4_000).as_bytes()).unwrap();
    let response = app
        .http
        .request(long, app.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
    for n in 0..50 {
        let path = format!("/made-up-{n}/x?y={n}");
        let status = app.http.get(app.url(&path)).send().await.unwrap().status();
        assert_eq!(status, StatusCode::NOT_FOUND);
        let path = format!("/api/v1/made-up-{n}");
        let status = app.http.get(app.url(&path)).send().await.unwrap().status();
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    let text = scrape(&app, &app.url("/metrics")).await;
    let methods = label_values(&text, "method");
    let served = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
    ];
    assert!(methods.contains("other"), "{methods:?}");
    assert!(
        methods.iter().all(|m| served.contains(&m.as_str())),
        "{methods:?}"
    );
    // Unknown paths all count as "unmatched"; the rest are route patterns.
    let routes = label_values(&text, "route");
    assert!(routes.contains("unmatched"), "{routes:?}");
    let expected = ["/api/v1/sms", "/healthz", "/readyz", "unmatched"];
    assert!(
        routes.iter().all(|r| expected.contains(&r.as_str())),
        "{routes:?}"
    );
    let longest = text.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 300, "a {longest}-character line");
    app.cleanup().await;
}

/// A slowed route shows in its pair's delivery histogram, and only there:
/// the sandbox holds the receipts of messages to +4477009 for 3 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_latency_is_exported_per_pair() {
    let (sandbox, app) = delivering_app().await;
    sandbox
        .set_faults(json!({"receipt_delay_ms_by_prefix": {"+4477009": 3000}}))
        .await;
    let admin = app.admin_tokens().await.access;
    let mut labels = Vec::new();
    for (prefix, name) in [("+44770090", "slow"), ("+44780090", "fast")] {
        let operator = format!("{name}-{}", uuid::Uuid::new_v4().simple());
        let pair = new_pair(&app, &admin, &operator).await;
        for n in 0..4 {
            send(&app, &admin, &pair, &format!("{prefix}01{n}"), "latency").await;
        }
        labels.push(format!("operator=\"{operator}\""));
    }
    let metrics_url = format!("http://{}/metrics", app.prometheus["metrics-svc"]);
    let count = |text: &str, operator: &str, step: &str| {
        sample(
            text,
            "smsops_sms_delivery_seconds_count",
            &[operator, &format!("step=\"{step}\"")],
        )
    };
    let mut text = String::new();
    for _ in 0..200 {
        text = scrape(&app, &metrics_url).await;
        if labels
            .iter()
            .all(|l| count(&text, l, "delivered") == Some(4.0))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (slow, fast) = (&labels[0], &labels[1]);
    for operator in [slow, fast] {
        assert_eq!(count(&text, operator, "delivered"), Some(4.0), "{text}");
        assert_eq!(count(&text, operator, "sent"), Some(4.0), "{text}");
    }
    let under = |operator: &str, le: &str| {
        sample(
            &text,
            "smsops_sms_delivery_seconds_bucket",
            &[operator, "step=\"delivered\"", &format!("le=\"{le}\"")],
        )
    };
    // The slowed receipts all took at least their 3 s; the others were not held.
    assert_eq!(under(slow, "2.0"), Some(0.0), "{text}");
    assert_eq!(under(slow, "+Inf"), Some(4.0), "{text}");
    assert!(
        under(fast, "2.0") > Some(0.0),
        "the unslowed pair's receipts all took over 2 s: {text}"
    );
    let sum = sample(
        &text,
        "smsops_sms_delivery_seconds_sum",
        &[slow, "step=\"delivered\""],
    )
    .unwrap_or_default();
    assert!(sum >= 12.0, "4 receipts held 3 s each sum to {sum}");
    app.cleanup().await;
}
