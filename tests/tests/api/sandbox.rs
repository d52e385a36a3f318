//! The sandbox speaks Twilio's and Telegram's real shapes, errors included.

use serde_json::{Value, json};
use smsops_tests::sandbox::{
    ACCOUNT_SID, API_KEY_SECRET, API_KEY_SID, AUTH_TOKEN, BOT_TOKEN, Sandbox,
};

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

/// What Twilio's own libraries send besides the account's SID and token:
/// an API key's credentials, and media with no body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_takes_what_its_libraries_send() {
    let sandbox = Sandbox::start_default();
    let http = reqwest::Client::new();
    let create = |user: &str, secret: &str, form: &[(&str, &str)]| {
        http.post(messages_url(&sandbox))
            .basic_auth(user, Some(secret))
            .header(
                "user-agent",
                "twilio-python/9.3.0 (Linux x86_64) Python/3.11.7",
            )
            .header("accept-charset", "utf-8")
            .form(form)
            .send()
    };
    let text = [
        ("To", "+447700900124"),
        ("From", "+15005550006"),
        ("Body", "key"),
    ];
    let reply = create(API_KEY_SID, API_KEY_SECRET, &text).await.unwrap();
    assert_eq!(reply.status(), 201);
    let reply = create(API_KEY_SID, "wrong", &text).await.unwrap();
    assert_eq!(reply.status(), 401);
    let media = [
        ("To", "+447700900125"),
        ("MessagingServiceSid", "MG00000000000000000000000000000000"),
        ("MediaUrl", "https://example.com/a.png"),
        ("MediaUrl", "https://example.com/b.png"),
    ];
    let reply = create(ACCOUNT_SID, AUTH_TOKEN, &media).await.unwrap();
    assert_eq!(reply.status(), 201);
    let sid = reply.json::<Value>().await.unwrap()["sid"].clone();
    // A lookup with the API key reads the same message.
    let url = message_url(&sandbox, sid.as_str().unwrap());
    let looked = http
        .get(url)
        .basic_auth(API_KEY_SID, Some(API_KEY_SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(looked.status(), 200);
}

/// The Bot API takes a method's parameters four ways; each is one message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_takes_parameters_every_way_the_bot_api_does() {
    let sandbox = Sandbox::start_default();
    let http = reqwest::Client::new();
    let url = format!("{}/bot{BOT_TOKEN}/sendMessage", sandbox.url);
    let boundary = "smsops-sandbox-boundary";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n13\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nby multipart\r\n\
         --{boundary}--\r\n"
    );
    let requests = [
        http.post(&url)
            .json(&json!({"chat_id": 11, "text": "by json", "parse_mode": "HTML"})),
        http.post(&url)
            .form(&[("chat_id", "12"), ("text", "by form")]),
        http.post(&url)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(multipart),
        http.get(&url)
            .query(&[("chat_id", "14"), ("text", "by query")]),
        // Query and body together: the body's value wins.
        http.post(format!("{url}?chat_id=15&text=overridden"))
            .form(&[("text", "by query and form")]),
    ];
    for request in requests {
        let reply = request.send().await.unwrap();
        let status = reply.status().as_u16();
        let body: Value = reply.json().await.unwrap();
        assert_eq!((status, body["ok"].as_bool()), (200, Some(true)), "{body}");
    }
    let sent = sandbox.telegram_messages().await;
    let mut got: Vec<(String, String)> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let chat = m["chat_id"].as_str().unwrap().to_string();
            (chat, m["text"].as_str().unwrap().to_string())
        })
        .collect();
    got.sort();
    let want: Vec<(String, String)> = [
        ("11", "by json"),
        ("12", "by form"),
        ("13", "by multipart"),
        ("14", "by query"),
        ("15", "by query and form"),
    ]
    .iter()
    .map(|(chat, text)| (chat.to_string(), text.to_string()))
    .collect();
    assert_eq!(got, want);
    // A body Telegram cannot read is its 400, as Telegram words it.
    let reply = http
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 400);
}
