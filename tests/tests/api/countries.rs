//! A number must be dialled under its pair's country calling code: sends,
//! batches and sessions to numbers elsewhere are refused with
//! `number_not_in_country`, and nothing of theirs is kept or sent.

use serde_json::{Value, json};
use smsops_proto::sms::v1::{SendSmsRequest, send_sms_result};
use smsops_tests::{Options, TestApp, sandbox::Sandbox};

async fn send(app: &TestApp, token: &str, pair: &str, to: &str) -> (u16, String) {
    let body = json!({"country_operator_id": pair, "to": to, "body": "country check"});
    let reply = app.post("/api/v1/sms", Some(token), body).await;
    (reply.status.as_u16(), reply.code().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_outside_the_pairs_country_are_refused_everywhere() {
    let sandbox = Sandbox::start(json!({"default_rule": {"delivered": 1.0}}));
    let app = super::sessions::app_with(&sandbox, Options::default()).await;
    let admin = app.admin_tokens().await.access;
    let gb = super::sessions::new_pair(&app, &admin, "GB", false).await;
    let us = super::sessions::new_pair(&app, &admin, "US", false).await;
    let ng = super::sessions::new_pair(&app, &admin, "NG", false).await;

    let refused = (400, "number_not_in_country".to_string());
    assert_eq!(send(&app, &admin, &gb, "+12025550100").await, refused);
    assert_eq!(send(&app, &admin, &gb, "+33612345678").await, refused);
    assert_eq!(send(&app, &admin, &us, "+447700900123").await, refused);
    // Kenya's +254 is not Nigeria's +234, though both are three digits.
    assert_eq!(send(&app, &admin, &ng, "+254712345678").await, refused);
    let taken = (202, "<no code>".to_string());
    assert_eq!(send(&app, &admin, &gb, "+447700900123").await, taken);
    assert_eq!(send(&app, &admin, &ng, "+2348031234567").await, taken);
    // +1 is shared: a Canadian number is dialled under the US code too.
    assert_eq!(send(&app, &admin, &us, "+12025550100").await, taken);
    assert_eq!(send(&app, &admin, &us, "+16135550123").await, taken);

    // In a batch, each item on its own.
    let item = |to: &str| SendSmsRequest {
        country_operator_id: gb.clone(),
        to: to.into(),
        body: "batch".into(),
        ..Default::default()
    };
    let reply = super::alerts::send_batch(
        &app,
        &admin,
        vec![
            item("+447700900200"),
            item("+4915112345678"),
            item("+447700900201"),
        ],
    )
    .await;
    let codes: Vec<String> = reply
        .results
        .iter()
        .map(|result| match &result.result {
            Some(send_sms_result::Result::Sms(sms)) => sms.status.clone(),
            Some(send_sms_result::Result::Error(err)) => err.code.clone(),
            None => "none".into(),
        })
        .collect();
    assert_eq!(codes[1], "number_not_in_country");
    assert!(codes[0] != "number_not_in_country" && codes[2] != "number_not_in_country");

    // Sessions are checked when created: a listed number, or a range that
    // runs out of the calling code (+44 99… into +45 00…).
    let session = |recipients: Value| {
        json!({
            "country_operator_id": gb,
            "rate_per_minute": 60.0,
            "recipients": recipients,
            "template": "session {n}",
        })
    };
    for recipients in [
        json!(["+447700900001", "+12025550100"]),
        json!({"range": {"first": "+449999999998", "count": 3}}),
        json!({"range": {"first": "+33612345678", "count": 2}}),
    ] {
        let reply = app
            .post(
                "/api/v1/sessions",
                Some(&admin),
                session(recipients.clone()),
            )
            .await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (400, "number_not_in_country"),
            "{recipients}: {}",
            reply.body
        );
    }

    // Nothing refused was kept, or reached the provider.
    let sent = sandbox.twilio_messages().await;
    let mut numbers: Vec<&str> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["to"].as_str().unwrap())
        .collect();
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        [
            "+12025550100",
            "+16135550123",
            "+2348031234567",
            "+447700900123",
            "+447700900200",
            "+447700900201"
        ]
    );
    app.cleanup().await;
}
