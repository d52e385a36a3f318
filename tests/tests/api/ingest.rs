//! Reported results from SMS programs smsops does not run: API keys, the
//! ingest endpoint, and the results showing up in the metrics.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use smsops_tests::{Reply, TestApp};

async fn ingest(app: &TestApp, key: Option<&str>, body: Value) -> Reply {
    let mut request = app
        .http
        .post(app.url("/api/v1/ingest/sms-events"))
        .json(&body);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(
        status != StatusCode::INTERNAL_SERVER_ERROR,
        "{status} {body}"
    );
    Reply {
        status,
        headers: Default::default(),
        body,
    }
}

fn result(operator: &str, status: &str, error_code: Option<&str>) -> Value {
    json!({
        "event_id": uuid::Uuid::now_v7().to_string(),
        "country": "gb",
        "operator": operator,
        "status": status,
        "error_code": error_code,
        "occurred_at": chrono::Utc::now().to_rfc3339(),
    })
}

async fn summary_of(app: &TestApp, admin: &str, pair: &str) -> Option<Value> {
    let reply = app.get("/api/v1/metrics/summary?window=1h", admin).await;
    reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["country_operator_id"] == pair)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reported_results_count_once_and_keys_can_be_revoked() {
    let app = TestApp::spawn().await;
    let admin = app.admin_tokens().await.access;
    let (_, user) = app.new_user().await;
    let operator = format!("Op-{}", uuid::Uuid::new_v4().simple());
    let pair = app
        .post(
            "/api/v1/country-operators",
            Some(&admin),
            json!({"country": "GB", "operator": operator}),
        )
        .await
        .id();

    app.post("/api/v1/api-keys", Some(&user.access), json!({"name": "x"}))
        .await
        .assert_error(403, "forbidden");
    app.post("/api/v1/api-keys", Some(&admin), json!({"name": " "}))
        .await
        .assert_error(400, "invalid_argument");
    let created = app
        .post(
            "/api/v1/api-keys",
            Some(&admin),
            json!({"name": "seed-002 checker"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let key = created.body["key"].as_str().unwrap().to_string();
    let key_id = created.id();
    assert!(key.starts_with("smk_"));
    assert!(key.starts_with(created.body["prefix"].as_str().unwrap()));
    let listed = app.get("/api/v1/api-keys", &admin).await;
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert!(items[0].get("key").is_none(), "the key is shown once");

    // Eight delivered, two failed; the operator's case does not matter.
    let mut batch: Vec<Value> = (0..8)
        .map(|_| result(&operator.to_lowercase(), "delivered", None))
        .collect();
    batch.push(result(&operator, "failed", Some("30008")));
    batch.push(result(&operator, "failed", Some("30008")));
    let reply = ingest(&app, Some(&key), json!({ "events": batch })).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(reply.body["accepted"], 10);
    // Reported again: counted once.
    let reply = ingest(&app, Some(&key), json!({ "events": batch })).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);

    let mut counted = None;
    for _ in 0..100 {
        counted = summary_of(&app, &admin, &pair).await;
        if counted
            .as_ref()
            .is_some_and(|c| c["delivered"] == 8 && c["failed"] == 2)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counted = counted.unwrap();
    assert_eq!(
        (counted["delivered"].as_u64(), counted["failed"].as_u64()),
        (Some(8), Some(2))
    );
    assert_eq!(counted["success_rate"], 0.8);
    assert_eq!(counted["top_errors"][0]["code"], "30008");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = summary_of(&app, &admin, &pair).await.unwrap();
    assert_eq!(
        (again["delivered"].as_u64(), again["failed"].as_u64()),
        (Some(8), Some(2))
    );
    let listed = app.get("/api/v1/api-keys", &admin).await;
    assert!(listed.body["items"][0]["last_used_at"].is_string());

    // Missing, made-up and revoked keys.
    let one = json!({ "events": [result(&operator, "delivered", None)] });
    ingest(&app, None, one.clone())
        .await
        .assert_error(401, "unauthorized");
    let forged = format!("{}x", &key[..key.len() - 1]);
    ingest(&app, Some(&forged), one.clone())
        .await
        .assert_error(401, "unauthorized");
    ingest(&app, Some("smk_nothing"), one.clone())
        .await
        .assert_error(401, "unauthorized");
    let revoked = app
        .call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{key_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    assert!(revoked.body["revoked_at"].is_string());
    ingest(&app, Some(&key), one)
        .await
        .assert_error(401, "unauthorized");
    app.call(
        Method::DELETE,
        "/api/v1/api-keys/no-such-key",
        Some(&admin),
        None,
    )
    .await
    .assert_error(404, "not_found");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_batch_is_refused_naming_the_bad_item() {
    let app = TestApp::spawn().await;
    let admin = app.admin_tokens().await.access;
    let operator = format!("op-{}", uuid::Uuid::new_v4().simple());
    app.post(
        "/api/v1/country-operators",
        Some(&admin),
        json!({"country": "GB", "operator": operator}),
    )
    .await;
    let key = app
        .post("/api/v1/api-keys", Some(&admin), json!({"name": "checker"}))
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_string();
    let good = || result(&operator, "delivered", None);

    let mut bad_status = good();
    bad_status["status"] = json!("lost");
    let reply = ingest(
        &app,
        Some(&key),
        json!({"events": [good(), good(), bad_status]}),
    )
    .await;
    reply.assert_error(400, "invalid_argument");
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap()
            .starts_with("events[2].status"),
        "{}",
        reply.body
    );

    let mut bad_type = good();
    bad_type["country"] = json!(44);
    let reply = ingest(&app, Some(&key), json!({"events": [good(), bad_type]})).await;
    reply.assert_error(400, "invalid_argument");
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap()
            .starts_with("events[1]"),
        "{}",
        reply.body
    );

    for (index, field, value) in [
        (0, "event_id", json!("not-a-uuid")),
        (0, "occurred_at", json!("yesterday")),
        (0, "country", json!("GBR")),
    ] {
        let mut item = good();
        item[field] = value;
        let reply = ingest(&app, Some(&key), json!({ "events": [item] })).await;
        reply.assert_error(400, "invalid_argument");
        let message = reply.body["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("events[{index}].{field}")),
            "{message}"
        );
    }

    let unknown = result("no-such-operator", "delivered", None);
    let reply = ingest(&app, Some(&key), json!({"events": [good(), unknown]})).await;
    reply.assert_error(404, "pair_not_found");
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap()
            .contains("events[1]")
    );

    ingest(&app, Some(&key), json!({"events": []}))
        .await
        .assert_error(400, "invalid_argument");
    ingest(&app, Some(&key), json!([good()]))
        .await
        .assert_error(400, "invalid_argument");
    let too_many: Vec<Value> = (0..1001).map(|_| good()).collect();
    ingest(&app, Some(&key), json!({ "events": too_many }))
        .await
        .assert_error(400, "invalid_argument");
    app.cleanup().await;
}

/// A reporter that sends its batch again while the first still waits in
/// the outbox (here: the broker is away) gets 202 again, and each event
/// waits once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_reported_again_before_it_was_published_is_kept_once() {
    let app = TestApp::spawn_with(smsops_tests::Options {
        amqp_url: "amqp://guest:guest@127.0.0.1:9/%2f".into(),
        ..Default::default()
    })
    .await;
    let admin = app.admin_tokens().await.access;
    let operator = format!("Op-{}", uuid::Uuid::new_v4().simple());
    app.post(
        "/api/v1/country-operators",
        Some(&admin),
        json!({"country": "GB", "operator": operator}),
    )
    .await
    .id();
    let key = app
        .post("/api/v1/api-keys", Some(&admin), json!({"name": "twice"}))
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_string();
    let batch = json!({"events": [
        result(&operator, "delivered", None),
        result(&operator, "failed", Some("30008")),
    ]});
    for _ in 0..2 {
        let reply = ingest(&app, Some(&key), batch.clone()).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    }
    let mysql = sqlx::MySqlPool::connect(&format!("mysql://root@127.0.0.1:3306/{}", app.sms_db))
        .await
        .unwrap();
    let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sms_outbox")
        .fetch_one(&mysql)
        .await
        .unwrap();
    assert_eq!(waiting, 2);
    mysql.close().await;
    app.cleanup().await;
}
