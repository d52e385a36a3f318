//! `make bench-rest`: N messages (default 20,000) sent as a client of the
//! REST API sends them, one `POST /api/v1/sms` each over C (default 50)
//! keep-alive connections, after a warm-up; waits until the sandbox's
//! Twilio holds every one, then until the pipeline is drained (every message
//! final, the outbox empty, metrics-svc's and notify-svc's queues empty),
//! and prints the figures and which processes the CPU went to.
//!
//! `bench-rest [--messages N] [--concurrency C] [--batch B] [--warmup W]
//! [--one-call-each]`
//!
//! `--batch B` posts B messages a request to `POST /api/v1/sms/batch`, C
//! (default 8) at a time.
//! `--one-call-each` runs the gateway with `SMSOPS_GATEWAY_BATCH_SENDS=false`:
//! each single send its own call to sms-svc, as before the gateway batched them.
//!
//! The stack runs as `make up` runs it: the gateway (a worker a core),
//! auth-svc, sms-svc, metrics-svc and notify-svc each from its own release
//! binary, the sandbox apart; operator-svc and process-svc, off the send
//! path, run in this process with the client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use smsops_tests::bench::{arg, percentile};
use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::{Value, json};
use smsops_tests::{Options, TestApp, amqp, host, sandbox::Sandbox};

fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What one run of requests came back with.
#[derive(Default)]
struct Sent {
    accepted: usize,
    /// Replies other than 202 (a batch's refused messages count one each),
    /// by status or error code.
    refused: std::collections::BTreeMap<String, usize>,
    /// One a request.
    latencies: Vec<Duration>,
}

/// Posts messages `first..first + count` over `concurrency` connections,
/// `batch` a request (0: one each to `POST /api/v1/sms`).
async fn send(
    app: &TestApp,
    client: &reqwest::Client,
    token: &str,
    pair: &str,
    (first, count): (usize, usize),
    concurrency: usize,
    batch: usize,
) -> Sent {
    let per_request = batch.max(1);
    let requests = count.div_ceil(per_request);
    let next = Arc::new(AtomicUsize::new(0));
    let url = if batch == 0 {
        app.url("/api/v1/sms")
    } else {
        app.url("/api/v1/sms/batch")
    };
    let workers = (0..concurrency.min(requests)).map(|_| {
        let (client, next, url) = (client.clone(), next.clone(), url.clone());
        let (token, pair) = (token.to_string(), pair.to_string());
        tokio::spawn(async move {
            let mut sent = Sent::default();
            loop {
                let request = next.fetch_add(1, Ordering::Relaxed);
                if request >= requests {
                    return sent;
                }
                let start = first + request * per_request;
                let end = (start + per_request).min(first + count);
                let message = |n: usize| {
                    json!({
                        "country_operator_id": pair,
                        "to": format!("+4477009{:05}", n % 100_000),
                        "body": format!("bench message {n}"),
                    })
                };
                let body = if batch == 0 {
                    message(start)
                } else {
                    json!({ "messages": (start..end).map(message).collect::<Vec<_>>() })
                };
                let at = Instant::now();
                let reply = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(serde_json::to_vec(&body).unwrap())
                    .send()
                    .await;
                let (status, bytes) = match reply {
                    Ok(reply) => {
                        let status = reply.status().as_u16();
                        (status, reply.bytes().await.unwrap_or_default())
                    }
                    Err(err) => {
                        *sent.refused.entry(format!("{err}")).or_default() += end - start;
                        continue;
                    }
                };
                sent.latencies.push(at.elapsed());
                match (status, batch) {
                    (202, 0) => sent.accepted += 1,
                    (202 | 200, _) => {
                        let reply: Value = serde_json::from_slice(&bytes).unwrap_or_default();
                        for result in reply["results"].as_array().into_iter().flatten() {
                            match result["error"]["code"].as_str() {
                                None => sent.accepted += 1,
                                Some(code) => *sent.refused.entry(code.into()).or_default() += 1,
                            }
                        }
                    }
                    (status, _) => {
                        *sent.refused.entry(status.to_string()).or_default() += end - start
                    }
                }
            }
        })
    });
    let mut all = Sent::default();
    for worker in futures::future::join_all(workers.collect::<Vec<_>>()).await {
        let sent = worker.unwrap();
        all.accepted += sent.accepted;
        for (why, n) in sent.refused {
            *all.refused.entry(why).or_default() += n;
        }
        all.latencies.extend(sent.latencies);
    }
    all.latencies.sort();
    all
}

