//! `make bench-metrics`: publishes N synthetic SMS events (default 200,000)
//! while metrics-svc is stopped, starts it, and prints how fast it consumed
//! them and whether the final counts are exact.
//!
//! `bench-metrics [--events N] [--pairs P]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use serde_json::json;
use smsops_common::amqp::{Outgoing, Publisher};
use smsops_tests::amqp::{self, URL};

/// The allocator the services run with in production (see their `main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(run: &str, queue: &str, exchange: &str) -> metrics_svc::config::MetricsConfig {
    metrics_svc::config::MetricsConfig {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        mysql_url: "mysql://root@127.0.0.1:3306".into(),
        database: format!("bench_metrics_{run}"),
        amqp_url: URL.into(),
        exchange: exchange.into(),
        queue: queue.into(),
        prefetch: 1000,
        auth_url: "http://127.0.0.1:9".into(),
        tokens: smsops_common::config::TokenSettings {
            issuer: "smsops".into(),
            audience: "smsops-api".into(),
        },
        timeouts: Default::default(),
    }
}

async fn start(config: metrics_svc::config::MetricsConfig) -> tokio::sync::oneshot::Sender<()> {
    let app = metrics_svc::startup::Application::build(config)
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        app.run_until(async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    stop
}

#[tokio::main]
async fn main() {
    smsops_common::telemetry::init("bench-metrics");
    let total = arg("--events", 200_000);
    let pairs = arg("--pairs", 20).max(1);
    let run = uuid::Uuid::now_v7().simple().to_string();
    let exchange = format!("sms.events.bench.{run}");
    let queue = format!("metrics.bench.{run}");

    // Start once so its queue exists, then stop: the events wait in it.
    let stop = start(config(&run, &queue, &exchange)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop.send(());
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Half the events are `accepted`, half a final status (80/10/10).
    let mut expected = [0u64; 4]; // sent, delivered, undelivered, failed
    let publisher = Publisher::connect(URL, &exchange).await.unwrap();
    let published = Instant::now();
    let occurred_at = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
    for chunk in (0..total).collect::<Vec<_>>().chunks(2000) {
        let events: Vec<(String, String, Vec<u8>)> = chunk
            .iter()
            .map(|&i| {
                let status = if i % 2 == 0 {
                    "accepted"
                } else {
                    ["delivered"; 8]
                        .iter()
                        .chain(&["undelivered", "failed"])
                        .nth((i / 2) % 10)
                        .copied()
                        .unwrap()
                };
                let slot = match status {
                    "accepted" => 0,
                    "delivered" => 1,
                    "undelivered" => 2,
                    _ => 3,
                };
                expected[slot] += 1;
                let id = uuid::Uuid::now_v7().to_string();
                let pair = format!("bench-pair-{}", i % pairs);
                let body = json!({
                    "event_id": id, "type": format!("sms.{status}"), "occurred_at": occurred_at,
                    "message_id": format!("m{}", i / 2), "session_id": null,
                    "country_operator_id": pair, "country": "GB", "operator": format!("op{}", i % pairs),
                    "is_high_priority": false, "status": status, "error_code": null,
                    "provider": "twilio", "provider_sid": null,
                });
                (id, format!("sms.{status}"), serde_json::to_vec(&body).unwrap())
            })
            .collect();
        let outgoing: Vec<Outgoing<'_>> = events
            .iter()
            .map(|(id, key, payload)| Outgoing {
                event_id: id,
                routing_key: key,
                event_type: key,
                traceparent: "",
                payload,
            })
            .collect();
        publisher.publish_confirmed(&outgoing).await.unwrap();
    }
    publisher.close().await;
    let publish_secs = published.elapsed().as_secs_f64();

    let mysql =
        sqlx::MySqlPool::connect(&format!("mysql://root@127.0.0.1:3306/bench_metrics_{run}"))
            .await
            .unwrap();
    let started = Instant::now();
    let stop = start(config(&run, &queue, &exchange)).await;
    let counted = loop {
        let row: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM processed_events")
            .fetch_one(&mysql)
            .await
            .unwrap();
        if row.0 as usize >= total || started.elapsed() > Duration::from_secs(600) {
            break row.0;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let consume_secs = started.elapsed().as_secs_f64();
    let sums: (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT CAST(SUM(sms_sent) AS SIGNED), CAST(SUM(delivered) AS SIGNED), \
         CAST(SUM(undelivered) AS SIGNED), CAST(SUM(failed) AS SIGNED) FROM sms_metrics",
    )
    .fetch_one(&mysql)
    .await
    .unwrap();
    let _ = stop.send(());
    let exact = [sums.0, sums.1, sums.2, sums.3]
        .iter()
        .zip(expected)
        .all(|(got, want)| *got as u64 == want);

    println!("bench-metrics: {total} events over {pairs} pairs");
    println!(
        "published:   {total} in {publish_secs:.1} s = {:.0} events/s (confirmed)",
        total as f64 / publish_secs
    );
    println!(
        "consumed:    {counted} in {consume_secs:.1} s = {:.0} events/s",
        counted as f64 / consume_secs
    );
    println!(
        "counts:      sent {} delivered {} undelivered {} failed {} -> {}",
        sums.0,
        sums.1,
        sums.2,
        sums.3,
        if exact { "exact" } else { "NOT EXACT" }
    );
    println!("websocket:   not built yet");

    tokio::time::sleep(Duration::from_millis(500)).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS `bench_metrics_{run}`"))
        .execute(&mysql)
        .await
        .unwrap();
    mysql.close().await;
    amqp::delete_queue(&queue).await;
    amqp::delete_queue(&format!("{queue}.dlq")).await;
    amqp::delete_exchange(&format!("{queue}.dlq")).await;
    amqp::delete_exchange(&exchange).await;
}
