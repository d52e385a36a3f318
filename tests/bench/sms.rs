//! `make bench-sms`: N messages (default 20,000) through sms-svc's batch API
//! with C batches in flight, against the sandbox; waits until every event of
//! every message is on RabbitMQ, then prints the figures.
//!
//! `bench-sms [--messages N] [--concurrency C] [--batch B] [--with-consumers]
//! [--sms-in-process] [--traces] [--smpp | --route [--failover | --health]]`
//!
//! `--smpp` sends through the sandbox's SMSC alone. `--route` runs two
//! accounts, `twilio` and `smsc`, and sends on a pair routed to both at one
//! priority, half each by weight; with `--failover` the route is the SMSC
//! first and Twilio second, and a third of the way in the SMSC unbinds and
//! refuses binds until the last batch is sent: the time from then until
//! every batch goes at least 95 % to Twilio is printed. With `--health`
//! (consumers on, 60,000 messages unless told) the SMSC stays bound but a
//! third of the way in delivers only 10 %: notify-svc's route_health rule
//! (a 10 s window) moves the pair, and the time from the fault until the
//! next ten batches are at least 95 % at Twilio is printed.
//!
//! `--traces` runs four rounds, A B A B: sms-svc with traces off, then
//! exporting over OTLP to a receiver in this process with 10 % of traces
//! sampled (`parentbased_traceidratio`, 0.1), and prints them side by side.
//!
//! metrics-svc and notify-svc consume the events in production on cores of
//! their own; here they would share the two being measured, so they run only
//! with `--with-consumers`.
//!
//! sms-svc runs from its own release binary as a child process, as in
//! production, so its own peak RSS can be printed; the other smsops services
//! run in this process (the sandbox apart). `--sms-in-process` runs sms-svc
//! in this process too (measured: the same msg/s either way).

#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The allocator the services run with in production (see their `main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use smsops_tests::bench::{arg, percentile};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::json;
use smsops_proto::sms::v1::{
    SendSmsBatchRequest, SendSmsRequest, send_sms_result, sms_service_client::SmsServiceClient,
};
use smsops_tests::{
    Options, TestApp, amqp::EventQueue, host::peak_rss_mib, otlp::Receiver, sandbox::Sandbox,
};
use tokio::sync::Semaphore;

#[tokio::main]
async fn main() {
    // `make bench-sms` sets SMSOPS_LOG=warn: a lost event must show why.
    let _tracing = smsops_common::telemetry::init("bench-sms");
    let host = smsops_tests::host::reference().unwrap();
    if !std::env::args().any(|a| a == "--traces") {
        round(None).await;
        println!("host reference:      {host}");
        return;
    }
    let receiver = Receiver::counting().await;
    let mut rates = [Vec::new(), Vec::new()];
    for traced in [false, true, false, true] {
        println!();
        let rate = round(traced.then_some(&receiver)).await;
        rates[usize::from(traced)].push(rate);
    }
    let mean = |rates: &[f64]| rates.iter().sum::<f64>() / rates.len() as f64;
    let (off, on) = (mean(&rates[0]), mean(&rates[1]));
    let rounded = |rates: &[f64]| rates.iter().map(|r| r.round()).collect::<Vec<_>>();
    println!();
    println!(
        "traces off:          {:?} msg/s, mean {off:.0}",
        rounded(&rates[0])
    );
    println!(
        "traces on (10 %):    {:?} msg/s, mean {on:.0}",
        rounded(&rates[1])
    );
    println!(
        "with traces:         {:+.1} % msg/s; {} spans received",
        (on / off - 1.0) * 100.0,
        receiver.count()
    );
    println!("host reference:      {host}");
}

