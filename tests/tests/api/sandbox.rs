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

fn message_url(sandbox: &Sandbox, sid: &str) -> String {
    format!(
        "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
        sandbox.url
    )
}

async fn lookup(sandbox: &Sandbox, sid: &str, token: &str) -> (u16, Value) {
    let reply = reqwest::Client::new()
        .get(message_url(sandbox, sid))
        .basic_auth(ACCOUNT_SID, Some(token))
        .send()
        .await
        .unwrap();
    (reply.status().as_u16(), reply.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_lookup_answers_twilios_status_now_whatever_its_callbacks_did() {
    let sandbox = Sandbox::start(json!({"default_rule": {
        "delivered": 0.0, "undelivered": 1.0, "undelivered_codes": [30005], "callback_latency_ms": 2000
    }}));
    let ok = [
        ("To", "+447700900123"),
        ("From", "+15005550006"),
        ("Body", "looked up"),
    ];
    let (_, created) = twilio(&sandbox, AUTH_TOKEN, &ok).await;
    let sid = created["sid"].as_str().unwrap();
    let (status, early) = lookup(&sandbox, sid, AUTH_TOKEN).await;
    assert_eq!((status, early["status"].as_str()), (200, Some("queued")));
    assert_eq!(early["error_code"], Value::Null);
    assert_eq!(early["uri"], created["uri"]);
    tokio::time::sleep(std::time::Duration::from_millis(4100)).await;
    let (_, late) = lookup(&sandbox, sid, AUTH_TOKEN).await;
    assert_eq!(late["status"], "undelivered");
    assert_eq!(late["error_code"], 30005, "a number, as Twilio sends it");
    assert_eq!(late["sid"], sid);

    let (status, body) = lookup(&sandbox, "SM0000", AUTH_TOKEN).await;
    assert_eq!((status, body["code"].as_u64()), (404, Some(20404)));
    let (status, body) = lookup(&sandbox, sid, "wrong").await;
    assert_eq!((status, body["code"].as_u64()), (401, Some(20003)));
    sandbox
        .set_faults(json!({"lookup_unknown_share": 1.0}))
        .await;
    assert_eq!(lookup(&sandbox, sid, AUTH_TOKEN).await.0, 404);
    assert_eq!(
        sandbox.twilio_messages().await["lookups"],
        4,
        "refused ones not counted"
    );
}

/// Status callbacks as the sandbox sends them, in arrival order.
async fn callback_sink() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use actix_web::{App, HttpServer, web};
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = got.clone();
    let server = HttpServer::new(move || {
        let seen = seen.clone();
        App::new().route(
            "/status",
            web::post().to(move |form: web::Form<Vec<(String, String)>>| {
                let seen = seen.clone();
                async move {
                    let status = form.iter().find(|(k, _)| k == "MessageStatus");
                    if let Some((_, status)) = status {
                        seen.lock().unwrap().push(status.clone());
                    }
                    actix_web::HttpResponse::Ok().finish()
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    (format!("http://{addr}/status"), got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_can_be_dropped_delayed_and_sent_out_of_order_at_run_time() {
    let sandbox =
        Sandbox::start(json!({"default_rule": {"delivered": 1.0, "callback_latency_ms": 10}}));
    let (url, got) = callback_sink().await;
    let send = |n: usize| {
        let body = format!("callbacks {n}");
        let url = url.clone();
        let sandbox = &sandbox;
        async move {
            let form = [
                ("To", "+447700900123"),
                ("From", "+15005550006"),
                ("Body", body.as_str()),
                ("StatusCallback", url.as_str()),
            ];
            assert_eq!(twilio(sandbox, AUTH_TOKEN, &form).await.0, 201);
        }
    };
    let wait_for = |count: usize| {
        let got = got.clone();
        async move {
            for _ in 0..100 {
                if got.lock().unwrap().len() >= count {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            panic!("{count} callbacks never came: {:?}", got.lock().unwrap());
        }
    };
    send(0).await;
    wait_for(2).await;
    assert_eq!(*got.lock().unwrap(), ["sent", "delivered"]);

    sandbox
        .set_faults(json!({"callback_out_of_order": true, "callback_delay_ms": 200}))
        .await;
    let started = std::time::Instant::now();
    send(1).await;
    wait_for(4).await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));
    assert_eq!(got.lock().unwrap()[2..], ["delivered", "sent"]);

    sandbox
        .set_faults(json!({"callback_drop_share": 1.0}))
        .await;
    send(2).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(got.lock().unwrap().len(), 4);
    let log = sandbox.twilio_messages().await;
    assert_eq!(
        (
            log["callbacks_sent"].as_u64(),
            log["callbacks_dropped"].as_u64()
        ),
        (Some(4), Some(2))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_destination_s_receipts_can_be_slowed_at_run_time() {
    let sandbox =
        Sandbox::start(json!({"default_rule": {"delivered": 1.0, "callback_latency_ms": 10}}));
    let (url, got) = callback_sink().await;
    sandbox
        .set_faults(json!({"receipt_delay_ms_by_prefix": {"+4477009": 600}}))
        .await;
    // Time from the send to each callback, by destination.
    let timed = |to: &'static str| {
        let url = url.clone();
        let got = got.clone();
        let sandbox = &sandbox;
        async move {
            let before = got.lock().unwrap().len();
            let started = std::time::Instant::now();
            let body = format!("slow {to}");
            let form = [
                ("To", to),
                ("From", "+15005550006"),
                ("Body", body.as_str()),
                ("StatusCallback", url.as_str()),
            ];
            assert_eq!(twilio(sandbox, AUTH_TOKEN, &form).await.0, 201);
            for _ in 0..200 {
                if got.lock().unwrap().len() >= before + 2 {
                    return started.elapsed();
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            panic!("the receipt for {to} never came");
        }
    };
    let slow = timed("+447700900123").await;
    let other = timed("+447800900123").await;
    assert!(
        slow >= std::time::Duration::from_millis(600),
        "the slowed route took {slow:?}"
    );
    // Only a lower bound is certain on a loaded machine: the other route
    // did not wait the delay.
    assert!(
        other < slow,
        "another route took {other:?}, the slowed {slow:?}"
    );
}
