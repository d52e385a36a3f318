//! notify-svc end to end: SMS outcomes from the sandbox through sms-svc and
//! RabbitMQ, alert rules, and Telegram messages in the sandbox.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use smsops_proto::sms::v1::{
    SendSmsBatchRequest, SendSmsBatchResponse, SendSmsRequest, sms_service_client::SmsServiceClient,
};
use smsops_tests::{Options, TestApp, amqp, sandbox::Sandbox};

/// Numbers under +4477001 are delivered; under +4477002 undelivered (30003).
fn sandbox() -> Sandbox {
    Sandbox::start(json!({
        "rules": [
            {"prefix": "+4477001", "delivered": 1.0, "callback_latency_ms": 10},
            {"prefix": "+4477002", "delivered": 0.0, "undelivered": 1.0, "callback_latency_ms": 10}
        ],
        "default_rule": {"delivered": 1.0, "callback_latency_ms": 10}
    }))
}

pub(crate) async fn app_with(sandbox: &Sandbox) -> TestApp {
    TestApp::spawn_with(Options {
        twilio_base_url: sandbox.url.clone(),
        telegram_base_url: sandbox.url.clone(),
        ..Options::default()
    })
    .await
}

pub(crate) async fn new_pair(app: &TestApp, admin: &str, high_priority: bool) -> (String, String) {
    let operator = format!("op-{}", uuid::Uuid::new_v4().simple());
    let body = json!({"country": "GB", "operator": operator, "is_high_priority": high_priority});
    let reply = app
        .post("/api/v1/country-operators", Some(admin), body)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    (reply.id(), operator)
}

/// A 60 s window over at least 20 finished messages, bursts off.
fn rate_rules() -> Value {
    json!({
        "success_rate": {"enabled": true, "threshold": 0.5, "high_priority_threshold": 0.8,
                         "window_seconds": 60, "min_finished": 20, "hysteresis": 0.05},
        "failure_burst": {"enabled": false, "count": 1000, "window_seconds": 60},
        "session_failed": {"enabled": true},
        "receipt_gap": {"enabled": false, "threshold": 0.1, "window_seconds": 300, "min_finished": 20, "hysteresis": 0.05},
        "cooldown_seconds": 600
    })
}

