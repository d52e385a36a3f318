use std::{collections::HashSet, time::Duration};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use smsops_tests::{
    Options, TestApp,
    amqp::{Event, EventQueue},
    proxy::TcpProxy,
    sandbox::{AUTH_TOKEN, Sandbox, twilio_signature},
};

async fn app_with(sandbox: &Sandbox, options: Options) -> TestApp {
    TestApp::spawn_with(Options {
        twilio_base_url: sandbox.url.clone(),
        ..options
    })
    .await
}

async fn new_pair(app: &TestApp, admin: &str, country: &str, operator: &str) -> String {
    let body = json!({"country": country, "operator": operator, "is_high_priority": true});
    let reply = app
        .post("/api/v1/country-operators", Some(admin), body)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.id()
}

async fn send(app: &TestApp, token: &str, pair: &str, to: &str, body: &str) -> smsops_tests::Reply {
    app.post(
        "/api/v1/sms",
        Some(token),
        json!({"country_operator_id": pair, "to": to, "body": body}),
    )
    .await
}

/// Polls a message until it reaches one of the final statuses.
async fn wait_final(app: &TestApp, token: &str, id: &str) -> Value {
    for _ in 0..100 {
        let reply = app.get(&format!("/api/v1/sms/{id}"), token).await;
        if ["delivered", "undelivered", "failed"]
            .contains(&reply.body["status"].as_str().unwrap_or(""))
        {
            return reply.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("message {id} never reached a final status");
}

fn statuses_of(events: &[Event], message: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.body["message_id"] == message)
        .map(|e| e.body["status"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_sms_is_delivered_and_every_status_is_an_event() {
    let sandbox = Sandbox::start_default();
    let app = app_with(&sandbox, Options::default()).await;
    let admin = app.admin_tokens().await.access;
    let (_, user) = app.new_user().await;
    let pair = new_pair(&app, &admin, "GB", "Vodafone").await;
    let mut queue = EventQueue::bind(&app.exchange).await;

    let text = format!("hello {}", uuid::Uuid::new_v4());
    let reply = send(&app, &user.access, &pair, "+447700900123", &text).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let id = reply.id();
    assert_eq!(reply.body["status"], "queued");
    assert!(
        reply.body["provider_sid"]
            .as_str()
            .unwrap()
            .starts_with("SM")
    );
    assert_eq!(
        (
            reply.body["country"].as_str(),
            reply.body["segments"].as_u64()
        ),
        (Some("GB"), Some(1))
    );

    let detail = wait_final(&app, &user.access, &id).await;
    assert_eq!(detail["status"], "delivered", "{detail}");
    let history: Vec<_> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].clone())
        .collect();
    assert_eq!(
        history,
        [
            json!("accepted"),
            json!("queued"),
            json!("sent"),
            json!("delivered")
        ]
    );

    let received = sandbox.twilio_messages().await;
    assert_eq!(
        (received["count"].as_u64(), received["duplicates"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(received["messages"][0]["body"], text.as_str());
    assert_eq!(received["messages"][0]["sid"], detail["provider_sid"]);

    let events = queue
        .collect_until(Duration::from_secs(10), |e| statuses_of(e, &id).len() >= 4)
        .await;
    assert_eq!(
        statuses_of(&events, &id),
        ["accepted", "queued", "sent", "delivered"]
    );
    for event in &events {
        assert_eq!(event.message_id, event.body["event_id"].as_str().unwrap());
        assert_eq!(
            event.routing_key,
            format!("sms.{}", event.body["status"].as_str().unwrap())
        );
        assert_eq!(event.type_header, event.routing_key);
        assert_eq!(event.content_type, "application/json");
        assert!(event.persistent);
        let trace: Vec<&str> = event.traceparent.split('-').collect();
        assert_eq!(
            (trace.len(), trace[1].len()),
            (4, 32),
            "{}",
            event.traceparent
        );
        assert_eq!(event.body["country_operator_id"], pair.as_str());
        assert_eq!(
            (
                event.body["country"].as_str(),
                event.body["operator"].as_str()
            ),
            (Some("GB"), Some("Vodafone"))
        );
        assert_eq!(event.body["is_high_priority"], true);
        assert_eq!(event.body["provider"], "twilio");
    }
    assert_eq!(events[3].body["provider_sid"], detail["provider_sid"]);

    let page = app
        .get(
            &format!("/api/v1/sms?country_operator_id={pair}&status=delivered"),
            &user.access,
        )
        .await;
    assert_eq!(page.body["items"][0]["id"], id.as_str());
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcome_rules_end_in_undelivered_and_failed_with_codes() {
    let sandbox = Sandbox::start(json!({
        "rules": [
            {"prefix": "+4477009001", "delivered": 0.0, "undelivered": 1.0, "undelivered_codes": [30003], "callback_latency_ms": 20},
            {"prefix": "+4477009002", "delivered": 0.0, "undelivered": 0.0, "failed": 1.0, "failed_codes": [30008], "callback_latency_ms": 20}
        ]
    }));
    let app = app_with(&sandbox, Options::default()).await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin, "GB", "EE").await;
    let undelivered = send(&app, &admin, &pair, "+447700900111", "one").await.id();
    let failed = send(&app, &admin, &pair, "+447700900222", "two").await.id();
    let detail = wait_final(&app, &admin, &undelivered).await;
    assert_eq!(
        (detail["status"].as_str(), detail["error_code"].as_str()),
        (Some("undelivered"), Some("30003"))
    );
    let detail = wait_final(&app, &admin, &failed).await;
    assert_eq!(
        (detail["status"].as_str(), detail["error_code"].as_str()),
        (Some("failed"), Some("30008"))
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_checks_signatures_and_ignores_replays_and_late_statuses() {
    let sandbox = Sandbox::start_default();
    let app = app_with(&sandbox, Options::default()).await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin, "FR", "Orange").await;
    let id = send(&app, &admin, &pair, "+33612345678", "bonjour")
        .await
        .id();
    let detail = wait_final(&app, &admin, &id).await;
    let sid = detail["provider_sid"].as_str().unwrap().to_string();
    let url = app.url("/webhooks/twilio/status");
    let post = |params: Vec<(&'static str, String)>, signature: Option<String>| {
        let mut request = app.http.post(&url).form(&params);
        if let Some(signature) = signature {
            request = request.header("X-Twilio-Signature", signature);
        }
        async move { request.send().await.unwrap() }
    };
    let late = vec![
        ("MessageSid", sid.clone()),
        ("MessageStatus", "sent".to_string()),
    ];
    let signed = |params: &[(&'static str, String)]| {
        let borrowed: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        twilio_signature(AUTH_TOKEN, &url, &borrowed)
    };

    assert_eq!(
        post(late.clone(), None).await.status(),
        StatusCode::FORBIDDEN
    );
    let reply = post(late.clone(), Some("bm90IHRoZSBzaWduYXR1cmU=".into())).await;
    assert_eq!(reply.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        reply.json::<Value>().await.unwrap()["code"],
        "invalid_signature"
    );

    // A late `sent`, correctly signed, is accepted and changes nothing.
    assert_eq!(
        post(late.clone(), Some(signed(&late))).await.status(),
        StatusCode::NO_CONTENT
    );
    // A replayed final status is harmless too.
    let replay = vec![
        ("MessageSid", sid.clone()),
        ("MessageStatus", "delivered".to_string()),
    ];
    assert_eq!(
        post(replay.clone(), Some(signed(&replay))).await.status(),
        StatusCode::NO_CONTENT
    );
    let after = app.get(&format!("/api/v1/sms/{id}"), &admin).await.body;
    assert_eq!(after["status"], "delivered");
    assert_eq!(after["history"].as_array().unwrap().len(), 4);

    let unknown = vec![
        ("MessageSid", "SMnotours".to_string()),
        ("MessageStatus", "delivered".to_string()),
    ];
    let reply = post(unknown.clone(), Some(signed(&unknown))).await;
    assert_eq!(reply.status(), StatusCode::NOT_FOUND);
    // Provider ids are printable ASCII: any other is unknown, never looked up.
    let odd = vec![
        ("MessageSid", "SM\u{e9}\u{2202}".to_string()),
        ("MessageStatus", "delivered".to_string()),
    ];
    let reply = post(odd.clone(), Some(signed(&odd))).await;
    assert_eq!(reply.status(), StatusCode::NOT_FOUND);
    app.cleanup().await;
}

/// The gateway hands callbacks that arrive together to sms-svc in one call;
/// each must still get its own answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_arriving_together_each_get_their_own_answer() {
    let sandbox = Sandbox::start_default();
    let app = app_with(&sandbox, Options::default()).await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin, "ES", "Movistar").await;
    let id = send(&app, &admin, &pair, "+34612345678", "hola").await.id();
    let sid = wait_final(&app, &admin, &id).await["provider_sid"]
        .as_str()
        .unwrap()
        .to_string();
    let url = app.url("/webhooks/twilio/status");
    let calls = (0..90).map(|i| {
        let (message, signature_ok, expected) = match i % 3 {
            0 => (sid.clone(), false, StatusCode::FORBIDDEN),
            1 => (format!("SMunknown{i}"), true, StatusCode::NOT_FOUND),
            _ => (sid.clone(), true, StatusCode::NO_CONTENT),
        };
        let params = [
            ("MessageSid", message),
            ("MessageStatus", "sent".to_string()),
        ];
        let borrowed: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let signature = if signature_ok {
            twilio_signature(AUTH_TOKEN, &url, &borrowed)
        } else {
            "bm90IHRoZSBzaWduYXR1cmU=".to_string()
        };
        let request = app
            .http
            .post(&url)
            .header("X-Twilio-Signature", signature)
            .form(&params);
        async move { (i, expected, request.send().await.unwrap().status()) }
    });
    for (i, expected, got) in futures::future::join_all(calls).await {
        assert_eq!(got, expected, "callback {i}");
    }
    let after = app.get(&format!("/api/v1/sms/{id}"), &admin).await.body;
    assert_eq!(after["status"], "delivered");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sms_input_gets_documented_codes_and_keys_dedupe() {
    let sandbox = Sandbox::start_default();
    let app = app_with(&sandbox, Options::default()).await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin, "DE", "O2").await;
    for to in [
        "",
        "4915112345678",
        "+0151",
        "+49 151 1234",
        "+491511234567890123",
    ] {
        send(&app, &admin, &pair, to, "hi")
            .await
            .assert_error(400, "invalid_phone");
    }
    send(&app, &admin, &pair, "+4915112345678", "")
        .await
        .assert_error(400, "invalid_body");
    send(&app, &admin, &pair, "+4915112345678", &"x".repeat(1601))
        .await
        .assert_error(400, "invalid_body");
    let reply = send(&app, &admin, &pair, "+4915112345678", &"x".repeat(1600)).await;
    assert_eq!(
        (reply.status, reply.body["segments"].as_u64()),
        (StatusCode::ACCEPTED, Some(11))
    );
    send(&app, &admin, "no-such-pair", "+4915112345678", "hi")
        .await
        .assert_error(404, "pair_not_found");
    app.get("/api/v1/sms/no-such-message", &admin)
        .await
        .assert_error(404, "not_found");
    // Ids are ASCII columns in MySQL, which refuses to compare other text
    // with them: such an id or page token was a 500.
    app.get("/api/v1/sms/%C2%B7%F0%AD%AF%98w", &admin)
        .await
        .assert_error(404, "not_found");
    app.get("/api/v1/sms?page_token=%C2%B7%F0%AD%AF%98w", &admin)
        .await
        .assert_error(400, "invalid_argument");
    app.get("/api/v1/sms?status=lost", &admin)
        .await
        .assert_error(400, "invalid_argument");
    app.call(Method::POST, "/api/v1/sms", None, Some(json!({})))
        .await
        .assert_error(401, "unauthorized");

    // One idempotency key, one message, one send.
    let body = json!({"country_operator_id": pair, "to": "+4915112345679", "body": "once", "idempotency_key": "order-42"});
    let first = app.post("/api/v1/sms", Some(&admin), body.clone()).await;
    let second = app.post("/api/v1/sms", Some(&admin), body).await;
    assert_eq!(first.id(), second.id());
    let received = sandbox.twilio_messages().await;
    let sent_once = received["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["body"] == "once")
        .count();
    assert_eq!((sent_once, received["duplicates"].as_u64()), (1, Some(0)));
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_429s_are_retried_and_timeouts_are_never_resent() {
    let sandbox = Sandbox::start_default();
    let app = app_with(
        &sandbox,
        Options {
            provider_timeout: Duration::from_secs(1),
            ..Options::default()
        },
    )
    .await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin, "US", "Verizon").await;

    sandbox.set_faults(json!({"twilio_429_burst": 2})).await;
    let reply = send(&app, &admin, &pair, "+12025550123", "through the burst").await;
    assert_eq!(reply.body["status"], "queued", "{}", reply.body);

    sandbox.set_faults(json!({"timeout_share": 1.0})).await;
    let reply = send(&app, &admin, &pair, "+12025550124", "into the void").await;
    assert_eq!(
        (
            reply.body["status"].as_str(),
            reply.body["error_code"].as_str()
        ),
        (Some("failed"), Some("provider_uncertain"))
    );
    sandbox.set_faults(json!({})).await;

    let received = sandbox.twilio_messages().await;
    assert_eq!(
        (received["count"].as_u64(), received["duplicates"].as_u64()),
        (Some(2), Some(0)),
        "{received}"
    );
    app.cleanup().await;
}

/// The broker goes away for 5 s while 300 messages are sent: sends still
/// succeed, their events wait in the outbox, and every one of them arrives
/// once the broker is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_is_lost_when_the_broker_goes_away() {
    let sandbox = Sandbox::start_default();
    let proxy = TcpProxy::start("127.0.0.1:5672".parse().unwrap()).await;
    let options = Options {
        amqp_url: format!("amqp://guest:guest@{}/%2f", proxy.addr),
        ..Options::default()
    };
    let app = app_with(&sandbox, options).await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin, "NG", "MTN").await;
    let mut queue = EventQueue::bind(&app.exchange).await;

    const OUTAGE: Duration = Duration::from_secs(5);
    proxy.cut();
    let cut_at = std::time::Instant::now();
    let mut ids = Vec::new();
    for chunk in 0..15 {
        let texts: Vec<String> = (0..20).map(|i| format!("outage {chunk}-{i}")).collect();
        let sends = texts
            .iter()
            .map(|text| send(&app, &admin, &pair, "+2348031234567", text));
        for reply in futures::future::join_all(sends).await {
            assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
            ids.push(reply.id());
        }
    }
    // For the rest of the outage, watch that nothing gets through: every
    // event must be waiting in the outbox.
    let leaked = queue
        .collect_until(OUTAGE.saturating_sub(cut_at.elapsed()), |events| {
            !events.is_empty()
        })
        .await;
    assert!(
        leaked.is_empty(),
        "{} events crossed a cut connection",
        leaked.len()
    );
    proxy.restore();

    let wanted: HashSet<(String, String)> = ids
        .iter()
        .flat_map(|id| {
            ["accepted", "queued", "sent", "delivered"].map(|s| (id.clone(), s.to_string()))
        })
        .collect();
    let events = queue
        .collect_until(Duration::from_secs(60), |events| {
            let seen: HashSet<(String, String)> = events
                .iter()
                .map(|e| {
                    (
                        e.body["message_id"].as_str().unwrap().to_string(),
                        e.body["status"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            wanted.is_subset(&seen)
        })
        .await;
    let mut by_key = std::collections::HashMap::new();
    for event in &events {
        let key = (
            event.body["message_id"].as_str().unwrap().to_string(),
            event.body["status"].as_str().unwrap().to_string(),
        );
        by_key
            .entry(key)
            .or_insert_with(HashSet::new)
            .insert(event.message_id.clone());
    }
    let missing = wanted.iter().filter(|k| !by_key.contains_key(*k)).count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} events never arrived",
        wanted.len()
    );
    // Duplicates are allowed only as the same event, with the same event_id.
    assert!(by_key.values().all(|event_ids| event_ids.len() == 1));
    app.cleanup().await;
}

/// A crash between recording a message and recording the provider's answer
/// leaves it `accepted`. The sweeper fails it as `provider_uncertain` (the
/// provider may have it) and never sends it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_abandoned_in_accepted_are_failed_as_uncertain() {
    let sandbox = Sandbox::start_default();
    let options = Options {
        stale_after: Duration::from_secs(1),
        sweep_every: Duration::from_millis(200),
        ..Options::default()
    };
    let app = app_with(&sandbox, options).await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin, "GB", "Three").await;
    let mut queue = EventQueue::bind(&app.exchange).await;

    let id = uuid::Uuid::now_v7().to_string();
    let mysql = sqlx::MySqlPool::connect(&format!("mysql://root@127.0.0.1:3306/{}", app.sms_db))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO sms_messages (id, pair_id, country, operator, is_high_priority, to_number, body_length, \
         segments, status, status_rank, provider, created_at, updated_at) VALUES \
         (?, ?, 'GB', 'Three', 1, '+447700900999', 5, 1, 'accepted', 0, 'twilio', \
         NOW(6) - INTERVAL 1 HOUR, NOW(6) - INTERVAL 1 HOUR)",
    )
    .bind(&id)
    .bind(&pair)
    .execute(&mysql)
    .await
    .unwrap();

    let detail = wait_final(&app, &admin, &id).await;
    assert_eq!(
        (detail["status"].as_str(), detail["error_code"].as_str()),
        (Some("failed"), Some("provider_uncertain"))
    );
    let events = queue
        .collect_until(Duration::from_secs(10), |e| !statuses_of(e, &id).is_empty())
        .await;
    assert_eq!(statuses_of(&events, &id), ["failed"]);
    assert_eq!(sandbox.twilio_messages().await["count"], 0);
    app.cleanup().await;
}

/// A provider that keeps failing opens the breaker: sends fail fast as
/// `provider_unavailable` without reaching it, and the gRPC health service
/// reports the provider NOT_SERVING.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_provider_opens_the_circuit_breaker() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };

    let sandbox = Sandbox::start_default();
    let app = app_with(
        &sandbox,
        Options {
            breaker_threshold: 3,
            ..Options::default()
        },
    )
    .await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin, "KE", "Safaricom").await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", app.sms_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let provider = "smsops.sms.v1.SmsService/provider/twilio";
    let status = || HealthCheckRequest {
        service: provider.into(),
    };
    assert_eq!(
        health.check(status()).await.unwrap().into_inner().status,
        ServingStatus::Serving as i32
    );

    sandbox.set_faults(json!({"error_5xx_share": 1.0})).await;
    for i in 0..3 {
        let reply = send(
            &app,
            &admin,
            &pair,
            "+254712345678",
            &format!("failing {i}"),
        )
        .await;
        assert_eq!(
            reply.body["error_code"], "provider_uncertain",
            "{}",
            reply.body
        );
    }
    let reply = send(&app, &admin, &pair, "+254712345678", "breaker open").await;
    assert_eq!(
        (
            reply.body["status"].as_str(),
            reply.body["error_code"].as_str()
        ),
        (Some("failed"), Some("provider_unavailable"))
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        health.check(status()).await.unwrap().into_inner().status,
        ServingStatus::NotServing as i32
    );
    // The service itself stays up and serving.
    let overall = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(overall.into_inner().status, ServingStatus::Serving as i32);
    app.cleanup().await;
}

/// The streaming send: a result per request, tagged with its position, bad
/// requests answered on their own without ending the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_sends_answer_each_request_in_place() {
    use smsops_proto::sms::v1::{
        SendSmsRequest, send_sms_result, sms_service_client::SmsServiceClient,
    };

    let sandbox = Sandbox::start_default();
    let app = app_with(&sandbox, Options::default()).await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin, "IN", "Jio").await;
    let requests: Vec<SendSmsRequest> = (0..250)
        .map(|n| SendSmsRequest {
            country_operator_id: pair.clone(),
            to: if n == 7 {
                "not-a-number".into()
            } else {
                format!("+9198765{n:05}")
            },
            body: format!("streamed {n}"),
            idempotency_key: format!("stream-{n}"),
            session_id: "session-1".into(),
            ..Default::default()
        })
        .collect();
    let mut client = SmsServiceClient::connect(format!("http://{}", app.sms_addr))
        .await
        .unwrap();
    let mut request = tonic::Request::new(tokio_stream::iter(requests));
    // Messages that name a session are process-svc's to send.
    let service = app.service_token().await;
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {service}").parse().unwrap(),
    );
    let mut results = client.send_sms_stream(request).await.unwrap().into_inner();
    let mut seen = Vec::new();
    while let Some(item) = tokio_stream::StreamExt::next(&mut results).await {
        let item = item.unwrap();
        match item.result.unwrap().result.unwrap() {
            send_sms_result::Result::Sms(sms) => {
                assert_eq!(sms.session_id, "session-1");
                assert_eq!(sms.status, "queued");
            }
            send_sms_result::Result::Error(err) => {
                assert_eq!((item.index, err.code.as_str()), (7, "invalid_phone"));
            }
        }
        seen.push(item.index);
    }
    assert_eq!(seen, (0..250).collect::<Vec<u64>>());
    assert_eq!(sandbox.twilio_messages().await["count"], 249);
    let page = app
        .get("/api/v1/sms?session_id=session-1&page_size=500", &admin)
        .await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 249);
    app.cleanup().await;
}