/// Waits until the sandbox's Twilio holds `count` messages; false after 5 min.
async fn at_provider(sandbox: &Sandbox, count: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        if sandbox.twilio_stats().await["count"].as_u64().unwrap_or(0) >= count as u64 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Waits until every message is final, the outbox empty and both consumers'
/// queues empty; says what was left after 5 min.
async fn drained(app: &TestApp, mysql: &sqlx::MySqlPool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (unfinished, outbox): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM sms_messages \
                     WHERE status NOT IN ('delivered', 'undelivered', 'failed')), \
                    (SELECT COUNT(*) FROM sms_outbox)",
        )
        .fetch_one(mysql)
        .await
        .unwrap();
        let metrics = amqp::queue_length(&app.metrics_queue).await;
        let notify = amqp::queue_length(&app.notify_queue).await;
        if unfinished == 0 && outbox == 0 && metrics == 0 && notify == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{unfinished} messages not final, outbox {outbox}, queued for metrics-svc {metrics}, notify-svc {notify}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// MariaDB's own counters, for statements and commits per message.
const MYSQL_COUNTERS: [&str; 8] = [
    "Questions",
    "Com_commit",
    "Com_insert",
    "Com_update",
    "Com_delete",
    "Com_select",
    "Innodb_log_writes",
    "Innodb_data_fsyncs",
];

async fn mysql_counters(mysql: &sqlx::MySqlPool) -> Vec<u64> {
    let mut values = Vec::new();
    for name in MYSQL_COUNTERS {
        let value: Option<(String,)> = sqlx::query_as(
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = ?",
        )
        .bind(name.to_uppercase())
        .fetch_optional(mysql)
        .await
        .unwrap_or_default();
        values.push(value.and_then(|(v,)| v.parse().ok()).unwrap_or(0));
    }
    values
}

