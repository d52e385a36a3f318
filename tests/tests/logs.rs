//! No secret in a log line: every line the stack writes while a browser
//! signs in, opens the live feed with `?token=`, and calls the API, read
//! back. A test binary of its own, because it installs the process-wide log
//! subscriber (the api tests run with none, so the access log is off there).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use smsops_tests::TestApp;
use tokio_tungstenite::tungstenite::Message;
use tracing_subscriber::{filter::LevelFilter, fmt::MakeWriter};

/// Everything logged, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// Polls until some captured line contains `needle`.
async fn wait_logged(logs: &Captured, needle: &str) -> String {
    for _ in 0..100 {
        if let Some(line) = logs.text().lines().find(|line| line.contains(needle)) {
            return line.to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing logged {needle:?}:\n{}", logs.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_keys_never_reach_the_logs() {
    let logs = Captured::default();
    // Debug, not info: a secret one `SMSOPS_LOG=debug` away is still a leak.
    tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(LevelFilter::DEBUG)
        .with_ansi(false)
        .try_init()
        .unwrap();
    let app = TestApp::spawn().await;
    let tokens = app.admin_tokens().await;
    let jwt = tokens.access.clone();

    // The browser's way into the live feed: the token in the query string.
    let url = format!(
        "{}/api/v1/live?token={jwt}",
        app.base_url.replace("http://", "ws://")
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let ready = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(ready.to_text().unwrap().contains("ready"), "{ready}");
    socket.send(Message::Close(None)).await.unwrap();
    while socket.next().await.is_some() {}

    // Every parameter that carries a credential, in any case, and a header.
    let query = format!(
        "Access_Token={jwt}&refresh_token={}&KEY=key-s3cret&api_key=key-s3cret&page_size=5",
        tokens.refresh
    );
    app.http
        .get(app.url(&format!("/api/v1/sms?{query}")))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    let reply = app
        .http
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let reply = app
        .http
        .get(app.url(&format!("/api/v1/live?token={jwt}x")))
        .send()
        .await
        .unwrap();
    assert!(reply.status().is_client_error(), "{}", reply.status());

    let live = wait_logged(&logs, "GET /api/v1/live?token=[redacted] HTTP/1.1\" 101").await;
    // The client's address leads the line.
    assert!(live.contains(" 127.0.0.1 \"GET /api/v1/live"), "{live}");
    wait_logged(&logs, "GET /api/v1/live?token=[redacted] HTTP/1.1\" 401").await;
    wait_logged(
        &logs,
        "GET /api/v1/sms?Access_Token=[redacted]&refresh_token=[redacted]&KEY=[redacted]&api_key=[redacted]&page_size=5 HTTP/1.1\"",
    )
    .await;
    wait_logged(&logs, "GET /api/v1/auth/me HTTP/1.1\" 200").await;
    app.cleanup().await;

    let text = logs.text();
    // The signature alone would be enough to tell a token apart.
    let signature = jwt.rsplit('.').next().unwrap();
    for secret in [
        jwt.as_str(),
        signature,
        tokens.refresh.as_str(),
        "key-s3cret",
    ] {
        assert!(!text.contains(secret), "a secret was logged:\n{text}");
    }
}
