//! The sandbox speaks Twilio's and Telegram's real shapes, errors included.

use serde_json::{Value, json};
use smsops_tests::sandbox::{ACCOUNT_SID, AUTH_TOKEN, Sandbox};

fn messages_url(sandbox: &Sandbox) -> String {
    format!(
        "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        sandbox.url
    )
}

async fn twilio(sandbox: &Sandbox, token: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let reply = reqwest::Client::new()
        .post(messages_url(sandbox))
        .basic_auth(ACCOUNT_SID, Some(token))
        .form(form)
        .send()
        .await
        .unwrap();
    (reply.status().as_u16(), reply.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_answers_and_errors_look_like_twilio() {
    let sandbox = Sandbox::start_default();
    let ok = [
        ("To", "+447700900123"),
        ("From", "+15005550006"),
        ("Body", "hi"),
    ];

    let (status, body) = twilio(&sandbox, AUTH_TOKEN, &ok).await;
    assert_eq!(status, 201, "{body}");
    assert!(body["sid"].as_str().unwrap().starts_with("SM"));
    assert_eq!(
        (body["status"].as_str(), body["num_segments"].as_str()),
        (Some("queued"), Some("1"))
    );
    assert_eq!(body["account_sid"], ACCOUNT_SID);

    let (status, body) = twilio(&sandbox, "wrong", &ok).await;
    assert_eq!((status, body["code"].as_u64()), (401, Some(20003)));
    let (status, body) = twilio(
        &sandbox,
        AUTH_TOKEN,
        &[("To", "12"), ("From", "+15005550006"), ("Body", "x")],
    )
    .await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(21211)));
    assert!(body["more_info"].as_str().unwrap().ends_with("/21211"));
    let (status, body) = twilio(
        &sandbox,
        AUTH_TOKEN,
        &[("To", "+447700900123"), ("From", "+15005550006")],
    )
    .await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(21602)));

    // Over 2 per second: 429 with Twilio's 20429.
    let sandbox = Sandbox::start(json!({"twilio": {"rate_per_second": 2}}));
    let mut limited = 0;
    for _ in 0..5 {
        let (status, body) = twilio(&sandbox, AUTH_TOKEN, &ok).await;
        if status == 429 {
            assert_eq!(body["code"], 20429);
            limited += 1;
        }
    }
    assert!(limited >= 2, "{limited} of 5 limited");
    let received = sandbox.twilio_messages().await;
    assert!(
        received["duplicates"].as_u64().unwrap() >= 1,
        "the same To and Body again counts as a duplicate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_limits_each_chat_to_one_message_a_second() {
    let sandbox = Sandbox::start_default();
    let http = reqwest::Client::new();
    let send = |token: &str, chat: i64, text: &str| {
        let request = http
            .post(format!("{}/bot{token}/sendMessage", sandbox.url))
            .json(&json!({"chat_id": chat, "text": text, "parse_mode": "HTML"}));
        async move {
            let reply = request.send().await.unwrap();
            (
                reply.status().as_u16(),
                reply.json::<Value>().await.unwrap(),
            )
        }
    };
    let token = "123456:sandbox-bot-token";
    let (status, body) = send(token, 42, "<b>alert</b>").await;
    assert_eq!((status, body["ok"].as_bool()), (200, Some(true)), "{body}");
    assert_eq!(body["result"]["chat"]["id"], 42);
    let (status, body) = send(token, 42, "again").await;
    assert_eq!((status, body["error_code"].as_u64()), (429, Some(429)));
    assert_eq!(body["parameters"]["retry_after"], 1);
    // Another chat is not limited by the first.
    assert_eq!(send(token, 43, "other chat").await.0, 200);
    let (status, body) = send("123456:wrong", 42, "x").await;
    assert_eq!(
        (status, body["description"].as_str()),
        (401, Some("Unauthorized"))
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(send(token, 42, "after a second").await.0, 200);
    assert_eq!(sandbox.telegram_messages().await["count"], 3);
}
