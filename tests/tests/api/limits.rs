//! The gateway's rate limits: per client address behind trusted proxies,
//! whatever the client writes into `X-Forwarded-For`, and per user on the
//! routes that send.

use reqwest::StatusCode;
use serde_json::json;
use smsops_tests::{Options, Reply, TestApp, USER_PASSWORD};

/// A sign-in as if relayed by a proxy that wrote `forwarded_for`.
async fn sign_in_via(app: &TestApp, forwarded_for: Option<&str>) -> Reply {
    let mut request = app
        .http
        .post(app.url("/api/v1/auth/sign-in"))
        .json(&json!({"email": "nobody@smsops.test", "password": USER_PASSWORD}));
    if let Some(hops) = forwarded_for {
        request = request.header("x-forwarded-for", hops);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}

#[track_caller]
fn assert_limited(reply: &Reply, max_wait: u64) {
    reply.assert_error(429, "rate_limited");
    let retry: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=max_wait).contains(&retry), "retry-after {retry}");
}

/// The test plays the ingress at 127.0.0.1: it appends the address its
/// client called from (198.51.100.7) after whatever the client wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_forwarded_for_does_not_escape_the_limit_behind_a_trusted_proxy() {
    let app = TestApp::spawn_with(Options {
        auth_rate_per_minute: 6,
        auth_burst: 3,
        trusted_proxies: "127.0.0.0/8, ::1".into(),
        ..Default::default()
    })
    .await;
    for spoof in ["203.0.113.1", "203.0.113.2", "127.0.0.9"] {
        sign_in_via(&app, Some(&format!("{spoof}, 198.51.100.7")))
            .await
            .assert_error(401, "invalid_credentials");
    }
    // A fresh left-most hop, a whole made-up chain, garbage: the same client.
    for spoof in [
        "203.0.113.4, 198.51.100.7",
        "198.51.100.99, 127.0.0.1, 198.51.100.7",
        "not-an-address, 198.51.100.7",
    ] {
        assert_limited(&sign_in_via(&app, Some(spoof)).await, 10);
    }
    // Another client behind the same proxy has an allowance of its own, so
    // the limit really is per client and not per proxy.
    sign_in_via(&app, Some("203.0.113.4, 198.51.100.8"))
        .await
        .assert_error(401, "invalid_credentials");
    app.cleanup().await;
}

/// Without trusted proxies the header is not read at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_ignored_without_trusted_proxies() {
    let app = TestApp::spawn_with(Options {
        auth_rate_per_minute: 6,
        auth_burst: 3,
        ..Default::default()
    })
    .await;
    for n in 0..3 {
        sign_in_via(&app, Some(&format!("198.51.100.{n}")))
            .await
            .assert_error(401, "invalid_credentials");
    }
    assert_limited(&sign_in_via(&app, Some("198.51.100.50")).await, 10);
    assert_limited(&sign_in_via(&app, None).await, 10);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_sms_and_starting_sessions_are_limited_per_user() {
    let app = TestApp::spawn_with(Options {
        send_rate_per_minute: 1,
        send_burst: 2,
        ..Default::default()
    })
    .await;
    let admin = app.admin_tokens().await.access;
    let operator = format!("op-{}", uuid::Uuid::new_v4().simple());
    let pair = app
        .post(
            "/api/v1/country-operators",
            Some(&admin),
            json!({"country": "GB", "operator": operator}),
        )
        .await
        .id();
    let sms = json!({"country_operator_id": pair, "to": "+447700900123", "body": "limited"});
    for _ in 0..2 {
        let reply = app.post("/api/v1/sms", Some(&admin), sms.clone()).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    }
    let refused = app.post("/api/v1/sms", Some(&admin), sms.clone()).await;
    // One a minute: the next is due in a minute.
    assert_limited(&refused, 60);
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("this user"),
        "{}",
        refused.body
    );

    // Another user is not held back by the admin's sends.
    let (_, user) = app.new_user().await;
    let reply = app
        .post("/api/v1/sms", Some(&user.access), sms.clone())
        .await;
    assert_ne!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.body
    );

    // Sessions are counted apart from messages; a refused start (the pair's
    // session is already running) still counts.
    let session = json!({
        "country_operator_id": pair,
        "rate_per_minute": 1,
        "recipients": ["+447700900001"],
        "template": "limited {n}",
    });
    let first = app
        .post("/api/v1/sessions", Some(&admin), session.clone())
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    app.post("/api/v1/sessions", Some(&admin), session.clone())
        .await
        .assert_error(409, "session_active");
    assert_limited(
        &app.post("/api/v1/sessions", Some(&admin), session).await,
        60,
    );
    let id = first.id();
    let stop = app
        .post(
            &format!("/api/v1/sessions/{id}/stop"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(stop.status, StatusCode::OK, "{}", stop.body);
    app.cleanup().await;
}
