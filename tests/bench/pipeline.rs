//! `make bench-pipeline`: S sessions (default 20) over S pairs at a total
//! target rate for T seconds (default 30), through process-svc (a child
//! process, as in production), sms-svc and the sandbox; then waits for
//! every SMS event and prints the figures.
//!
//! `bench-pipeline [--rate MSG_PER_S] [--secs T] [--sessions S] [--with-consumers]`
//!
//! auth-svc, operator-svc, sms-svc, the gateway and the event consumer run
//! in this process; process-svc and the sandbox run apart, so their peak RSS
//! is their own. metrics-svc and notify-svc, which have cores of their own in
//! production, run (in this process) only with `--with-consumers`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use smsops_tests::bench::{arg, percentile};
use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use serde_json::json;
use smsops_tests::{Options, TestApp, amqp::EventQueue, host::peak_rss_mib, sandbox::Sandbox};

/// The allocator the services run with in production (see their `main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What the event consumer saw.
#[derive(Default)]
struct Seen {
    unique: HashSet<String>,
    duplicates: usize,
    accepted_at: HashMap<String, DateTime<Utc>>,
    /// Submit (the `sms.accepted` event's time) to `sms.delivered` received.
    lags_ms: Vec<f64>,
    last_at: Option<Instant>,
    by_status: std::collections::BTreeMap<String, usize>,
}

#[tokio::main]
async fn main() {
    let _tracing = smsops_common::telemetry::init("bench-pipeline");
    let host = smsops_tests::host::reference().unwrap();
    let rate = arg("--rate", 3000.0);
    let secs = arg("--secs", 30.0);
    let sessions = arg("--sessions", 20.0) as usize;
    let sandbox =
        Sandbox::start(json!({"default_rule": {"delivered": 1.0, "callback_latency_ms": 10}}));
    let consumers = std::env::args().any(|a| a == "--with-consumers");
    let app = TestApp::spawn_with(Options {
        twilio_base_url: sandbox.url.clone(),
        process_in_process: false,
        consumers,
        lease_ttl: Duration::from_secs(5),
        heartbeat: Duration::from_millis(500),
        ..Options::default()
    })
    .await;
    let replica = app.spawn_process_replica(app.process_addr, "bench");
    replica.ready(app.process_addr).await;
    let admin = app.admin_tokens().await.access;
    let mut pairs = Vec::new();
    for i in 0..sessions {
        let body = json!({"country": "GB", "operator": format!("Bench{i}")});
        pairs.push(
            app.post("/api/v1/country-operators", Some(&admin), body)
                .await
                .id(),
        );
    }
    let mut queue = EventQueue::bind(&app.exchange).await;
    let (done_tx, mut done_rx) = tokio::sync::watch::channel(usize::MAX);
    let consumer = tokio::spawn(async move {
        let mut seen = Seen::default();
        loop {
            let expected = *done_rx.borrow();
            if seen.unique.len() >= expected {
                return seen;
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
            let Some(event) = queue.next_before(deadline).await else {
                if expected != usize::MAX
                    && seen
                        .last_at
                        .is_some_and(|at| at.elapsed() > Duration::from_secs(60))
                {
                    return seen;
                }
                let _ = tokio::time::timeout(Duration::from_millis(10), done_rx.changed()).await;
                continue;
            };
            seen.last_at = Some(Instant::now());
            if !seen.unique.insert(event.message_id.clone()) {
                seen.duplicates += 1;
                continue;
            }
            *seen.by_status.entry(event.routing_key.clone()).or_default() += 1;
            let message = event.body["message_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            match event.body["status"].as_str() {
                Some("accepted") => {
                    let at = event.body["occurred_at"].as_str().unwrap_or_default();
                    if let Ok(at) = DateTime::parse_from_rfc3339(at) {
                        seen.accepted_at.insert(message, at.with_timezone(&Utc));
                    }
                }
                Some("delivered") => {
                    if let Some(at) = seen.accepted_at.remove(&message) {
                        seen.lags_ms.push(
                            (Utc::now() - at).num_microseconds().unwrap_or(0) as f64 / 1000.0,
                        );
                    }
                }
                _ => {}
            }
        }
    });

    let per_minute = rate * 60.0 / sessions as f64;
    println!(
        "bench-pipeline: {sessions} sessions at {per_minute:.0}/min each ({rate:.0} msg/s in all) for {secs:.0} s, consumers {}",
        if consumers { "running" } else { "off" }
    );
    let mut ids = Vec::new();
    let started = Instant::now();
    let window_from = Utc::now().timestamp_millis();
    for (i, pair) in pairs.iter().enumerate() {
        let body = json!({
            "country_operator_id": pair,
            "rate_per_minute": per_minute,
            "recipients": {"range": {"first": format!("+4477{:02}000000", i), "count": 1_000_000}},
            "template": "bench {n} for {pair}",
        });
        let reply = app.post("/api/v1/sessions", Some(&admin), body).await;
        assert_eq!(reply.status.as_u16(), 201, "{}", reply.body);
        ids.push(reply.id());
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let window_to = Utc::now().timestamp_millis();
    let stops = ids.iter().map(|id| {
        let (app, admin) = (&app, &admin);
        async move {
            app.post(
                &format!("/api/v1/sessions/{id}/stop"),
                Some(admin),
                json!({}),
            )
            .await
        }
    });
    let mut submitted = 0;
    for reply in futures::future::join_all(stops).await {
        submitted += reply.body["counters"]["submitted"].as_u64().unwrap_or(0);
    }
    let log = sandbox.twilio_messages().await;
    let messages = log["messages"].as_array().unwrap();
    let in_window = messages
        .iter()
        .filter(|m| (window_from..window_to).contains(&m["received_at_ms"].as_i64().unwrap_or(0)))
        .count();
    let expected = messages.len() * 4;
    let _ = done_tx.send(expected);
    let mut seen = consumer.await.unwrap();
    let all_secs = seen
        .last_at
        .map_or(0.0, |at| at.duration_since(started).as_secs_f64());
    seen.lags_ms.sort_by(f64::total_cmp);

    let window_secs = (window_to - window_from) as f64 / 1000.0;
    println!(
        "end to end:          {in_window} messages taken by the sandbox in {window_secs:.1} s = {:.0} msg/s",
        in_window as f64 / window_secs
    );
    println!(
        "sessions submitted:  {submitted}; sandbox received {} (duplicates {})",
        messages.len(),
        log["duplicates"]
    );
    println!(
        "events:              {} of {expected} confirmed and consumed, {} lost, {} redelivered; {:.0} events/s",
        seen.unique.len(),
        expected.saturating_sub(seen.unique.len()),
        seen.duplicates,
        seen.unique.len() as f64 / all_secs.max(0.001)
    );
    if seen.unique.len() < expected {
        println!(
            "                     by status: {:?} (each should be {})",
            seen.by_status,
            messages.len()
        );
    }
    println!(
        "submit -> delivered: p50 {:.0} ms, p99 {:.0} ms ({} messages)",
        percentile(&seen.lags_ms, 0.5),
        percentile(&seen.lags_ms, 0.99),
        seen.lags_ms.len()
    );
    println!(
        "peak RSS:            process-svc {:.0} MiB, sandbox {:.0} MiB, the rest (auth, operator, sms, gateway, consumer) {:.0} MiB",
        peak_rss_mib(replica.pid()),
        peak_rss_mib(sandbox.pid()),
        peak_rss_mib("self")
    );
    drop(replica);
    println!("host reference:      {host}");
    app.cleanup().await;
}
