//! Retention with horizons of seconds: what is past its horizon goes, in
//! batches, while the counts kept stay exact.

use std::time::{Duration, Instant};

use serde_json::json;
use smsops_tests::{Options, TestApp, amqp, sandbox::Sandbox};

async fn rows(database: &str, table: &str) -> i64 {
    let pool = sqlx::MySqlPool::connect(&format!("mysql://root@127.0.0.1:3306/{database}"))
        .await
        .unwrap();
    let (count,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM `{table}`"))
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    count
}

/// Waits until `table` of `database` is empty.
async fn emptied(database: &str, table: &str) {
    let started = Instant::now();
    loop {
        let left = rows(database, table).await;
        if left == 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{left} rows left in {table}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_past_their_horizon_go_and_the_counts_stay_exact() {
    let sandbox = Sandbox::start(json!({"default_rule": {
        "delivered": 0.8, "undelivered": 0.2, "callback_latency_ms": 10
    }}));
    let app = TestApp::spawn_with(Options {
        twilio_base_url: sandbox.url.clone(),
        dedupe_keep: Duration::from_secs(5),
        messages_keep: Duration::from_secs(5),
        retention_every: Duration::from_secs(1),
        ..Options::default()
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
    let mut published = amqp::EventQueue::bind(&app.exchange).await;
    let messages = smsops_tests::numbered_messages(&pair, "retention", 200);
    for chunk in messages.chunks(100) {
        smsops_tests::send_sms_batch(app.sms_addr, &admin, chunk.to_vec()).await;
    }
    let counted = app.settled_summary(&admin, &pair, 200).await;

    // A redelivery inside the dedupe horizon is recognised, not counted.
    let finals = published
        .collect_until(Duration::from_secs(10), |events| {
            events
                .iter()
                .filter(|e| e.routing_key == "sms.delivered")
                .count()
                >= 20
        })
        .await;
    let again: Vec<_> = finals
        .into_iter()
        .filter(|e| e.routing_key == "sms.delivered")
        .take(20)
        .collect();
    amqp::publish_again(&app.exchange, &again).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.pair_summary(&admin, &pair).await, counted);

    // Past the horizons: no event ids, no messages or history, no outbox.
    emptied(&app.metrics_db, "processed_events").await;
    emptied(&app.notify_db, "processed_events").await;
    for table in ["sms_messages", "sms_status_history", "sms_outbox"] {
        emptied(&app.sms_db, table).await;
    }
    // The metric rows are kept, and so the counts.
    assert_eq!(app.pair_summary(&admin, &pair).await, counted);
    let pruned = app
        .prometheus_sum("metrics-svc", "smsops_rows_pruned_total")
        .await;
    assert!(
        pruned >= 600.0,
        "{pruned} event ids pruned for 200 messages"
    );
    assert_eq!(
        app.prometheus_sum("sms-svc", "smsops_rows_pruned_total")
            .await,
        200.0
    );
    let exported = reqwest::get(format!("http://{}/metrics", app.prometheus["metrics-svc"]))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for table in ["processed_events", "sms_metrics", "sms_error_counts"] {
        let label = format!("table=\"{table}\"}}");
        let gauge = exported
            .lines()
            .find(|line| line.starts_with("smsops_table_rows{") && line.contains(&label));
        assert!(gauge.is_some(), "no table_rows of {table} in {exported}");
    }
    app.cleanup().await;
}
