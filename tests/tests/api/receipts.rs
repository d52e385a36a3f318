//! Receipts that never come: sms-svc looks late messages up at the sandbox's
//! Twilio, moves them forward, counts the gap and alerts on it.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sms_svc::core::ReconcileConfig;
use smsops_tests::{Options, TestApp, sandbox::Sandbox};

async fn app_with(sandbox: &Sandbox, reconcile: ReconcileConfig) -> TestApp {
    TestApp::spawn_with(Options {
        twilio_base_url: sandbox.url.clone(),
        telegram_base_url: sandbox.url.clone(),
        reconcile,
        ..Options::default()
    })
    .await
}

async fn new_pair(app: &TestApp, admin: &str) -> String {
    let operator = format!("op-{}", uuid::Uuid::new_v4().simple());
    let body = json!({"country": "GB", "operator": operator, "is_high_priority": false});
    let reply = app
        .post("/api/v1/country-operators", Some(admin), body)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.id()
}

/// Only the receipt-gap rule, over a 10 s window.
async fn gap_rules_only(app: &TestApp, admin: &str) {
    let rules = json!({
        "success_rate": {"enabled": false, "threshold": 0.5, "high_priority_threshold": 0.8,
                         "window_seconds": 60, "min_finished": 20, "hysteresis": 0.05},
        "failure_burst": {"enabled": false, "count": 1000, "window_seconds": 60},
        "session_failed": {"enabled": false},
        "receipt_gap": {"enabled": true, "threshold": 0.1, "window_seconds": 10,
                        "min_finished": 20, "hysteresis": 0.05},
        "cooldown_seconds": 600
    });
    super::alerts::set_rules(app, admin, rules).await;
}

async fn send(app: &TestApp, admin: &str, pair: &str, label: &str, count: usize) {
    let messages = smsops_tests::numbered_messages(pair, label, count);
    for chunk in messages.chunks(100) {
        let answer = smsops_tests::send_sms_batch(app.sms_addr, admin, chunk.to_vec()).await;
        use smsops_proto::sms::v1::send_sms_result::Result as Sent;
        assert!(
            answer
                .results
                .iter()
                .all(|r| matches!(r.result, Some(Sent::Sms(_)))),
            "{answer:?}"
        );
    }
}

/// Each message's number, status and error code, from sms-svc's store.
async fn stored(app: &TestApp) -> Vec<(String, String, Option<String>)> {
    let pool = sqlx::MySqlPool::connect(&format!("mysql://root@127.0.0.1:3306/{}", app.sms_db))
        .await
        .unwrap();
    let rows = sqlx::query_as("SELECT to_number, status, error_code FROM sms_messages")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows
}

