//! sms-svc sending over SMPP to the sandbox's SMSC: a long UCS-2 text in
//! headed parts that end in one final status, receipts with error codes,
//! and a bind that the SMSC ends, or throttles, without a message lost.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use smsops_tests::{
    Options, TestApp,
    amqp::{Event, EventQueue},
    sandbox::Sandbox,
};

fn smsc(rules: Value) -> Sandbox {
    Sandbox::start(json!({ "rules": rules }))
}

async fn app_over(sandbox: &Sandbox) -> TestApp {
    TestApp::spawn_with(Options {
        smpp_addr: Some(sandbox.smsc_addr.clone()),
        ..Options::default()
    })
    .await
}

async fn pair(app: &TestApp, admin: &str) -> String {
    let operator = format!("op-{}", uuid::Uuid::new_v4().simple());
    let body = json!({"country": "GB", "operator": operator});
    let reply = app
        .post("/api/v1/country-operators", Some(admin), body)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.id()
}

async fn send(app: &TestApp, token: &str, pair: &str, to: &str, body: &str) -> Value {
    let request = json!({"country_operator_id": pair, "to": to, "body": body});
    let reply = app.post("/api/v1/sms", Some(token), request).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    reply.body
}

fn history(detail: &Value) -> Vec<String> {
    detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["status"].as_str().unwrap().to_string())
        .collect()
}

