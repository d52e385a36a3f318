//! The gateway's WebSocket feed: SMS status changes, session changes,
//! metric updates and alerts, as they happen.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use smsops_tests::{Options, TestApp, amqp, sandbox::Sandbox};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp, query: &str) -> Socket {
    let url = format!(
        "{}/api/v1/live{query}",
        app.base_url.replace("http://", "ws://")
    );
    let (socket, _) = tokio_tungstenite::connect_async(url.into_client_request().unwrap())
        .await
        .unwrap();
    socket
}

/// The next JSON message, skipping pings; `None` when closed or after `limit`.
async fn next_json(socket: &mut Socket, limit: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return serde_json::from_str(&text).ok(),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) | Err(_) => return None,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Waits until the socket follows every event published from now on.
async fn wait_until_following(socket: &mut Socket) {
    let following = wait_for(socket, Duration::from_secs(10), |m| {
        m["type"] == "following"
    })
    .await;
    assert_eq!(following["events"], true, "{following}");
}

/// Waits for a message `matches` accepts; panics after `limit`.
async fn wait_for(socket: &mut Socket, limit: Duration, matches: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(message) = next_json(socket, deadline - Instant::now()).await
            && matches(&message)
        {
            return message;
        }
    }
    panic!("no such message in {limit:?}");
}