#[tokio::main]
async fn main() {
    let _tracing = smsops_common::telemetry::init("bench-rest");
    let reference = host::reference().unwrap();
    let total = arg("--messages", 20_000);
    let batch = arg("--batch", 0);
    // 50 batches of 100 in flight would be 5,000 messages waiting, past
    // the gateway's call timeout: batches go 8 at a time, as in bench-sms.
    let concurrency = arg("--concurrency", if batch == 0 { 50 } else { 8 }).max(1);
    let warmup = arg("--warmup", 2_000);
    let batch_sends = !std::env::args().any(|a| a == "--one-call-each");
    let as_operator = std::env::args().any(|a| a == "--operator");
    let sandbox =
        Sandbox::start(json!({"default_rule": {"delivered": 1.0, "callback_latency_ms": 10}}));
    let app = TestApp::spawn_with(Options {
        twilio_base_url: sandbox.url.clone(),
        gateway_apart: true,
        gateway_workers: 0,
        auth_apart: true,
        sms_apart: true,
        consumers: true,
        consumers_apart: true,
        batch_sends,
        ..Options::default()
    })
    .await;
    let admin = app.admin_tokens().await.access;
    // An operator with room to spare counts every send against its minute,
    // its day and the account's day, as a paying user's sends are.
    let token = if as_operator {
        app.operator_with_quota(json!({"per_minute": 100_000_000, "per_day": 1_000_000_000}))
            .await
            .1
    } else {
        admin.clone()
    };
    let pair = app
        .post(
            "/api/v1/country-operators",
            Some(&admin),
            json!({"country": "GB", "operator": "Bench"}),
        )
        .await
        .id();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let mysql = sqlx::MySqlPool::connect(&format!("mysql://root@127.0.0.1:3306/{}", app.sms_db))
        .await
        .unwrap();
    let how = if batch == 0 {
        "one a request to POST /api/v1/sms".to_string()
    } else {
        format!("{batch} a request to POST /api/v1/sms/batch")
    };
    println!(
        "bench-rest: {total} messages, {how}, {concurrency} connections, after {warmup} to warm up; consumers running; gateway batching {}",
        if batch_sends { "on" } else { "off" }
    );

    // Connections open, caches filled, then the sandbox's count from zero.
    let warm = send(
        &app,
        &client,
        &token,
        &pair,
        (0, warmup),
        concurrency,
        batch,
    )
    .await;
    assert!(
        at_provider(&sandbox, warm.accepted).await,
        "the warm-up never reached the sandbox"
    );
    drained(&app, &mysql).await.unwrap();
    sandbox.reset_twilio().await;

    let mysql_before = mysql_counters(&mysql).await;
    let cpu_before = host::cpu_by_process();
    let busy_before = host::busy_cpu();
    let (started, started_ms) = (Instant::now(), epoch_ms());
    let sent = send(
        &app,
        &client,
        &token,
        &pair,
        (warmup, total),
        concurrency,
        batch,
    )
    .await;
    let accept_secs = started.elapsed().as_secs_f64();
    let all_there = at_provider(&sandbox, sent.accepted).await;
    let busy_at_provider = host::busy_cpu().saturating_sub(busy_before);
    let left = drained(&app, &mysql).await;
    let drained_secs = started.elapsed().as_secs_f64();
    let busy = host::busy_cpu().saturating_sub(busy_before);
    let per_process = host::cpu_since(&cpu_before);
    let mysql_after = mysql_counters(&mysql).await;

    let twilio = sandbox.twilio_messages().await;
    let messages = twilio["messages"].as_array().cloned().unwrap_or_default();
    let last_ms = messages
        .iter()
        .filter_map(|m| m["received_at_ms"].as_i64())
        .max()
        .unwrap_or(started_ms);
    let provider_secs = (last_ms - started_ms).max(1) as f64 / 1000.0;

    println!(
        "accepted:            {} of {total} in {accept_secs:.2} s = {:.0} msg/s",
        sent.accepted,
        sent.accepted as f64 / accept_secs
    );
    if !sent.refused.is_empty() {
        println!("refused:             {:?}", sent.refused);
    }
    println!(
        "at the provider:     {} (duplicates {}) in {provider_secs:.2} s = {:.0} msg/s{}",
        messages.len(),
        twilio["duplicates"],
        messages.len() as f64 / provider_secs,
        if all_there { "" } else { " (gave up waiting)" }
    );
    println!(
        "request latency:     p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms ({} requests)",
        percentile(&sent.latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&sent.latencies, 0.99).as_secs_f64() * 1000.0,
        sent.latencies
            .last()
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1000.0,
        sent.latencies.len()
    );
    match &left {
        Ok(()) => println!(
            "drained:             {drained_secs:.2} s after the first request (all final, outbox and queues empty)"
        ),
        Err(left) => println!("not drained:         {left}"),
    }
    let per_message = |busy: Duration| busy.as_secs_f64() * 1000.0 / sent.accepted.max(1) as f64;
    println!(
        "machine CPU:         {:.2} ms per message until the provider had them all, {:.2} ms until drained ({:.1} s busy of {:.1} s on {} cores)",
        per_message(busy_at_provider),
        per_message(busy),
        busy.as_secs_f64(),
        drained_secs,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    println!(
        "CPU by process:      {} (ms per message)",
        host::per_message(&per_process, sent.accepted)
    );
    let per_message_counts: Vec<String> = MYSQL_COUNTERS
        .iter()
        .zip(mysql_after.iter().zip(&mysql_before))
        .map(|(name, (after, before))| {
            let n = after.saturating_sub(*before) as f64 / sent.accepted.max(1) as f64;
            format!("{} {n:.2}", name.to_lowercase())
        })
        .collect();
    println!(
        "MariaDB per message: {} (whole server)",
        per_message_counts.join(", ")
    );
    println!("host reference:      {reference}");
    mysql.close().await;
    app.cleanup().await;
}
