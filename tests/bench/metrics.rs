//! `make bench-metrics`: publishes N synthetic SMS events (default 200,000)
//! while metrics-svc is stopped, starts it, and prints how fast it consumed
//! them and whether the final counts are exact.
//!
//! Then it starts the whole stack, opens the gateway's WebSocket feed, and
//! publishes events at a steady rate to print how long each took from
//! publish to the socket.
//!
//! `bench-metrics [--events N] [--pairs P] [--prefetch F] [--live-events N] [--live-rate R]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use smsops_tests::bench::arg;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use serde_json::json;
use smsops_common::amqp::{Outgoing, Publisher};
use smsops_tests::amqp::{self, URL};

/// The allocator the services run with in production (see their `main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn config(run: &str, queue: &str, exchange: &str) -> metrics_svc::config::MetricsConfig {
    metrics_svc::config::MetricsConfig {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        prometheus_addr: "127.0.0.1:0".parse().unwrap(),
        mysql_url: "mysql://root@127.0.0.1:3306".into(),
        database: format!("bench_metrics_{run}"),
        amqp_url: URL.into(),
        exchange: exchange.into(),
        session_exchange: format!("{exchange}.sessions"),
        changes_exchange: format!("{exchange}.changes"),
        queue: queue.into(),
        prefetch: arg("--prefetch", 3000) as u16,
        auth_url: "http://127.0.0.1:9".into(),
        tokens: smsops_common::config::TokenSettings {
            issuer: "smsops".into(),
            audience: "smsops-api".into(),
        },
        timeouts: Default::default(),
        dedupe_keep: std::time::Duration::from_secs(3 * 86_400),
        metrics_keep: std::time::Duration::from_secs(400 * 86_400),
        retention_every: std::time::Duration::from_secs(60),
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
    let _tracing = smsops_common::telemetry::init("bench-metrics");
    let host = smsops_tests::host::reference().unwrap();
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
    websocket_latency(arg("--live-events", 5_000), arg("--live-rate", 1_000)).await;
    println!("host reference: {host}");

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
    amqp::delete_exchange(&format!("{exchange}.sessions")).await;
}

/// Publishes `count` events at `rate` a second through the whole stack and
/// prints publish → WebSocket latency.
async fn websocket_latency(count: usize, rate: usize) {
    use futures::StreamExt;
    use std::collections::HashMap;
    use tokio_tungstenite::tungstenite::Message;

    let app = smsops_tests::TestApp::spawn().await;
    let token = app.admin_tokens().await.access;
    let url = format!(
        "{}/api/v1/live?token={token}",
        app.base_url.replace("http://", "ws://")
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    // The feed's queue comes up once a watcher is there; the socket says when.
    loop {
        let text = match socket.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            other => panic!("the socket ended before it followed the events: {other:?}"),
        };
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        if value["type"] == "following" {
            assert_eq!(value["events"], true, "{value}");
            break;
        }
    }
    let sent: std::sync::Arc<std::sync::Mutex<HashMap<String, Instant>>> = Default::default();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<(String, Duration)>();
    let reader_sent = sent.clone();
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            let Some(id) = value["event"]["event_id"].as_str() else {
                continue;
            };
            let at = reader_sent.lock().unwrap().get(id).copied();
            if let Some(at) = at {
                let _ = done_tx.send((id.to_string(), at.elapsed()));
            }
        }
    });
    let publisher = Publisher::connect(URL, &app.exchange).await.unwrap();
    let event = |i: usize| {
        let id = uuid::Uuid::now_v7().to_string();
        let body = json!({
            "event_id": id, "type": "sms.delivered", "occurred_at": Utc::now(),
            "message_id": format!("live{i}"), "session_id": null,
            "country_operator_id": format!("live-pair-{}", i % 20), "country": "GB",
            "operator": "Vodafone", "is_high_priority": false, "status": "delivered",
            "error_code": null, "provider": "twilio", "provider_sid": null,
        });
        (id, serde_json::to_vec(&body).unwrap())
    };

    let every = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let started = tokio::time::Instant::now();
    let mut confirms = Vec::new();
    for i in 0..count {
        tokio::time::sleep_until(started + every * i as u32).await;
        let (id, payload) = event(i);
        sent.lock().unwrap().insert(id.clone(), Instant::now());
        let outgoing = Outgoing {
            event_id: &id,
            routing_key: "sms.delivered",
            event_type: "sms.delivered",
            traceparent: "",
            payload: &payload,
        };
        confirms.push(publisher.publish(&[outgoing]).await.unwrap());
    }
    for confirm in confirms {
        confirm.confirmed().await.unwrap();
    }
    let mut latencies = Vec::with_capacity(count);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while latencies.len() < count {
        match tokio::time::timeout_at(deadline, done_rx.recv()).await {
            Ok(Some((_, latency))) => latencies.push(latency),
            _ => break,
        }
    }
    publisher.close().await;
    reader.abort();
    latencies.sort();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map(|d| format!("{:.1} ms", d.as_secs_f64() * 1000.0))
            .unwrap_or_else(|| "n/a".into())
    };
    println!(
        "websocket:   {} of {count} events at {rate}/s reached the socket; publish -> socket p50 {} p99 {} max {}",
        latencies.len(),
        pick(0.50),
        pick(0.99),
        pick(1.0)
    );
    app.cleanup().await;
}