fn sms_event(pair: &str) -> (String, Vec<u8>) {
    let id = uuid::Uuid::now_v7().to_string();
    let body = json!({
        "event_id": id, "type": "sms.delivered", "occurred_at": chrono::Utc::now(),
        "message_id": uuid::Uuid::now_v7().to_string(), "session_id": null,
        "country_operator_id": pair, "country": "GB", "operator": "Vodafone",
        "is_high_priority": false, "status": "delivered", "error_code": null,
        "provider": "twilio", "provider_sid": "SM0",
    });
    (id, serde_json::to_vec(&body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_change_reaches_the_socket_within_200_ms() {
    let app = TestApp::spawn().await;
    let admin = app.admin_tokens().await.access;
    let mut socket = connect(&app, &format!("?token={admin}")).await;
    let ready = next_json(&mut socket, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(ready["type"], "ready");

    // The feed's queue is made when the first watcher arrives; the socket
    // says when it is on.
    wait_until_following(&mut socket).await;

    let mut latencies = Vec::new();
    for _ in 0..5 {
        let (id, payload) = sms_event("timed");
        let published = Instant::now();
        amqp::publish_raw(&app.exchange, "sms.delivered", &payload).await;
        wait_for(&mut socket, Duration::from_secs(2), |m| {
            m["type"] == "sms.delivered" && m["event"]["event_id"] == id.as_str()
        })
        .await;
        latencies.push(published.elapsed());
    }
    latencies.sort();
    println!("publish to socket: {latencies:?}");
    assert!(
        latencies[2] < Duration::from_millis(200),
        "median {:?}",
        latencies[2]
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_carries_sms_sessions_metrics_and_alerts() {
    let sandbox = Sandbox::start_default();
    let app = TestApp::spawn_with(Options {
        twilio_base_url: sandbox.url.clone(),
        telegram_base_url: sandbox.url.clone(),
        ..Options::default()
    })
    .await;
    let admin = app.admin_tokens().await.access;
    let pair = app
        .post(
            "/api/v1/country-operators",
            Some(&admin),
            json!({"country": "GB", "operator": format!("op-{}", uuid::Uuid::new_v4().simple())}),
        )
        .await
        .id();

    // The token in the first message this time.
    let mut socket = connect(&app, "").await;
    socket
        .send(Message::text(json!({ "token": admin }).to_string()))
        .await
        .unwrap();
    let ready = next_json(&mut socket, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(ready["type"], "ready");
    wait_until_following(&mut socket).await;

    let reply = app
        .post(
            "/api/v1/sms",
            Some(&admin),
            json!({"country_operator_id": pair, "to": "+447700900123", "body": "live"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let message_id = reply.id();
    let delivered = wait_for(&mut socket, Duration::from_secs(10), |m| {
        m["type"] == "sms.delivered" && m["event"]["message_id"] == message_id.as_str()
    })
    .await;
    assert_eq!(delivered["event"]["country_operator_id"], pair.as_str());
    let metrics = wait_for(&mut socket, Duration::from_secs(10), |m| {
        m["type"] == "metrics"
            && m["pairs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["country_operator_id"] == pair.as_str() && p["delivered"] == 1)
    })
    .await;
    assert!(metrics["at"].is_string());

    let session = app
        .post(
            "/api/v1/sessions",
            Some(&admin),
            json!({"country_operator_id": pair, "rate_per_minute": 60,
                   "recipients": ["+447700900124"], "template": "n {n}", "limit": 1}),
        )
        .await;
    assert_eq!(session.status, StatusCode::CREATED, "{}", session.body);
    let session_id = session.id();
    wait_for(&mut socket, Duration::from_secs(10), |m| {
        m["type"] == "session.started" && m["event"]["session_id"] == session_id.as_str()
    })
    .await;

    let alert = app
        .post(
            "/api/v1/alerts",
            Some(&admin),
            json!({"message": "live check"}),
        )
        .await;
    assert_eq!(alert.status, StatusCode::CREATED, "{}", alert.body);
    let alert_id = alert.id();
    let pushed = wait_for(&mut socket, Duration::from_secs(10), |m| {
        m["type"] == "alert" && m["alert"]["id"] == alert_id.as_str()
    })
    .await;
    assert_eq!(pushed["alert"]["message"], "live check");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_wants_a_valid_token() {
    let app = TestApp::spawn().await;
    let url = format!(
        "{}/api/v1/live?token=not-a-token",
        app.base_url.replace("http://", "ws://")
    );
    let refused = tokio_tungstenite::connect_async(url).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 401);
        }
        other => panic!("expected 401, got {other:?}"),
    }

    let mut socket = connect(&app, "").await;
    socket
        .send(Message::text(r#"{"token": "forged"}"#))
        .await
        .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .unwrap();
    match closed {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1008),
        other => panic!("expected a policy close, got {other:?}"),
    }
    app.cleanup().await;
}

/// Changes to the directory reach every open dashboard: a pair to anyone
/// who may read pairs, a person, invitation or key to admins alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_changes_reach_the_sockets_of_those_who_may_read_them() {
    let app = TestApp::spawn().await;
    let admin = app.admin_tokens().await.access;
    let (_, viewer) = app.new_user_as("viewer").await;
    let mut admins = connect(&app, &format!("?token={admin}")).await;
    let mut viewers = connect(&app, &format!("?token={}", viewer.access)).await;
    wait_until_following(&mut admins).await;
    wait_until_following(&mut viewers).await;

    let pair = app
        .post(
            "/api/v1/country-operators",
            Some(&admin),
            json!({"country": "GB", "operator": "Three"}),
        )
        .await;
    assert_eq!(pair.status, StatusCode::CREATED, "{}", pair.body);
    for socket in [&mut admins, &mut viewers] {
        let created = wait_for(socket, Duration::from_secs(10), |m| {
            m["type"] == "pair.created"
        })
        .await;
        assert_eq!(created["event"]["target"], pair.id(), "{created}");
        assert!(created["event"]["occurred_at"].is_string(), "{created}");
    }

    // A new person: the admin hears of it, the viewer does not, then both
    // hear of the pair's removal (which comes after it).
    app.new_account("operator").await;
    wait_for(&mut admins, Duration::from_secs(10), |m| {
        m["type"] == "user.signed_up"
    })
    .await;
    let deleted = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/country-operators/{}", pair.id()),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    let mut seen = Vec::new();
    loop {
        let message = wait_for(&mut viewers, Duration::from_secs(10), |m| {
            m["type"].as_str().is_some_and(|t| t.contains('.'))
        })
        .await;
        let kind = message["type"].as_str().unwrap_or_default().to_string();
        seen.push(kind.clone());
        if kind == "pair.deleted" {
            break;
        }
    }
    assert!(
        seen.iter().all(|k| k.starts_with("pair.")),
        "the viewer heard of {seen:?}"
    );
    app.cleanup().await;
}
