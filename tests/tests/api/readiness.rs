use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use smsops_tests::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_service_makes_readyz_503_and_its_routes_unavailable() {
    let mut app = TestApp::spawn().await;
    let token = app.admin_tokens().await.access;
    let ready = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);

    app.stop_operator().await;
    let started = Instant::now();
    let ready = app.call(Method::GET, "/readyz", None, None).await;
    ready.assert_error(503, "unavailable");
    let message = ready.body["message"].as_str().unwrap();
    assert!(
        message.contains("operator-svc") && !message.contains("auth-svc"),
        "{message}"
    );
    app.get("/api/v1/country-operators", &token)
        .await
        .assert_error(503, "unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answers must not hang: {:?}",
        started.elapsed()
    );
    // What does not need operator-svc keeps working.
    assert_eq!(
        app.get("/api/v1/auth/me", &token).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.call(Method::GET, "/healthz", None, None).await.status,
        StatusCode::OK
    );

    app.start_operator().await;
    let mut ready = app.call(Method::GET, "/readyz", None, None).await;
    for _ in 0..50 {
        if ready.status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        ready = app.call(Method::GET, "/readyz", None, None).await;
    }
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(
        app.get("/api/v1/country-operators", &token).await.status,
        StatusCode::OK
    );

    // auth-svc down: sign-in is unavailable, not a 500.
    app.stop_auth().await;
    let reply = app
        .sign_in(&app.admin_email, smsops_tests::ADMIN_PASSWORD)
        .await;
    reply.assert_error(503, "unavailable");
    let ready = app.call(Method::GET, "/readyz", None, None).await;
    assert!(ready.body["message"].as_str().unwrap().contains("auth-svc"));

    app.cleanup().await;
}