/// sms-svc keeps at most its configured number of requests open at the
/// provider (Twilio refuses an account's requests beyond its limit), and
/// the ones that waited for a slot are sent all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_requests_in_flight_stay_within_the_limit() {
    use smsops_proto::sms::v1::send_sms_result;

    let sandbox = Sandbox::start_default();
    let options = Options {
        provider_concurrency: 3,
        ..Options::default()
    };
    let app = app_with(&sandbox, options).await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin, "GB", "Vodafone").await;
    // Slow answers, so twelve requests at once would overlap if allowed.
    sandbox.set_faults(json!({"latency_ms": 100})).await;
    let messages = smsops_tests::numbered_messages(&pair, "limited", 12);
    let reply = smsops_tests::send_sms_batch(app.sms_addr, &admin, messages).await;
    for result in &reply.results {
        match &result.result {
            Some(send_sms_result::Result::Sms(sms)) => assert_eq!(sms.status, "queued"),
            other => panic!("{other:?}"),
        }
    }
    let log = sandbox.twilio_messages().await;
    assert_eq!(
        (log["count"].as_u64(), log["duplicates"].as_u64()),
        (Some(12), Some(0))
    );
    assert_eq!(log["max_in_flight"], 3, "{}", log["max_in_flight"]);
    app.cleanup().await;
}

