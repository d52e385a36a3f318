//! Outages pause sessions; they do not fail them. The test cuts sms-svc off
//! MariaDB with a TCP proxy while a session sends, as the broker outage test
//! does for RabbitMQ, and looks for anything lost or sent twice.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sms_svc::core::ReconcileConfig;
use smsops_tests::{Options, TestApp, proxy::TcpProxy, sandbox::Sandbox};

use crate::sessions::{
    act, app_with, assert_no_gaps, new_pair, received, session_body, start, wait_received,
};

async fn session(app: &TestApp, admin: &str, id: &str) -> Value {
    app.get(&format!("/api/v1/sessions/{id}"), admin).await.body
}

/// Waits until the session is in `state`; it must never fail meanwhile.
async fn until_state(app: &TestApp, admin: &str, id: &str, state: &str) -> Value {
    let started = Instant::now();
    loop {
        let now = session(app, admin, id).await;
        assert_ne!(now["state"], "failed", "{now}");
        if now["state"] == state {
            return now;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never {state}: {now}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every message of sms-svc's store, read around the proxy.
async fn statuses(app: &TestApp) -> Vec<String> {
    let url = format!("mysql://root@127.0.0.1:3306/{}", app.sms_db);
    let pool = sqlx::MySqlPool::connect(&url).await.unwrap();
    let rows: Vec<(String,)> = sqlx::query_as("SELECT status FROM sms_messages")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows.into_iter().map(|(status,)| status).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_store_outage_pauses_a_session_and_loses_nothing() {
    let sandbox = Sandbox::start_default();
    let proxy = TcpProxy::start("127.0.0.1:3306".parse().unwrap()).await;
    let app = app_with(
        &sandbox,
        Options {
            sms_mysql_url: format!("mysql://root@{}", proxy.addr),
            // Three failures of its own would fail it: the outages must not count.
            failure_streak: 3,
            stale_after: Duration::from_secs(5),
            sweep_every: Duration::from_secs(1),
            reconcile: ReconcileConfig {
                after: Duration::from_secs(2),
                give_up_after: Duration::from_secs(3600),
                rate_per_second: 100,
            },
            ..Options::default()
        },
    )
    .await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin, "GB", false).await;
    let id = start(&app, &admin, session_body(&pair, 1200.0, "store")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_received(&sandbox, "store", "sent 10", |seen| seen.len() >= 10).await;

    for outage in [Duration::from_secs(10), Duration::from_secs(60)] {
        proxy.cut();
        let paused = until_state(&app, &admin, &id, "paused").await;
        assert!(
            paused["paused_reason"]
                .as_str()
                .is_some_and(|why| !why.is_empty()),
            "{paused}"
        );
        tokio::time::sleep(outage).await;
        let during = session(&app, &admin, &id).await;
        assert_eq!(during["state"], "paused", "after {outage:?}: {during}");
        proxy.restore();
        until_state(&app, &admin, &id, "running").await;
        let before = received(&sandbox, "store").await.0.len();
        wait_received(&sandbox, "store", "resumed", |seen| {
            seen.len() > before + 10
        })
        .await;
    }
    let stopped = act(&app, &admin, &id, "stop", json!({})).await;
    assert_eq!(stopped.body["state"], "stopped", "{}", stopped.body);

    // Every number once, none skipped.
    let (seen, duplicates) = received(&sandbox, "store").await;
    assert_eq!(duplicates, 0);
    assert_no_gaps(&seen);
    // Every message final: by callback, reconciliation, or (sent while
    // the store was cut, its answer unrecorded) the stale sweep.
    let started = Instant::now();
    let stored = loop {
        let stored = statuses(&app).await;
        let open = stored
            .iter()
            .filter(|s| matches!(s.as_str(), "accepted" | "queued" | "sent"))
            .count();
        if open == 0 {
            break stored;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{open} of {} messages not final",
            stored.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        stored.len() >= seen.len(),
        "{} stored, {} sent",
        stored.len(),
        seen.len()
    );
    // Counted exactly once each.
    let item = app
        .settled_summary(&admin, &pair, stored.len() as u64)
        .await;
    for status in ["delivered", "undelivered", "failed"] {
        let expected = stored.iter().filter(|s| *s == status).count() as u64;
        assert_eq!(
            item[status].as_u64().unwrap_or(0),
            expected,
            "{status}: {item}"
        );
    }
    app.cleanup().await;
}