fn statuses_of(events: &[Event], id: &str) -> Vec<String> {
    events
        .iter()
        .filter(|event| event.body["message_id"] == id)
        .map(|event| event.body["status"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_ucs2_text_goes_in_five_parts_and_ends_in_one_status() {
    let sandbox = smsc(json!([
        {"prefix": "+4477009002", "delivered": 0.0, "undelivered": 1.0, "undelivered_codes": [30003]},
        {"prefix": "+44", "delivered": 1.0}
    ]));
    let app = app_over(&sandbox).await;
    let admin = app.admin_tokens().await.access;
    let (_, user) = app.new_user().await;
    let pair = pair(&app, &admin).await;
    let mut queue = EventQueue::bind(&app.exchange).await;
    sandbox.wait_smsc_bound(1, Duration::from_secs(10)).await;

    // 300 Cyrillic characters: UCS-2, 67 to a headed part, five parts.
    let text: String = "Привет, мир! ".chars().cycle().take(300).collect();
    let sent = send(&app, &user.access, &pair, "+447700900123", &text).await;
    assert_eq!(sent["status"], "queued", "{sent}");
    assert_eq!(sent["provider"], "smpp");
    assert_eq!(sent["segments"], 5);
    let id = sent["id"].as_str().unwrap().to_string();
    let detail = app
        .wait_final(&user.access, &id, Duration::from_secs(15))
        .await;
    assert_eq!(detail["status"], "delivered", "{detail}");
    assert_eq!(history(&detail), ["accepted", "queued", "delivered"]);

    let smsc = sandbox.smsc_messages().await;
    let parts = smsc["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 5, "{smsc}");
    let reference = parts[0]["concat"][0].clone();
    for (number, part) in parts.iter().enumerate() {
        assert_eq!(part["data_coding"], 8);
        assert_eq!(part["to"], "+447700900123");
        assert_eq!(part["concat"], json!([reference, 5, number + 1]));
    }
    let joined: String = parts
        .iter()
        .map(|part| part["text"].as_str().unwrap())
        .collect();
    assert_eq!(joined, text);
    // The message is known by its first part's id.
    assert_eq!(detail["provider_sid"], parts[0]["message_id"]);

    // One part short of delivered makes the message undelivered, with the
    // SMSC's error; a short text is one part without a header.
    let bad = send(&app, &user.access, &pair, "+447700900201", "short one").await;
    let bad_id = bad["id"].as_str().unwrap().to_string();
    let detail = app
        .wait_final(&user.access, &bad_id, Duration::from_secs(15))
        .await;
    assert_eq!(detail["status"], "undelivered", "{detail}");
    assert_eq!(detail["error_code"], "smpp_003", "{detail}");
    let smsc = sandbox.smsc_messages().await;
    let last = &smsc["parts"][5];
    assert_eq!(
        (last["data_coding"].as_u64(), &last["concat"]),
        (Some(0), &Value::Null)
    );
    assert_eq!(last["text"], "short one");

    // Every move is one event, as with any provider.
    let events = queue
        .collect_until(Duration::from_secs(10), |events| {
            statuses_of(events, &id).len() >= 3 && statuses_of(events, &bad_id).len() >= 3
        })
        .await;
    assert_eq!(
        statuses_of(&events, &id),
        ["accepted", "queued", "delivered"]
    );
    assert_eq!(
        statuses_of(&events, &bad_id),
        ["accepted", "queued", "undelivered"]
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unbound_or_throttled_bind_loses_no_message() {
    let sandbox = smsc(json!([{"prefix": "+44", "delivered": 1.0, "callback_latency_ms": 300}]));
    let app = app_over(&sandbox).await;
    let admin = app.admin_tokens().await.access;
    let pair = pair(&app, &admin).await;
    sandbox.wait_smsc_bound(1, Duration::from_secs(10)).await;

    // Sent, then the SMSC unbinds before the receipt is due: the receipt
    // waits for the next bind, which comes on its own.
    let first = send(&app, &admin, &pair, "+447700900301", "before the unbind").await;
    sandbox.smsc_unbind().await;
    let started = Instant::now();
    sandbox.wait_smsc_bound(0, Duration::from_secs(10)).await;
    sandbox.wait_smsc_bound(1, Duration::from_secs(10)).await;
    let rebound = started.elapsed();
    assert!(
        sandbox.smsc_messages().await["binds"].as_u64() >= Some(2),
        "bound again after {rebound:?}"
    );
    let detail = app
        .wait_final(
            &admin,
            first["id"].as_str().unwrap(),
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(detail["status"], "delivered", "{detail}");

    // Throttled: tried again, not failed, and sent once.
    sandbox.set_faults(json!({"smsc_throttle_burst": 2})).await;
    let throttled = send(&app, &admin, &pair, "+447700900302", "throttled twice").await;
    assert_eq!(throttled["status"], "queued", "{throttled}");
    let long = "x".repeat(200);
    let body = send(&app, &admin, &pair, "+447700900303", &long).await;
    assert_eq!(body["status"], "queued", "{body}");
    for id in [&throttled["id"], &body["id"]] {
        let detail = app
            .wait_final(&admin, id.as_str().unwrap(), Duration::from_secs(15))
            .await;
        assert_eq!(detail["status"], "delivered", "{detail}");
    }
    let smsc = sandbox.smsc_messages().await;
    assert!(smsc["throttled"].as_u64() >= Some(2), "{smsc}");
    // 1 + 1 + 2 parts, none twice.
    assert_eq!(smsc["count"], 4, "{smsc}");
    app.cleanup().await;
}

async fn stored_status(app: &TestApp, id: &str) -> String {
    let mysql = sqlx::MySqlPool::connect("mysql://root@127.0.0.1:3306")
        .await
        .unwrap();
    let sql = format!(
        "SELECT status FROM `{}`.sms_messages WHERE id = ?",
        app.sms_db
    );
    let (status,): (String,) = sqlx::query_as(&sql)
        .bind(id)
        .fetch_one(&mysql)
        .await
        .unwrap();
    mysql.close().await;
    status
}

/// Receipts come on whichever bind the SMSC picks: the parts live in
/// MySQL, so a replica that never sent the message keeps them as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_for_one_replicas_parts_are_kept_by_another() {
    let sandbox = smsc(json!([{"prefix": "+44", "delivered": 1.0, "callback_latency_ms": 1500}]));
    let mut app = app_over(&sandbox).await;
    let admin = app.admin_tokens().await.access;
    let pair = pair(&app, &admin).await;
    let second = app.spawn_sms_replica(smsops_tests::free_addr()).await;
    sandbox.wait_smsc_bound(2, Duration::from_secs(10)).await;

    // Three GSM parts, sent through the gateway's replica, which then goes.
    let text = "a".repeat(400);
    let sent = send(&app, &admin, &pair, "+447700900401", &text).await;
    assert_eq!(sent["segments"], 3, "{sent}");
    let id = sent["id"].as_str().unwrap().to_string();
    app.stop_sms().await;
    sandbox.wait_smsc_bound(1, Duration::from_secs(10)).await;

    let started = Instant::now();
    loop {
        let status = stored_status(&app, &id).await;
        if status == "delivered" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "still {status}: {}",
            sandbox.smsc_messages().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let smsc = sandbox.smsc_messages().await;
    assert_eq!(
        (smsc["count"].as_u64(), smsc["receipts_sent"].as_u64()),
        (Some(3), Some(3))
    );
    second.stop().await;
    app.cleanup().await;
}