/// Sends `count` messages straight to the sms-svc at `addr`; their ids.
async fn send_grpc(
    addr: std::net::SocketAddr,
    token: &str,
    pair: &str,
    count: usize,
) -> Vec<String> {
    use smsops_proto::sms::v1::send_sms_result;
    let messages = smsops_tests::numbered_messages(pair, "replica", count);
    let reply = smsops_tests::send_sms_batch(addr, token, messages).await;
    reply
        .results
        .into_iter()
        .map(|result| match result.result {
            Some(send_sms_result::Result::Sms(sms)) => sms.id,
            other => panic!("not sent: {other:?}"),
        })
        .collect()
}

/// Waits for the `accepted` event of every message in `ids`; all events read.
async fn accepted_events(queue: &mut EventQueue, ids: &[String]) -> Vec<Event> {
    fn accepted(events: &[Event]) -> HashSet<&str> {
        events
            .iter()
            .filter(|e| e.body["status"] == "accepted")
            .filter_map(|e| e.body["message_id"].as_str())
            .collect()
    }
    let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let events = queue
        .collect_until(Duration::from_secs(20), |events| {
            wanted.is_subset(&accepted(events))
        })
        .await;
    assert!(
        wanted.is_subset(&accepted(&events)),
        "some accepted events never came"
    );
    events
}