/// Puts `rules` in place; they come back as sent.
pub(crate) async fn set_rules(app: &TestApp, admin: &str, rules: Value) {
    let reply = app
        .call(
            Method::PUT,
            "/api/v1/alerts/rules",
            Some(admin),
            Some(rules.clone()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // A rule left out stays as it was, and comes back too.
    for (name, rule) in rules.as_object().unwrap() {
        assert_eq!(&reply.body[name], rule, "{}", reply.body);
    }
}

/// Sends `good` delivered and `bad` undelivered messages for `pair`.
async fn send(app: &TestApp, admin: &str, pair: &str, good: usize, bad: usize) {
    let seed = uuid::Uuid::new_v4().as_u128() % 10_000;
    let numbers = (0..good + bad)
        .map(|n| {
            let prefix = if n < good { "+4477001" } else { "+4477002" };
            format!("{prefix}{seed:04}{n:03}")
        })
        .collect();
    send_to(app, admin, pair, numbers).await;
}

/// Sends one message to each of `numbers` on `pair`, in one gRPC batch.
pub(crate) async fn send_to(app: &TestApp, admin: &str, pair: &str, numbers: Vec<String>) {
    let messages = numbers
        .into_iter()
        .enumerate()
        .map(|(n, to)| SendSmsRequest {
            country_operator_id: pair.into(),
            to,
            body: format!("alerts {n}"),
            ..Default::default()
        })
        .collect();
    send_batch(app, admin, messages).await;
}

/// One `SendSmsBatch` call to sms-svc as `admin`.
pub(crate) async fn send_batch(
    app: &TestApp,
    admin: &str,
    messages: Vec<SendSmsRequest>,
) -> SendSmsBatchResponse {
    let mut client = SmsServiceClient::connect(format!("http://{}", app.sms_addr))
        .await
        .unwrap();
    let mut request = tonic::Request::new(SendSmsBatchRequest { messages });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {admin}").parse().unwrap());
    client.send_sms_batch(request).await.unwrap().into_inner()
}

/// The Telegram messages whose text contains every one of `words`.
pub(crate) async fn telegram_with(sandbox: &Sandbox, words: &[&str]) -> Vec<Value> {
    let all = sandbox.telegram_messages().await;
    all["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            let text = m["text"].as_str().unwrap_or_default();
            words.iter().all(|w| text.contains(w))
        })
        .cloned()
        .collect()
}

/// Waits up to `limit` for `count` such messages; returns when they came.
pub(crate) async fn wait_for_telegram(
    sandbox: &Sandbox,
    words: &[&str],
    count: usize,
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    while started.elapsed() < limit {
        if telegram_with(sandbox, words).await.len() >= count {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all = sandbox.telegram_messages().await;
    panic!("no {count} telegram messages with {words:?} in {limit:?}: {all}");
}

/// Waits until notify-svc has taken in `events` outcomes and then judged
/// every pair twice (the first round may have started before the last of
/// them was recorded): from then on, an alert that did not come is one the
/// rules did not raise.
async fn wait_until_judged(app: &TestApp, events: u64) {
    let started = Instant::now();
    let counter = |name| app.prometheus_sum("notify-svc", name);
    while counter("smsops_notify_events_total").await < events as f64 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "notify-svc took in {} of {events} events",
            counter("smsops_notify_events_total").await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rounds = counter("smsops_notify_evaluations_total").await;
    while counter("smsops_notify_evaluations_total").await < rounds + 2.0 {
        assert!(started.elapsed() < Duration::from_secs(20), "no evaluation");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_below_its_threshold_alerts_once_and_resolves_once() {
    let sandbox = sandbox();
    let app = app_with(&sandbox).await;
    let admin = app.admin_tokens().await.access;
    set_rules(&app, &admin, rate_rules()).await;
    let (pair, operator) = new_pair(&app, &admin, false).await;

    // 30 % delivered.
    send(&app, &admin, &pair, 12, 28).await;
    let took = wait_for_telegram(
        &sandbox,
        &["Low success rate", &operator],
        1,
        Duration::from_secs(10),
    )
    .await;
    println!("alert in telegram {} ms after the sends", took.as_millis());
    let alert = &telegram_with(&sandbox, &["Low success rate", &operator]).await[0];
    assert_eq!(alert["parse_mode"], "HTML");
    // Callbacks arrive in any order, so the rule may fire on any 20 or
    // more of the 40; what it reports must be under the threshold.
    let text = alert["text"].as_str().unwrap();
    let rate: f64 = text
        .split("% delivered of ")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|rate| rate.parse().ok())
        .unwrap_or_else(|| panic!("no rate in {text}"));
    assert!(rate < 50.0 && text.contains("(threshold 50.0%)"), "{text}");

    // Still low, more traffic: no second alert.
    send(&app, &admin, &pair, 3, 7).await;
    wait_until_judged(&app, 50).await;
    assert_eq!(
        telegram_with(&sandbox, &["Low success rate", &operator])
            .await
            .len(),
        1
    );
    let open = app.get("/api/v1/alerts?state=open", &admin).await;
    let items = open.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", open.body);
    assert_eq!(items[0]["rule"], "success_rate");
    assert_eq!(items[0]["country_operator_id"], pair.as_str());
    assert_eq!(items[0]["delivery"], "sent");

    // Recovers: (15 + 200) / 250 = 86 %.
    send(&app, &admin, &pair, 200, 0).await;
    wait_for_telegram(
        &sandbox,
        &["Resolved", &operator],
        1,
        Duration::from_secs(10),
    )
    .await;
    wait_until_judged(&app, 250).await;
    assert_eq!(
        telegram_with(&sandbox, &["Resolved", &operator])
            .await
            .len(),
        1
    );
    assert_eq!(
        telegram_with(&sandbox, &["Low success rate", &operator])
            .await
            .len(),
        1
    );
    assert_eq!(sandbox.telegram_messages().await["duplicates"], 0);
    let resolved = app.get("/api/v1/alerts?state=resolved", &admin).await;
    let items = resolved.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", resolved.body);
    assert!(items[0]["resolved_at"].is_string());
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_priority_pairs_alert_at_their_own_threshold() {
    let sandbox = sandbox();
    let app = app_with(&sandbox).await;
    let admin = app.admin_tokens().await.access;
    set_rules(&app, &admin, rate_rules()).await;
    let (pinned, pinned_operator) = new_pair(&app, &admin, true).await;
    let (plain, plain_operator) = new_pair(&app, &admin, false).await;

    // 70 % each: below 80 %, above 50 %.
    send(&app, &admin, &pinned, 21, 9).await;
    send(&app, &admin, &plain, 21, 9).await;
    wait_for_telegram(
        &sandbox,
        &["Low success rate", &pinned_operator, "high priority"],
        1,
        Duration::from_secs(10),
    )
    .await;
    wait_until_judged(&app, 60).await;
    assert!(
        telegram_with(&sandbox, &[&plain_operator]).await.is_empty(),
        "{}",
        sandbox.telegram_messages().await
    );
    let open = app.get("/api/v1/alerts?state=open", &admin).await;
    let items = open.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", open.body);
    assert_eq!(items[0]["country_operator_id"], pinned.as_str());
    let _ = plain;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_alerts_reach_telegram_through_its_429s() {
    let sandbox = sandbox();
    let app = app_with(&sandbox).await;
    let admin = app.admin_tokens().await.access;
    let (_, user) = app.new_user().await;

    let reply = app
        .post(
            "/api/v1/alerts",
            Some(&user.access),
            json!({"message": "hi"}),
        )
        .await;
    reply.assert_error(403, "forbidden");
    let reply = app
        .post("/api/v1/alerts", Some(&admin), json!({"message": "  "}))
        .await;
    reply.assert_error(400, "invalid_argument");
    let reply = app
        .post(
            "/api/v1/alerts",
            Some(&admin),
            json!({"message": "x".repeat(1001)}),
        )
        .await;
    reply.assert_error(400, "invalid_argument");
    let reply = app
        .post(
            "/api/v1/alerts",
            Some(&admin),
            json!({"text": "wrong field"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    let reply = app.get("/api/v1/alerts?state=closed", &admin).await;
    reply.assert_error(400, "invalid_argument");

    // Telegram refuses the next three sends with 429 retry_after 1.
    sandbox.set_faults(json!({"telegram_429_burst": 3})).await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    for n in 0..3 {
        let message = format!("maintenance <{n}> & {tag}");
        let reply = app
            .post("/api/v1/alerts", Some(&admin), json!({"message": message}))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        assert_eq!(reply.body["rule"], "manual");
        assert_eq!(reply.body["message"], message.as_str());
    }
    wait_for_telegram(&sandbox, &[&tag], 3, Duration::from_secs(20)).await;
    let sent = telegram_with(&sandbox, &[&tag]).await;
    assert!(
        sent.iter()
            .all(|m| m["text"].as_str().unwrap().contains("&lt;") && m["chat_id"] == "-1001"),
        "{sent:?}"
    );
    assert_eq!(sandbox.telegram_messages().await["duplicates"], 0);
    let mut delivered = 0;
    for _ in 0..50 {
        let all = app.get("/api/v1/alerts", &user.access).await;
        delivered = all.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["rule"] == "manual" && a["delivery"] == "sent")
            .count();
        if delivered == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivered, 3);
    app.cleanup().await;
}

fn session_event(kind: &str, pair: &str, session: &str, operator: &str) -> Value {
    json!({
        "event_id": uuid::Uuid::now_v7().to_string(),
        "type": kind,
        "occurred_at": chrono::Utc::now(),
        "session_id": session,
        "country_operator_id": pair,
        "country": "GB",
        "operator": operator,
        "is_high_priority": false,
        "state": kind.trim_start_matches("session."),
        "reason": "provider_unavailable: 20 sends in a row failed",
        "by": "process-svc",
        "next_seq": 7,
        "counters": {"submitted": 7, "accepted": 0, "failed": 7}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_session_alerts_once_even_redelivered_and_poison_is_set_aside() {
    let sandbox = sandbox();
    let app = app_with(&sandbox).await;
    let admin = app.admin_tokens().await.access;
    let operator = format!("op-{}", uuid::Uuid::new_v4().simple());
    let failed = session_event("session.failed", "pair-1", "session-1", &operator);
    let payload = serde_json::to_vec(&failed).unwrap();
    amqp::publish_raw(&app.session_exchange, "session.failed", &payload).await;
    amqp::publish_raw(&app.session_exchange, "session.failed", &payload).await;
    amqp::publish_raw(&app.exchange, "sms.failed", b"{not an event").await;
    wait_for_telegram(
        &sandbox,
        &["Session failed", &operator, "provider_unavailable"],
        1,
        Duration::from_secs(10),
    )
    .await;

    let started = session_event("session.started", "pair-1", "session-2", &operator);
    let payload = serde_json::to_vec(&started).unwrap();
    amqp::publish_raw(&app.session_exchange, "session.started", &payload).await;
    wait_for_telegram(
        &sandbox,
        &["Resolved", &operator, "session-2"],
        1,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(telegram_with(&sandbox, &[&operator]).await.len(), 2);
    let dead = format!("{}.dlq", app.notify_queue);
    let mut dead_letters = 0;
    for _ in 0..50 {
        dead_letters = amqp::queue_length(&dead).await;
        if dead_letters == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dead_letters, 1);
    let history = app.get("/api/v1/alerts?state=resolved", &admin).await;
    let items = history.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", history.body);
    assert_eq!(items[0]["rule"], "session_failed");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_admin_only_and_validated() {
    let sandbox = sandbox();
    let app = app_with(&sandbox).await;
    let admin = app.admin_tokens().await.access;
    let (_, user) = app.new_user().await;
    let reply = app.get("/api/v1/alerts/rules", &user.access).await;
    reply.assert_error(403, "forbidden");
    let defaults = app.get("/api/v1/alerts/rules", &admin).await;
    assert_eq!(defaults.status, StatusCode::OK);
    assert_eq!(defaults.body["success_rate"]["threshold"], 0.5);
    assert_eq!(
        defaults.body["success_rate"]["high_priority_threshold"],
        0.8
    );
    assert_eq!(defaults.body["success_rate"]["window_seconds"], 300);
    assert_eq!(defaults.body["success_rate"]["min_finished"], 20);
    assert_eq!(defaults.body["receipt_gap"]["threshold"], 0.1);
    // A caller from before the receipt-gap rule leaves it as stored.
    let mut changed = defaults.body.clone();
    changed["receipt_gap"]["threshold"] = json!(0.25);
    set_rules(&app, &admin, changed.clone()).await;
    let mut older = changed.clone();
    older.as_object_mut().unwrap().remove("receipt_gap");
    older["cooldown_seconds"] = json!(300);
    let reply = app
        .call(
            Method::PUT,
            "/api/v1/alerts/rules",
            Some(&admin),
            Some(older),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["receipt_gap"]["threshold"], 0.25);
    assert_eq!(reply.body["cooldown_seconds"], 300);
    let mut bad = defaults.body.clone();
    bad["success_rate"]["threshold"] = json!(1.5);
    let reply = app
        .call(Method::PUT, "/api/v1/alerts/rules", Some(&admin), Some(bad))
        .await;
    reply.assert_error(400, "invalid_argument");
    let reply = app
        .call(
            Method::PUT,
            "/api/v1/alerts/rules",
            Some(&user.access),
            Some(defaults.body.clone()),
        )
        .await;
    reply.assert_error(403, "forbidden");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_one_error_code_alerts_and_clears_when_it_leaves_the_window() {
    let sandbox = sandbox();
    let app = app_with(&sandbox).await;
    let admin = app.admin_tokens().await.access;
    let rules = json!({
        "success_rate": {"enabled": false, "threshold": 0.5, "high_priority_threshold": 0.8,
                         "window_seconds": 60, "min_finished": 20, "hysteresis": 0.05},
        "failure_burst": {"enabled": true, "count": 10, "window_seconds": 10},
        "session_failed": {"enabled": true},
        "receipt_gap": {"enabled": false, "threshold": 0.1, "window_seconds": 300, "min_finished": 20, "hysteresis": 0.05},
        "cooldown_seconds": 600
    });
    set_rules(&app, &admin, rules).await;
    let (pair, operator) = new_pair(&app, &admin, false).await;

    // Twelve undelivered with 30003 within seconds.
    send(&app, &admin, &pair, 0, 12).await;
    wait_for_telegram(
        &sandbox,
        &["Failure burst", &operator, "error 30003"],
        1,
        Duration::from_secs(10),
    )
    .await;
    let open = app.get("/api/v1/alerts?state=open", &admin).await;
    assert_eq!(
        open.body["items"][0]["rule"], "failure_burst",
        "{}",
        open.body
    );
    assert_eq!(open.body["items"][0]["operator"], operator.as_str());
    // Ten seconds on, the burst has left the window.
    wait_for_telegram(
        &sandbox,
        &["Resolved", &operator, "failure burst is over"],
        1,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(telegram_with(&sandbox, &[&operator]).await.len(), 2);
    app.cleanup().await;
}

/// A pair's first burst is named from the same read that counts it: events
/// landing between two reads once left the alert without country and
/// operator.
#[tokio::test]
async fn a_new_pairs_worst_error_comes_with_its_names() {
    use notify_svc::{
        core::event::{Event, SmsOutcome},
        store::Store,
    };

    let db = format!("notify_names_{}", uuid::Uuid::new_v4().simple());
    let store = Store::connect("mysql://root@127.0.0.1:3306", &db)
        .await
        .unwrap();
    let since = chrono::Utc::now() - chrono::TimeDelta::minutes(10);
    let outcome = |n: u32, code: &str| {
        Event::Sms(SmsOutcome {
            event_id: format!("event-{n}"),
            occurred_at: chrono::Utc::now(),
            country_operator_id: "pair-1".into(),
            country: "GB".into(),
            operator: "Vodafone".into(),
            is_high_priority: false,
            status: "undelivered".into(),
            error_code: Some(code.into()),
            reconciled: false,
            accepted_at: None,
            provider: Some("twilio".into()),
        })
    };
    let events = vec![
        outcome(1, "30003"),
        outcome(2, "30003"),
        outcome(3, "30005"),
    ];
    store
        .record(&events, &std::collections::HashMap::new())
        .await
        .unwrap();
    let worst = store.worst_errors(since).await.unwrap();
    let error = &worst["pair-1"];
    assert_eq!(
        (
            error.code.as_str(),
            error.count,
            error.country.as_str(),
            error.operator.as_str()
        ),
        ("30003", 2, "GB", "Vodafone")
    );
    let pool = sqlx::MySqlPool::connect("mysql://root@127.0.0.1:3306")
        .await
        .unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS `{db}`"))
        .execute(&pool)
        .await
        .unwrap();
}
