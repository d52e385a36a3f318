//! metrics-svc end to end: SMS events from sms-svc, counted exactly once in
//! MySQL, read through the gateway.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use smsops_proto::metrics::v1::{LiveRequest, metrics_service_client::MetricsServiceClient};
use smsops_tests::{
    Options, TestApp,
    amqp::{self, EventQueue},
    sandbox::Sandbox,
};

async fn app_with(sandbox: &Sandbox) -> TestApp {
    TestApp::spawn_with(Options {
        twilio_base_url: sandbox.url.clone(),
        ..Options::default()
    })
    .await
}

async fn new_pair(app: &TestApp, admin: &str) -> String {
    let operator = format!("op-{}", uuid::Uuid::new_v4().simple());
    let body = json!({"country": "GB", "operator": operator});
    let reply = app
        .post("/api/v1/country-operators", Some(admin), body)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.id()
}

/// Sends `count` messages for `pair` in one batch through sms-svc.
async fn send(app: &TestApp, admin: &str, pair: &str, count: usize) {
    let messages = smsops_tests::numbered_messages(pair, "metrics", count);
    smsops_tests::send_sms_batch(app.sms_addr, admin, messages).await;
}

fn authed<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_matches_the_sandboxs_exact_outcomes() {
    let sandbox = Sandbox::start(json!({"default_rule": {
        "delivered": 0.8, "undelivered": 0.1, "failed": 0.1, "callback_latency_ms": 10
    }}));
    let app = app_with(&sandbox).await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin).await;
    let mut live = MetricsServiceClient::connect(format!("http://{}", app.metrics_addr))
        .await
        .unwrap()
        .live(authed(&admin, LiveRequest {}))
        .await
        .unwrap()
        .into_inner();
    // The latest live totals of the pair, as they stream in.
    let (latest_tx, latest) = tokio::sync::watch::channel(None);
    let watched = pair.clone();
    tokio::spawn(async move {
        while let Ok(Some(update)) = live.message().await {
            if let Some(now) = update
                .pairs
                .into_iter()
                .find(|p| p.country_operator_id == watched)
            {
                let _ = latest_tx.send(Some(now));
            }
        }
    });
    send(&app, &admin, &pair, 200).await;
    let item = app.settled_summary(&admin, &pair, 200).await;
    // The live stream caught up with the same totals.
    let mut latest = latest;
    let caught_up = latest.wait_for(|now| {
        now.as_ref()
            .is_some_and(|p| p.delivered + p.undelivered + p.failed == 200)
    });
    let last_live = tokio::time::timeout(Duration::from_secs(2), caught_up)
        .await
        .expect("the live stream did not catch up")
        .unwrap()
        .clone()
        .unwrap();
    assert_eq!(last_live.delivered, item["delivered"].as_u64().unwrap());

    let log = sandbox.twilio_messages().await;
    let outcome = |name: &str| {
        log["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["outcome"] == name)
            .count() as u64
    };
    assert_eq!(item["sms_sent"], 200);
    assert_eq!(item["delivered"].as_u64().unwrap(), outcome("delivered"));
    assert_eq!(
        item["undelivered"].as_u64().unwrap(),
        outcome("undelivered")
    );
    assert_eq!(item["failed"].as_u64().unwrap(), outcome("failed"));
    let rate = outcome("delivered") as f64 / 200.0;
    assert!(
        (item["success_rate"].as_f64().unwrap() - rate).abs() < 1e-9,
        "{item}"
    );
    let top: Vec<(String, u64)> = item["top_errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["code"].as_str().unwrap().to_string(),
                e["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut want = vec![
        ("30003".to_string(), outcome("undelivered")),
        ("30008".to_string(), outcome("failed")),
    ];
    want.retain(|(_, n)| *n > 0);
    want.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    assert_eq!(top, want, "{item}");
    // The series adds up to the summary, per pair and over all pairs.
    for path in [
        format!("/api/v1/metrics/series?country_operator_id={pair}&bucket=1m"),
        "/api/v1/metrics/series?bucket=5m".to_string(),
    ] {
        let series = app.get(&path, &admin).await;
        assert_eq!(series.status, StatusCode::OK, "{}", series.body);
        let points = series.body["points"].as_array().unwrap();
        assert!(!points.is_empty());
        for key in ["sms_sent", "delivered", "undelivered", "failed"] {
            let sum: u64 = points.iter().map(|p| p[key].as_u64().unwrap()).sum();
            assert_eq!(sum, item[key].as_u64().unwrap(), "{key} in {path}");
        }
    }
    app.get("/api/v1/metrics/series?bucket=2m", &admin)
        .await
        .assert_error(400, "invalid_argument");
    app.get("/api/v1/metrics/series?since=yesterday", &admin)
        .await
        .assert_error(400, "invalid_argument");
    app.get("/api/v1/metrics/summary?window=1w", &admin)
        .await
        .assert_error(400, "invalid_argument");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_events_count_once_and_poison_goes_to_the_dead_letter_queue() {
    let sandbox = Sandbox::start_default();
    let mut app = app_with(&sandbox).await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin).await;
    let mut queue = EventQueue::bind(&app.exchange).await;
    send(&app, &admin, &pair, 30).await;
    let events = queue
        .collect_until(Duration::from_secs(20), |e| e.len() >= 120)
        .await;
    assert_eq!(events.len(), 120);
    let before = app.settled_summary(&admin, &pair, 30).await;
    assert_eq!(
        (before["sms_sent"].as_u64(), before["delivered"].as_u64()),
        (Some(30), Some(30))
    );

    // Every event again, and one that is not an event at all.
    amqp::publish_again(&app.exchange, &events).await;
    amqp::publish_raw(&app.exchange, "sms.delivered", b"{not json").await;
    let dead = format!("{}.dlq", app.metrics_queue);
    for _ in 0..100 {
        if amqp::queue_length(&dead).await == 1 && amqp::queue_length(&app.metrics_queue).await == 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        amqp::queue_length(&dead).await,
        1,
        "the poison message is not dead-lettered"
    );
    assert_eq!(app.pair_summary(&admin, &pair).await, before);

    // Killed and back: the events come once more and still count once.
    app.stop_metrics().await;
    amqp::publish_again(&app.exchange, &events).await;
    app.start_metrics().await;
    for _ in 0..100 {
        if amqp::queue_length(&app.metrics_queue).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.pair_summary(&admin, &pair).await, before);
    // And it still counts new ones.
    send(&app, &admin, &pair, 5).await;
    let after = app.settled_summary(&admin, &pair, 35).await;
    assert_eq!(after["sms_sent"], 35);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_session_messages_count_exactly_through_a_crash_and_duplicates() {
    let sandbox = Sandbox::start(json!({"default_rule": {
        "delivered": 0.8, "undelivered": 0.1, "failed": 0.1, "callback_latency_ms": 10
    }}));
    let mut app = app_with(&sandbox).await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin).await;
    let mut queue = EventQueue::bind(&app.exchange).await;
    let session = app
        .post(
            "/api/v1/sessions",
            Some(&admin),
            json!({
                "country_operator_id": pair,
                "rate_per_minute": 30000,
                "recipients": {"range": {"first": "+447700100000", "count": 1000}},
                "template": "metrics {n}",
                "limit": 1000
            }),
        )
        .await;
    assert_eq!(session.status, StatusCode::CREATED, "{}", session.body);

    // metrics-svc goes down mid-stream and comes back.
    let first = queue
        .collect_until(Duration::from_secs(30), |e| e.len() >= 400)
        .await;
    app.stop_metrics().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.start_metrics().await;

    // Four events a message: accepted, queued, sent and its final status.
    let mut events = first;
    let have = events.len();
    events.extend(
        queue
            .collect_until(Duration::from_secs(60), |e| e.len() + have >= 4000)
            .await,
    );
    assert_eq!(events.len(), 4000);
    let item = app.settled_summary(&admin, &pair, 1000).await;

    // Every event once more: nothing changes.
    amqp::publish_again(&app.exchange, &events).await;
    for _ in 0..100 {
        if amqp::queue_length(&app.metrics_queue).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.pair_summary(&admin, &pair).await, item);

    let log = sandbox.twilio_messages().await;
    assert_eq!(log["duplicates"], 0);
    let outcome = |name: &str| {
        log["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["outcome"] == name)
            .count() as u64
    };
    assert_eq!(item["sms_sent"], 1000);
    assert_eq!(item["delivered"].as_u64().unwrap(), outcome("delivered"));
    assert_eq!(
        item["undelivered"].as_u64().unwrap(),
        outcome("undelivered")
    );
    assert_eq!(item["failed"].as_u64().unwrap(), outcome("failed"));
    assert_eq!(
        item["success_rate"].as_f64().unwrap(),
        outcome("delivered") as f64 / 1000.0
    );
    let series = app
        .get(
            &format!("/api/v1/metrics/series?country_operator_id={pair}&bucket=1m"),
            &admin,
        )
        .await;
    for key in ["sms_sent", "delivered", "undelivered", "failed"] {
        let sum: u64 = series.body["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[key].as_u64().unwrap())
            .sum();
        assert_eq!(sum, item[key].as_u64().unwrap(), "{key}");
    }
    app.cleanup().await;
}

/// Before 2026-12-08 metrics-svc bound its queue to every status; `queued`
/// counts for nothing and cost a delivery and a dedupe row a message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_bound_to_every_status_keeps_only_what_is_counted() {
    let sandbox = Sandbox::start_default();
    let mut app = app_with(&sandbox).await;
    app.stop_metrics().await;
    amqp::bind_queue(&app.metrics_queue, &app.exchange, "sms.#").await;
    app.start_metrics().await;
    for _ in 0..100 {
        if amqp::consumers(&app.metrics_queue).await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(amqp::consumers(&app.metrics_queue).await, 1);

    let event = |status: &str| {
        let id = uuid::Uuid::now_v7().to_string();
        let body = json!({
            "event_id": id, "type": format!("sms.{status}"), "occurred_at": chrono::Utc::now(),
            "country_operator_id": "made-up-pair", "country": "GB", "operator": "Vodafone",
            "status": status,
        });
        (id, serde_json::to_vec(&body).unwrap())
    };
    let (queued, queued_body) = event("queued");
    let (accepted, accepted_body) = event("accepted");
    amqp::publish_raw(&app.exchange, "sms.queued", &queued_body).await;
    amqp::publish_raw(&app.exchange, "sms.accepted", &accepted_body).await;
    let db = sqlx::MySqlPool::connect(&format!("mysql://root@127.0.0.1:3306/{}", app.metrics_db))
        .await
        .unwrap();
    let counted = |id: String| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM processed_events WHERE event_id = ?")
                .bind(id)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    for _ in 0..100 {
        if counted(accepted.clone()).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        counted(accepted).await,
        1,
        "the accepted event was not counted"
    );
    // Confirmed before the accepted one was published: had the old binding
    // stayed, it would have been counted first or with it.
    assert_eq!(
        counted(queued).await,
        0,
        "the queued event reached metrics-svc"
    );
    db.close().await;
    app.cleanup().await;
}
