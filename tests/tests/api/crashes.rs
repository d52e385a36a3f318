//! Every service killed (SIGKILL), or stopped (SIGTERM), in the middle of a
//! 2,000-message session, each in turn, as child processes from their own
//! binaries: after restarts, no number sent twice, none skipped, metrics
//! exact, the alert raised once; a stopped service exits within its grace.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sms_svc::core::ReconcileConfig;
use smsops_tests::{Options, TestApp, sandbox::Sandbox};

use crate::sessions::{new_pair, received, start, wait_received};

const MESSAGES: usize = 2000;
/// Kubernetes' default terminationGracePeriodSeconds is 30; ours is 10.
const GRACE: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Debug)]
enum Going {
    /// SIGKILL: nothing released, saved or acked.
    Killed,
    /// SIGTERM: it must finish or hand back what it holds, and exit in time.
    Stopped,
}

/// Takes sms-svc, metrics-svc or notify-svc down the way asked.
fn take_down(app: &mut TestApp, service: &str, going: Going) {
    let exited = match (going, service) {
        (Going::Killed, "sms-svc") => return app.kill_sms(),
        (Going::Killed, "metrics-svc") => return app.kill_metrics(),
        (Going::Killed, _) => return app.kill_notify(),
        (Going::Stopped, "sms-svc") => app.terminate_sms(GRACE),
        (Going::Stopped, "metrics-svc") => app.terminate_metrics(GRACE),
        (Going::Stopped, _) => app.terminate_notify(GRACE),
    };
    let took = exited.unwrap_or_else(|| panic!("{service} did not exit within {GRACE:?}"));
    eprintln!("crashes: {service} exited {took:?} after SIGTERM");
}

