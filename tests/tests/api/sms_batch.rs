//! `POST /api/v1/sms/batch`: each message answered in its place (the
//! accepted with its id, the refused with their code), idempotency keys
//! kept per message, and batches of none or over 1,000 refused whole; and
//! single sends the gateway batches, each answered as if it went alone.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};
use smsops_tests::{Options, Reply, TestApp, sandbox::Sandbox};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answers_each_message_in_its_place() {
    let sandbox = Sandbox::start(json!({"default_rule": {"delivered": 1.0}}));
    let app = super::sessions::app_with(&sandbox, Options::default()).await;
    let admin = app.admin_tokens().await.access;
    let gb = super::sessions::new_pair(&app, &admin, "GB", false).await;
    let message = |to: &str, key: Option<&str>| json!({"country_operator_id": gb, "to": to, "body": "batched", "idempotency_key": key});
    let batch = json!({"messages": [
        message("+447700900001", Some("batch-key-1")),
        message("not a number", None),
        message("+12025550100", None),
        message("+447700900002", None),
        {"country_operator_id": "no-such-pair", "to": "+447700900003", "body": "batched"},
    ]});
    let reply = app.post("/api/v1/sms/batch", Some(&admin), batch).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let results = reply.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 5, "{}", reply.body);
    let code = |result: &Value| result["error"]["code"].as_str().unwrap_or("").to_string();
    assert_eq!(code(&results[1]), "invalid_phone", "{}", results[1]);
    assert_eq!(code(&results[2]), "number_not_in_country", "{}", results[2]);
    assert_eq!(code(&results[4]), "pair_not_found", "{}", results[4]);
    let first = results[0]["sms"]["id"].as_str().unwrap().to_string();
    assert!(results[3]["sms"]["id"].is_string(), "{}", results[3]);
    assert!(results[0].get("error").is_none(), "{}", results[0]);

    // The same key again, in a batch of its own: the same message, not a second send.
    let again = json!({"messages": [message("+447700900001", Some("batch-key-1"))]});
    let reply = app.post("/api/v1/sms/batch", Some(&admin), again).await;
    assert_eq!(
        reply.body["results"][0]["sms"]["id"],
        first.as_str(),
        "{}",
        reply.body
    );
    for id in [
        &first,
        &results[3]["sms"]["id"].as_str().unwrap().to_string(),
    ] {
        let detail = app
            .wait_final(&admin, id, std::time::Duration::from_secs(20))
            .await;
        assert_eq!(detail["status"], "delivered", "{detail}");
    }
    let at_sandbox = sandbox.twilio_messages().await;
    assert_eq!(
        at_sandbox["messages"].as_array().unwrap().len(),
        2,
        "{at_sandbox}"
    );

    // None, or over 1,000: refused whole, nothing sent.
    let none = app
        .post("/api/v1/sms/batch", Some(&admin), json!({"messages": []}))
        .await;
    assert_eq!(
        (none.status, none.code()),
        (StatusCode::BAD_REQUEST, "invalid_argument")
    );
    let many: Vec<Value> = (0..1001)
        .map(|n| message(&format!("+4477009{n:05}"), None))
        .collect();
    let over = app
        .post("/api/v1/sms/batch", Some(&admin), json!({"messages": many}))
        .await;
    assert_eq!(
        (over.status, over.code()),
        (StatusCode::BAD_REQUEST, "invalid_argument")
    );
    let at_sandbox = sandbox.twilio_messages().await;
    assert_eq!(at_sandbox["messages"].as_array().unwrap().len(), 2);
    app.cleanup().await;
}

/// `SendSmsBatch` calls sms-svc has served, whatever their outcome.
async fn batch_calls(app: &TestApp) -> f64 {
    app.prometheus_sum_labelled(
        "sms-svc",
        "smsops_grpc_server_requests_total",
        "SendSmsBatch",
    )
    .await
}

/// Posts `bodies` to `POST /api/v1/sms` all at once as `token`.
async fn all_at_once(app: &TestApp, token: &str, bodies: Vec<Value>) -> Vec<Reply> {
    let sends = bodies.into_iter().map(|body| {
        let request = app
            .http
            .post(app.url("/api/v1/sms"))
            .bearer_auth(token)
            .json(&body);
        async move { Reply::from_response(request.send().await.unwrap()).await }
    });
    futures::future::join_all(sends).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_sends_arriving_together_are_each_answered_as_if_alone() {
    let sandbox = Sandbox::start(json!({"default_rule": {"delivered": 1.0}}));
    let app = super::sessions::app_with(&sandbox, Options::default()).await;
    let admin = app.admin_tokens().await.access;
    let gb = super::sessions::new_pair(&app, &admin, "GB", false).await;
    let sms = |to: String, key: Option<&str>| json!({"country_operator_id": gb, "to": to, "body": "together", "idempotency_key": key});

    // 30 to send, 5 bad numbers, one outside the pair's country, and one
    // key four times: the gateway hands them to sms-svc in batches.
    let before = batch_calls(&app).await;
    let mut bodies: Vec<Value> = (0..30)
        .map(|n| sms(format!("+4477009{n:05}"), None))
        .collect();
    bodies.extend((0..5).map(|_| sms("not a number".into(), None)));
    bodies.push(sms("+12025550100".into(), None));
    bodies.extend((0..4).map(|_| sms("+447700999999".into(), Some("together-key"))));
    let replies = all_at_once(&app, &admin, bodies).await;
    assert!(batch_calls(&app).await > before, "no send went in a batch");

    let ids: HashSet<String> = replies[..30].iter().map(Reply::id).collect();
    assert_eq!(ids.len(), 30);
    for reply in &replies[..30] {
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
        assert_eq!(reply.body["status"], "queued", "{}", reply.body);
    }
    for reply in &replies[30..35] {
        reply.assert_error(400, "invalid_phone");
    }
    replies[35].assert_error(400, "number_not_in_country");
    let keyed: HashSet<String> = replies[36..].iter().map(Reply::id).collect();
    assert_eq!(keyed.len(), 1, "one key, one message");
    assert!(ids.is_disjoint(&keyed));

    let received = sandbox.twilio_messages().await;
    let together = received["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["body"] == "together")
        .count();
    assert_eq!((together, received["duplicates"].as_u64()), (31, Some(0)));

    // A quota of 10 a minute against 25 at once: 10 taken, 15 told when to retry.
    let (_, operator) = app
        .operator_with_quota(json!({"per_minute": 10, "per_day": 1000}))
        .await;
    super::quotas::clear_of_a_minute_boundary().await;
    let bodies = (0..25)
        .map(|n| sms(format!("+4477008{n:05}"), None))
        .collect();
    let replies = all_at_once(&app, &operator, bodies).await;
    let accepted = replies
        .iter()
        .filter(|r| r.status == StatusCode::ACCEPTED)
        .count();
    assert_eq!(accepted, 10);
    for refused in replies.iter().filter(|r| r.status != StatusCode::ACCEPTED) {
        refused.assert_error(429, "quota_exceeded");
        let retry: u32 = refused.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "retry after {retry}");
    }
    app.cleanup().await;
}