/// One run on a fresh stack; `traces`: sms-svc exports to it. Prints its
/// figures and returns the accepted msg/s.
async fn round(traces: Option<&Receiver>) -> f64 {
    let health = std::env::args().any(|a| a == "--health");
    let total = arg("--messages", if health { 60_000 } else { 20_000 });
    let concurrency = arg("--concurrency", 8);
    let batch = arg("--batch", 100).max(1);
    let sandbox =
        Sandbox::start(json!({"default_rule": {"delivered": 1.0, "callback_latency_ms": 10}}));
    let consumers = health || std::env::args().any(|a| a == "--with-consumers");
    let sms_apart = !std::env::args().any(|a| a == "--sms-in-process");
    // Over SMPP to the sandbox's SMSC instead of its Twilio.
    let smpp = std::env::args().any(|a| a == "--smpp");
    let failover = std::env::args().any(|a| a == "--failover");
    let routed = failover || health || std::env::args().any(|a| a == "--route");
    let child_env = traces.map_or_else(Vec::new, |receiver| {
        vec![
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".to_string(),
                receiver.endpoint(),
            ),
            (
                "OTEL_TRACES_SAMPLER".into(),
                "parentbased_traceidratio".into(),
            ),
            ("OTEL_TRACES_SAMPLER_ARG".into(), "0.1".into()),
        ]
    });
    let options = Options {
        twilio_base_url: sandbox.url.clone(),
        consumers,
        sms_apart,
        provider_concurrency: arg("--provider-concurrency", 64),
        smpp_addr: (smpp || routed).then(|| sandbox.smsc_addr.clone()),
        twilio_beside_smpp: routed,
        child_env,
        ..Options::default()
    };
    let app = TestApp::spawn_with(options).await;
    let admin = app.admin_tokens().await.access;
    let pair = app
        .post(
            "/api/v1/country-operators",
            Some(&admin),
            json!({"country": "GB", "operator": "Bench"}),
        )
        .await
        .id();
    if routed {
        let route = if failover || health {
            json!([{"provider": "smsc"}, {"provider": "twilio", "priority": 1}])
        } else {
            json!([{"provider": "smsc", "weight": 50}, {"provider": "twilio", "weight": 50}])
        };
        let path = format!("/api/v1/country-operators/{pair}");
        let reply = app
            .call(
                reqwest::Method::PATCH,
                &path,
                Some(&admin),
                Some(json!({ "route": route })),
            )
            .await;
        assert!(reply.status.is_success(), "{}", reply.body);
        while sandbox.smsc_messages().await["bound"] != 1 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    if health {
        let mut rules = app.get("/api/v1/alerts/rules", &admin).await.body;
        rules["route_health"]["window_seconds"] = json!(10);
        let reply = app
            .call(
                reqwest::Method::PUT,
                "/api/v1/alerts/rules",
                Some(&admin),
                Some(rules),
            )
            .await;
        assert!(reply.status.is_success(), "{}", reply.body);
    }
    let tally = EventQueue::tally(&app.exchange).await;
    let client = SmsServiceClient::connect(format!("http://{}", app.sms_addr))
        .await
        .unwrap();
    let token: tonic::metadata::MetadataValue<_> = format!("Bearer {admin}").parse().unwrap();

    println!(
        "bench-sms: {total} messages, batches of {batch}, {concurrency} in flight, provider {}, consumers {}, sms-svc {}, traces {}",
        match (smpp, routed, failover) {
            (true, _, _) => "smpp",
            (_, true, _) if health => "route smsc, then twilio (delivery health)",
            (_, true, false) => "route smsc 50 % + twilio 50 %",
            (_, true, true) => "route smsc, then twilio (failover)",
            _ => "twilio",
        },
        if consumers { "running" } else { "off" },
        if sms_apart {
            "apart"
        } else {
            "in this process"
        },
        if traces.is_some() { "on (10 %)" } else { "off" }
    );
    let limit = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let busy_before = smsops_tests::host::busy_cpu();
    let cpu_before = smsops_tests::host::cpu_by_process();
    let mut tasks = Vec::new();
    let mut went_away = None;
    for first in (0..total).step_by(batch) {
        let permit = limit.clone().acquire_owned().await.unwrap();
        if (failover || health) && went_away.is_none() && first >= total / 3 {
            if health {
                let share = json!({"+44": 0.1});
                sandbox
                    .set_faults(json!({"smsc_delivered_share_by_prefix": share}))
                    .await;
            } else {
                sandbox.set_faults(json!({"smsc_refuse_binds": true})).await;
                sandbox.smsc_unbind().await;
            }
            went_away = Some(started.elapsed());
        }
        let (mut client, token, pair) = (client.clone(), token.clone(), pair.clone());
        tasks.push(tokio::spawn(async move {
            let messages = (first..(first + batch).min(total))
                .map(|n| SendSmsRequest {
                    country_operator_id: pair.clone(),
                    to: format!("+4477009{:05}", n % 100_000),
                    body: format!("bench message {n}"),
                    idempotency_key: String::new(),
                    session_id: String::new(),
                    ..Default::default()
                })
                .collect();
            let mut request = tonic::Request::new(SendSmsBatchRequest { messages });
            request.metadata_mut().insert("authorization", token);
            let at = Instant::now();
            let begun = at - started;
            let reply = client.send_sms_batch(request).await.unwrap().into_inner();
            drop(permit);
            // A message Twilio took has four events (accepted, queued,
            // sent, delivered), one an SMSC took three (its receipt is the
            // final status); one that failed at once has two.
            let (mut ok, mut events, mut to_twilio) = (0, 0, 0);
            for result in &reply.results {
                if let Some(send_sms_result::Result::Sms(sms)) = &result.result {
                    ok += 1;
                    let taken = if sms.provider == "twilio" { 4 } else { 3 };
                    to_twilio += usize::from(sms.provider == "twilio");
                    events += if sms.status == "failed" { 2 } else { taken };
                }
            }
            let share = to_twilio as f64 / reply.results.len().max(1) as f64;
            (
                ok,
                events,
                reply.results.len(),
                at.elapsed(),
                (begun, share),
            )
        }));
    }
    let (mut accepted, mut expected_events) = (0, 0);
    let mut latencies = Vec::new();
    let mut shares = Vec::new();
    for task in tasks {
        let (ok, events, n, latency, share) = task.await.unwrap();
        accepted += ok;
        expected_events += events;
        // A batch's latency is each of its messages' latency.
        latencies.extend(std::iter::repeat_n(latency, n));
        shares.push(share);
    }
    let send_secs = started.elapsed().as_secs_f64();
    if let Some(away) = went_away {
        // Receipts of what the SMSC took wait for its next bind.
        sandbox.set_faults(json!({})).await;
        shares.sort_by_key(|share| share.0);
        let after: Vec<&(Duration, f64)> = shares.iter().filter(|(at, _)| *at >= away).collect();
        let moved = if health {
            // Probes keep a few in each batch at the SMSC: the first batch
            // whose next ten went ≥ 95 % to Twilio together.
            after
                .windows(10)
                .position(|ten| ten.iter().map(|(_, share)| share).sum::<f64>() >= 9.5)
                .and_then(|at| after.get(at))
        } else {
            // The first batch from which on every one went ≥ 95 % to Twilio.
            after
                .iter()
                .rposition(|(_, share)| *share < 0.95)
                .map_or(after.first(), |last_short| after.get(last_short + 1))
        };
        let what = if health {
            "stopped delivering"
        } else {
            "went away"
        };
        match moved {
            Some((at, _)) => println!(
                "failover:            95 % of new sends at twilio {:.0} ms after the SMSC {what} ({} batches after it)",
                (*at - away).as_secs_f64() * 1000.0,
                after.len()
            ),
            None => println!("failover:            never reached 95 % at twilio"),
        }
    }
    // Done once every event is in the test queue and the relay has had
    // them all confirmed (it empties the outbox only then). Callbacks can
    // cross (a `delivered` before its `sent` leaves no `sent` event), so
    // fewer events than expected may be all there is: done also when every
    // message is final and the outbox is empty.
    let mysql = sqlx::MySqlPool::connect(&format!("mysql://root@127.0.0.1:3306/{}", app.sms_db))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut checked = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let all_in = tally.count() >= expected_events;
        if !all_in && checked.elapsed() < Duration::from_secs(1) {
            continue;
        }
        checked = Instant::now();
        let (unfinished, waiting): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM sms_messages \
                     WHERE status NOT IN ('delivered', 'undelivered', 'failed')), \
                    (SELECT COUNT(*) FROM sms_outbox)",
        )
        .fetch_one(&mysql)
        .await
        .unwrap();
        if waiting == 0 && (all_in || unfinished == 0) {
            break;
        }
    }
    if Instant::now() >= deadline {
        // Say where the missing events are stuck, to be found next time.
        let statuses: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM sms_messages GROUP BY status")
                .fetch_all(&mysql)
                .await
                .unwrap();
        let (waiting,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sms_outbox")
            .fetch_one(&mysql)
            .await
            .unwrap();
        eprintln!("gave up waiting: messages by status {statuses:?}, outbox {waiting}");
    }
    mysql.close().await;
    let all_secs = started.elapsed().as_secs_f64();
    let busy = smsops_tests::host::busy_cpu().saturating_sub(busy_before);
    let per_process = smsops_tests::host::cpu_since(&cpu_before);
    // Deliveries trail the confirms by moments; none is expected later.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let events = tally.finish();
    let queued = events.len();
    let unique: std::collections::HashSet<&str> = events.iter().map(String::as_str).collect();
    latencies.sort();
    let received = if smpp || routed {
        let smsc = sandbox.smsc_messages().await;
        println!(
            "smsc receipts sent:  {} in {all_secs:.1} s = {:.0} receipts/s ({} throttled)",
            smsc["receipts_sent"],
            smsc["receipts_sent"].as_f64().unwrap_or(0.0) / all_secs,
            smsc["throttled"]
        );
        if routed {
            let twilio = sandbox.twilio_messages().await;
            println!(
                "split:               smsc {} parts, twilio {} messages (duplicates {})",
                smsc["count"], twilio["count"], twilio["duplicates"]
            );
            let count = smsc["count"].as_u64().unwrap_or(0) + twilio["count"].as_u64().unwrap_or(0);
            json!({"count": count, "duplicates": twilio["duplicates"]})
        } else {
            json!({"count": smsc["count"], "duplicates": "n/a"})
        }
    } else {
        sandbox.twilio_messages().await
    };

    println!(
        "accepted:            {accepted} of {total} in {send_secs:.1} s = {:.0} msg/s",
        accepted as f64 / send_secs
    );
    println!(
        "sandbox received:    {} (duplicates {})",
        received["count"], received["duplicates"]
    );
    println!(
        "events confirmed:    {queued} of {expected_events} in {all_secs:.1} s = {:.0} events/s",
        queued as f64 / all_secs
    );
    println!(
        "events read back:    {} ({} distinct event ids)",
        events.len(),
        unique.len()
    );
    println!(
        "SendSms latency:     p50 {:?}  p99 {:?} (per batch of {batch})",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    match &app.sms_process {
        Some(sms) => println!(
            "peak RSS:            sms-svc {:.0} MiB; the other services in this process {:.0} MiB",
            sms.peak_rss_mib(),
            peak_rss_mib("self")
        ),
        None => println!(
            "peak RSS:            {:.0} MiB (all services in this process)",
            peak_rss_mib("self")
        ),
    }
    println!(
        "machine CPU busy:    {:.1} s over {all_secs:.1} s = {:.2} ms per message (every process)",
        busy.as_secs_f64(),
        busy.as_secs_f64() * 1000.0 / accepted.max(1) as f64
    );
    println!(
        "CPU by process:      {} (ms per message)",
        smsops_tests::host::per_message(&per_process, accepted)
    );
    app.cleanup().await;
    accepted as f64 / send_secs
}
