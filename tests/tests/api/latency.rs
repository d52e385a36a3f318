//! Delivery latency end to end: the sandbox holds one route's receipts, and
//! metrics-svc's percentiles, the series and notify-svc's slow_delivery
//! rule see it on that pair only.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::alerts::{app_with, new_pair, send_to, set_rules, telegram_with, wait_for_telegram};
use smsops_tests::{TestApp, sandbox::Sandbox};

/// Only slow_delivery, over 15 s: p95 above 2 s with at least 10 delivered.
fn slow_rules_only() -> Value {
    json!({
        "success_rate": {"enabled": false, "threshold": 0.5, "high_priority_threshold": 0.8,
                         "window_seconds": 60, "min_finished": 20, "hysteresis": 0.05},
        "failure_burst": {"enabled": false, "count": 1000, "window_seconds": 60},
        "session_failed": {"enabled": false},
        "receipt_gap": {"enabled": false, "threshold": 0.1, "window_seconds": 300,
                        "min_finished": 20, "hysteresis": 0.05},
        "slow_delivery": {"enabled": true, "threshold_seconds": 2.0, "window_seconds": 15,
                          "min_delivered": 10, "hysteresis_seconds": 0.5},
        "cooldown_seconds": 600
    })
}

fn numbers(prefix: &str, count: usize) -> Vec<String> {
    let seed = uuid::Uuid::new_v4().as_u128() % 1_000;
    (0..count)
        .map(|n| format!("{prefix}{seed:03}{n:03}"))
        .collect()
}

/// The pair's summary over the last 5 minutes once `delivered` of its
/// messages were timed to delivery.
async fn summary_once_timed(app: &TestApp, admin: &str, pair: &str, delivered: u64) -> Value {
    let started = Instant::now();
    loop {
        let reply = app.get("/api/v1/metrics/summary?window=5m", admin).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let item = reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["country_operator_id"] == pair)
            .cloned();
        if let Some(item) = item
            && item["to_delivered"]["count"].as_u64() == Some(delivered)
        {
            return item;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{pair} never had {delivered} timed: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowed_route_shows_in_its_percentiles_and_alerts_once_until_it_recovers() {
    let sandbox = Sandbox::start(json!({
        "default_rule": {"delivered": 1.0, "callback_latency_ms": 10}
    }));
    let app = app_with(&sandbox).await;
    let admin = app.admin_tokens().await.access;
    set_rules(&app, &admin, slow_rules_only()).await;
    sandbox
        .set_faults(json!({"receipt_delay_ms_by_prefix": {"+4477009": 3000}}))
        .await;
    let (slow, slow_operator) = new_pair(&app, &admin, false).await;
    let (fast, fast_operator) = new_pair(&app, &admin, false).await;
    send_to(&app, &admin, &slow, numbers("+4477009", 20)).await;
    send_to(&app, &admin, &fast, numbers("+4478009", 20)).await;

    let held = summary_once_timed(&app, &admin, &slow, 20).await;
    let p95 = held["to_delivered"]["p95_ms"].as_f64().unwrap();
    println!("held route: {}", held["to_delivered"]);
    assert!((2_700.0..=3_300.0).contains(&p95), "{held}");
    let free = summary_once_timed(&app, &admin, &fast, 20).await;
    println!("free route: {}", free["to_delivered"]);
    assert!(
        free["to_delivered"]["p95_ms"].as_f64().unwrap() < 1_000.0,
        "{free}"
    );
    assert_eq!(held["to_sent"]["count"], 20, "{held}");
    assert!(
        held["to_sent"]["p99_ms"].as_f64().unwrap() < 2_000.0,
        "{held}"
    );

    // The series has the same percentiles per bucket.
    let series = app
        .get(
            &format!("/api/v1/metrics/series?country_operator_id={slow}&bucket=1h"),
            &admin,
        )
        .await;
    let points = series.body["points"].as_array().unwrap();
    let timed: u64 = points
        .iter()
        .filter_map(|p| p["to_delivered"]["count"].as_u64())
        .sum();
    assert_eq!(timed, 20, "{}", series.body);
    assert!(
        points
            .iter()
            .all(|p| p["to_delivered"]["p50_ms"].as_f64().unwrap_or(3_000.0) >= 2_700.0),
        "{}",
        series.body
    );

    wait_for_telegram(
        &sandbox,
        &["Slow delivery", &slow_operator],
        1,
        Duration::from_secs(15),
    )
    .await;
    let open = app.get("/api/v1/alerts?state=open", &admin).await;
    let items = open.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", open.body);
    assert_eq!(items[0]["rule"], "slow_delivery");
    assert_eq!(items[0]["country_operator_id"], slow.as_str());

    // The route recovers: once the held receipts leave the 15 s window,
    // the fast ones after them resolve the alert.
    sandbox.set_faults(json!({})).await;
    // Ten more at a time, each round once the last is delivered and timed.
    let started = Instant::now();
    let mut delivered = 20;
    let resolved = loop {
        send_to(&app, &admin, &slow, numbers("+4477009", 10)).await;
        delivered += 10;
        summary_once_timed(&app, &admin, &slow, delivered).await;
        let resolved = telegram_with(&sandbox, &["Resolved", &slow_operator]).await;
        if !resolved.is_empty() || started.elapsed() > Duration::from_secs(40) {
            break resolved;
        }
    };
    assert_eq!(resolved.len(), 1, "{}", sandbox.telegram_messages().await);
    let text = resolved[0]["text"].as_str().unwrap();
    assert!(text.contains("delivery is fast again"), "{text}");
    assert_eq!(
        telegram_with(&sandbox, &["Slow delivery", &slow_operator])
            .await
            .len(),
        1
    );
    assert!(telegram_with(&sandbox, &[&fast_operator]).await.is_empty());
    let open = app.get("/api/v1/alerts?state=open", &admin).await;
    assert_eq!(open.body["items"], json!([]), "{}", open.body);
    app.cleanup().await;
}
