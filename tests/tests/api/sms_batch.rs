//! `POST /api/v1/sms/batch`: each message answered in its place (the
//! accepted with its id, the refused with their code), idempotency keys
//! kept per message, and batches of none or over 1,000 refused whole.

use reqwest::StatusCode;
use serde_json::{Value, json};
use smsops_tests::{Options, sandbox::Sandbox};

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