/// Two replicas share one database: one relays the outbox, so each event is
/// published once; when it stops, the other takes over within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_relays_the_outbox_and_another_takes_over() {
    let sandbox = Sandbox::start_default();
    let mut app = app_with(&sandbox, Options::default()).await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin, "GB", "Replicas").await;
    let second = app.spawn_sms_replica(smsops_tests::free_addr()).await;
    let leading = "smsops_sms_outbox_relay_leading";
    let mut queue = EventQueue::bind(&app.exchange).await;

    let mut ids = send_grpc(app.sms_addr, &admin, &pair, 40).await;
    ids.extend(send_grpc(second.addr, &admin, &pair, 40).await);
    for id in &ids {
        wait_final(&app, &admin, id).await;
    }
    let mut events = accepted_events(&mut queue, &ids).await;
    // Whatever is still on its way; nothing more should come.
    events.extend(queue.collect_until(Duration::from_secs(2), |_| false).await);
    let distinct: HashSet<&str> = events.iter().map(|e| e.message_id.as_str()).collect();
    assert_eq!(events.len(), 80 * 4, "events published more than once");
    assert_eq!(distinct.len(), 80 * 4);
    let first_leads = app.prometheus_sum("sms-svc", leading).await;
    let second_leads = app.prometheus_sum_at(second.prometheus, leading).await;
    assert_eq!((first_leads, second_leads), (1.0, 0.0));

    // The relay goes; the standby publishes what comes next.
    app.stop_sms().await;
    let ids = send_grpc(second.addr, &admin, &pair, 20).await;
    accepted_events(&mut queue, &ids).await;
    assert_eq!(app.prometheus_sum_at(second.prometheus, leading).await, 1.0);
    second.stop().await;
    app.cleanup().await;
}