/// Each message of sms-svc's store: its number's sequence, status, error
/// code, and for the stale sweep's `provider_uncertain`, true.
async fn stored(app: &TestApp) -> Vec<(u64, String, Option<String>, bool)> {
    let url = format!("mysql://root@127.0.0.1:3306/{}", app.sms_db);
    let pool = sqlx::MySqlPool::connect(&url).await.unwrap();
    let rows: Vec<(String, String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT to_number, status, error_code, error_message FROM sms_messages")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    rows.into_iter()
        .map(|(to, status, code, message)| {
            let seq = to.trim_start_matches("+447700").parse::<u64>().unwrap() - 900_000;
            let swept = message.is_some_and(|m| m.starts_with("no provider answer was recorded"));
            (seq, status, code, swept)
        })
        .collect()
}

async fn session(app: &TestApp, admin: &str, id: &str) -> Value {
    app.get(&format!("/api/v1/sessions/{id}"), admin).await.body
}

/// Waits until `count` more numbers reached the sandbox.
async fn sends_on(sandbox: &Sandbox, count: usize) {
    let before = received(sandbox, "crash").await.0.len();
    wait_received(sandbox, "crash", "sending on", |seen| {
        seen.len() >= (before + count).min(MESSAGES)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_killed_mid_session_loses_and_repeats_nothing() {
    each_service_going_mid_session(Going::Killed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_stopped_mid_session_exits_in_time_and_loses_nothing() {
    each_service_going_mid_session(Going::Stopped).await;
}

async fn each_service_going_mid_session(going: Going) {
    // The last hundred numbers are undelivered: a failure burst to alert on.
    let sandbox = Sandbox::start(json!({
        "rules": [{"prefix": "+4477009019", "delivered": 0.0, "undelivered": 1.0,
                   "undelivered_codes": [30003], "callback_latency_ms": 20}],
        "default_rule": {"delivered": 1.0, "callback_latency_ms": 20}
    }));
    let mut app = TestApp::spawn_with(Options {
        twilio_base_url: sandbox.url.clone(),
        telegram_base_url: sandbox.url.clone(),
        sms_apart: true,
        consumers_apart: true,
        process_in_process: false,
        stale_after: Duration::from_secs(5),
        sweep_every: Duration::from_secs(1),
        reconcile: ReconcileConfig {
            after: Duration::from_secs(3),
            give_up_after: Duration::from_secs(3600),
            rate_per_second: 100,
        },
        ..Options::default()
    })
    .await;
    let admin = app.admin_tokens().await.access;
    let rules = json!({
        "success_rate": {"enabled": false, "threshold": 0.5, "high_priority_threshold": 0.8,
                         "window_seconds": 60, "min_finished": 20, "hysteresis": 0.05},
        "failure_burst": {"enabled": true, "count": 50, "window_seconds": 300},
        "session_failed": {"enabled": true},
        "receipt_gap": {"enabled": false, "threshold": 0.1, "window_seconds": 300,
                        "min_finished": 20, "hysteresis": 0.05},
        "cooldown_seconds": 600
    });
    let reply = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/alerts/rules",
            Some(&admin),
            Some(rules),
        )
        .await;
    assert_eq!(reply.status, reqwest::StatusCode::OK, "{}", reply.body);
    let pair = new_pair(&app, &admin, "GB", false).await;
    let mut replica = app.spawn_process_replica(app.process_addr, "replica-1");
    replica.ready(app.process_addr).await;
    let body = json!({
        "country_operator_id": pair,
        "rate_per_minute": 6000.0,
        "recipients": {"range": {"first": "+447700900000", "count": MESSAGES}},
        "template": "crash {n}",
        "limit": MESSAGES,
    });
    let id = start(&app, &admin, body).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    sends_on(&sandbox, 200).await;

    take_down(&mut app, "sms-svc", going);
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.start_sms().await;
    sends_on(&sandbox, 200).await;

    if going == Going::Killed {
        replica.kill();
    } else {
        let took = replica
            .terminate(GRACE)
            .expect("process-svc exits within its grace");
        eprintln!("crashes: process-svc exited {took:?} after SIGTERM");
    }
    let replica = app.spawn_process_replica(app.process_addr, "replica-2");
    replica.ready(app.process_addr).await;
    sends_on(&sandbox, 200).await;

    take_down(&mut app, "metrics-svc", going);
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.start_metrics().await;
    sends_on(&sandbox, 200).await;

    take_down(&mut app, "notify-svc", going);
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.start_notify().await;

    // The session ends at its limit, by itself.
    let started = Instant::now();
    let ended = loop {
        let now = session(&app, &admin, &id).await;
        if now["state"] == "stopped" {
            break now;
        }
        assert_ne!(now["state"], "failed", "{now}");
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "never ended: {now}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let (seen, duplicates) = received(&sandbox, "crash").await;
    assert_eq!(duplicates, 0, "a number was sent twice");

    // Every message final, and counted exactly once.
    let started = Instant::now();
    let rows = loop {
        let rows = stored(&app).await;
        let open = rows
            .iter()
            .filter(|(_, s, _, _)| matches!(s.as_str(), "accepted" | "queued" | "sent"))
            .count();
        if open == 0 && rows.len() >= MESSAGES {
            break rows;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{open} of {} not final",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // The session skipped no number: each has its one message. Those in
    // flight when sms-svc died may or may not have reached Twilio: they end
    // provider_uncertain and are never sent again.
    assert_eq!(rows.len(), MESSAGES, "{ended}");
    let mut seqs: Vec<u64> = rows.iter().map(|(seq, _, _, _)| *seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..MESSAGES as u64).collect::<Vec<_>>());
    let reached: std::collections::HashSet<u64> = seen.iter().map(|(seq, _)| *seq).collect();
    let uncertain: Vec<u64> = rows
        .iter()
        .filter(|(seq, _, code, _)| {
            !reached.contains(seq) && code.as_deref() == Some("provider_uncertain")
        })
        .map(|(seq, _, _, _)| *seq)
        .collect();
    // Left accepted by a process that went away: the stale sweep's.
    let swept: Vec<u64> = rows
        .iter()
        .filter(|(_, _, _, swept)| *swept)
        .map(|(seq, _, _, _)| *seq)
        .collect();
    eprintln!(
        "crashes ({going:?}): {} of {MESSAGES} reached the sandbox, {} uncertain",
        reached.len(),
        uncertain.len()
    );
    // A stopped sms-svc finishes its provider calls and records them: none
    // is left for the sweep (a provider timeout under load may still be
    // uncertain, for its own reason).
    if going == Going::Stopped {
        assert_eq!(
            swept,
            Vec::<u64>::new(),
            "left unanswered by a graceful stop"
        );
    }
    let neither: Vec<&(u64, String, Option<String>, bool)> = rows
        .iter()
        .filter(|(seq, _, code, _)| {
            !reached.contains(seq) && code.as_deref() != Some("provider_uncertain")
        })
        .collect();
    assert_eq!(
        reached.len() + uncertain.len(),
        MESSAGES,
        "numbers neither sent nor uncertain: {neither:?}"
    );
    let item = app.settled_summary(&admin, &pair, MESSAGES as u64).await;
    for status in ["delivered", "undelivered", "failed"] {
        let expected = rows.iter().filter(|(_, s, _, _)| s == status).count() as u64;
        assert_eq!(
            item[status].as_u64().unwrap_or(0),
            expected,
            "{status}: {item}"
        );
    }

    // The burst opened one alert, told once.
    let started = Instant::now();
    loop {
        let alerts = app.get("/api/v1/alerts?state=all", &admin).await.body;
        let bursts: Vec<&Value> = alerts["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["rule"] == "failure_burst" && a["country_operator_id"] == pair)
            .collect();
        assert!(bursts.len() <= 1, "{bursts:?}");
        let told = sandbox.telegram_messages().await;
        let texts = told["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| {
                m["text"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("Failure burst")
            })
            .count();
        assert!(texts <= 1, "{told}");
        if bursts.len() == 1 && texts == 1 {
            assert_eq!(told["duplicates"], 0, "{told}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no burst alert: {alerts} {told}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(replica);
    app.cleanup().await;
}