/// Waits until every one of `count` messages is final.
async fn all_final(
    app: &TestApp,
    count: usize,
    within: Duration,
) -> Vec<(String, String, Option<String>)> {
    let started = Instant::now();
    loop {
        let rows = stored(app).await;
        let open: Vec<_> = rows
            .iter()
            .filter(|(_, status, _)| status == "queued" || status == "sent" || status == "accepted")
            .collect();
        if rows.len() >= count && open.is_empty() {
            return rows;
        }
        assert!(
            started.elapsed() < within,
            "{} of {} messages still not final after {within:?}: {:?}",
            open.len(),
            rows.len(),
            open.iter().take(5).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn alerts(app: &TestApp, admin: &str, pair: &str) -> Vec<Value> {
    let reply = app.get("/api/v1/alerts?state=all", admin).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["rule"] == "receipt_gap" && a["country_operator_id"] == pair)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_receipts_are_reconciled_with_the_provider_and_alerted_on() {
    let sandbox = Sandbox::start(json!({"default_rule": {
        "delivered": 0.7, "undelivered": 0.2, "failed": 0.1, "callback_latency_ms": 10
    }}));
    let reconcile = ReconcileConfig {
        after: Duration::from_secs(2),
        give_up_after: Duration::from_secs(3600),
        rate_per_second: 100,
    };
    let app = app_with(&sandbox, reconcile).await;
    let admin = app.admin_tokens().await.access;
    gap_rules_only(&app, &admin).await;
    let pair = new_pair(&app, &admin).await;

    sandbox
        .set_faults(json!({"callback_drop_share": 0.3}))
        .await;
    send(&app, &admin, &pair, "receipts", 500).await;
    let rows = all_final(&app, 500, Duration::from_secs(60)).await;

    // Every status is the one the sandbox decided, callback or not.
    let log = sandbox.twilio_messages().await;
    let outcomes: HashMap<&str, (&str, Option<String>)> = log["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let code = m["error_code"].as_u64().map(|c| c.to_string());
            (
                m["to"].as_str().unwrap(),
                (m["outcome"].as_str().unwrap(), code),
            )
        })
        .collect();
    assert_eq!((rows.len(), outcomes.len()), (500, 500));
    for (to, status, code) in &rows {
        let (outcome, expected_code) = &outcomes[to.as_str()];
        assert_eq!((status.as_str(), code), (*outcome, expected_code), "{to}");
    }
    // Only the late ones were looked up: about the 30 % whose final
    // callback was dropped, never all 500.
    let dropped = log["callbacks_dropped"].as_u64().unwrap();
    let lookups = log["lookups"].as_u64().unwrap();
    assert!(
        dropped > 200 && dropped < 400,
        "{dropped} of 1,000 callbacks dropped"
    );
    assert!(
        lookups > 80 && lookups < 250,
        "{lookups} lookups for 500 messages"
    );
    // Counted once the round that made them ends, just after its commit.
    let started = Instant::now();
    while app
        .prometheus_sum("sms-svc", "smsops_sms_receipt_lookups_total")
        .await
        != lookups as f64
    {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "lookups not counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // metrics-svc counts exactly what the sandbox decided.
    let count = |outcome: &str| outcomes.values().filter(|(o, _)| *o == outcome).count() as u64;
    let item = app.settled_summary(&admin, &pair, 500).await;
    for outcome in ["delivered", "undelivered", "failed"] {
        assert_eq!(
            item[outcome].as_u64(),
            Some(count(outcome)),
            "{outcome}: {item}"
        );
    }

    // A third of the receipts missing opens the pair's receipt-gap alert.
    let started = Instant::now();
    while alerts(&app, &admin, &pair).await.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no receipt_gap alert"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let opened = alerts(&app, &admin, &pair).await;
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert_eq!(opened[0]["state"], "open");

    // Receipts come again: once the reconciled ones leave the window, it resolves.
    sandbox.set_faults(json!({})).await;
    let started = Instant::now();
    let mut round = 0;
    loop {
        let now = alerts(&app, &admin, &pair).await;
        assert_eq!(now.len(), 1, "one alert, never a second: {now:?}");
        if now[0]["state"] == "resolved" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the receipt_gap alert never resolved: {now:?}"
        );
        round += 1;
        send(&app, &admin, &pair, &format!("after {round}"), 30).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // Telegram allows a chat one message a second: the second may wait.
    let started = Instant::now();
    loop {
        let telegram = sandbox.telegram_messages().await;
        let texts: Vec<&str> = telegram["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["text"].as_str())
            .collect();
        let said = |words: &str| texts.iter().filter(|t| t.contains(words)).count();
        assert_eq!(said("Missing receipts"), 1, "{texts:?}");
        if said("receipts arrive again") == 1 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{texts:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_its_provider_no_longer_knows_ends_failed_at_the_last_deadline() {
    let sandbox =
        Sandbox::start(json!({"default_rule": {"delivered": 1.0, "callback_latency_ms": 10}}));
    let reconcile = ReconcileConfig {
        after: Duration::from_secs(1),
        give_up_after: Duration::from_secs(12),
        rate_per_second: 10,
    };
    let app = app_with(&sandbox, reconcile).await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin).await;
    sandbox
        .set_faults(json!({"callback_drop_share": 1.0, "lookup_unknown_share": 1.0}))
        .await;
    send(&app, &admin, &pair, "unknown", 5).await;

    // While they wait, the gauge counts them.
    let gap = || app.prometheus_sum("sms-svc", "smsops_sms_receipt_gap");
    let started = Instant::now();
    while gap().await < 5.0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no receipt gap of 5"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rows = all_final(&app, 5, Duration::from_secs(30)).await;
    for (to, status, code) in &rows {
        assert_eq!(
            (status.as_str(), code.as_deref()),
            ("failed", Some("receipt_unknown")),
            "{to}"
        );
    }
    // Looked up again and again with backoff, not once a round.
    let lookups = sandbox.twilio_messages().await["lookups"].as_u64().unwrap();
    assert!(
        (15..=35).contains(&lookups),
        "{lookups} lookups of 5 messages"
    );
    let started = Instant::now();
    while gap().await > 0.0 {
        assert!(started.elapsed() < Duration::from_secs(10), "the gap stays");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.cleanup().await;
}