/// The relay's lock lives with its connection: when the database drops that
/// connection, the relay stops publishing and a replica (maybe the same
/// one, on a new connection) takes the lock again, so events keep flowing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_loses_its_lock_connection_hands_over() {
    let sandbox = Sandbox::start_default();
    let app = app_with(&sandbox, Options::default()).await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin, "GB", "Handover").await;
    let second = app.spawn_sms_replica(smsops_tests::free_addr()).await;
    let mut queue = EventQueue::bind(&app.exchange).await;
    let mysql = sqlx::MySqlPool::connect("mysql://root@127.0.0.1:3306")
        .await
        .unwrap();
    let holder = || async {
        sqlx::query_as::<_, (Option<i64>,)>(
            "SELECT IS_USED_LOCK(CONCAT('smsops.outbox_relay.', SHA1(?)))",
        )
        .bind(&app.sms_db)
        .fetch_one(&mysql)
        .await
        .unwrap()
        .0
    };
    let first = poll(50, holder)
        .await
        .expect("no replica took the relay lock");

    sqlx::query(&format!("KILL CONNECTION {first}"))
        .execute(&mysql)
        .await
        .unwrap();
    let next = poll(100, || async { holder().await.filter(|id| *id != first) }).await;
    assert!(next.is_some(), "nobody took the relay lock again");
    let leading = "smsops_sms_outbox_relay_leading";
    let leaders = || async {
        app.prometheus_sum("sms-svc", leading).await
            + app.prometheus_sum_at(second.prometheus, leading).await
    };
    let one = poll(50, || async { Some(leaders().await).filter(|n| *n == 1.0) }).await;
    assert_eq!(one, Some(1.0), "not exactly one replica relays");
    let ids = send_grpc(second.addr, &admin, &pair, 20).await;
    accepted_events(&mut queue, &ids).await;
    mysql.close().await;
    second.stop().await;
    app.cleanup().await;
}

/// Asks `probe` every 100 ms until it answers, at most `tries` times.
async fn poll<T, F: std::future::Future<Output = Option<T>>>(
    tries: usize,
    mut probe: impl FnMut() -> F,
) -> Option<T> {
    for _ in 0..tries {
        if let Some(answer) = probe().await {
            return Some(answer);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}
