//! Quotas on sending (issue 14): per user a minute and a day, one cap a day
//! on the provider account, reserved before a send is accepted and held
//! across sms-svc replicas; sessions refused at creation when their quota
//! could never carry them, and paused, not failed, when it is full.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use smsops_proto::sms::v1::{SendSmsRequest, sms_service_client::SmsServiceClient};
use smsops_tests::{Options, Reply, TestApp, free_addr, sandbox::Sandbox};

async fn new_pair(app: &TestApp) -> String {
    let admin = app.admin_tokens().await.access;
    let reply = app
        .post(
            "/api/v1/country-operators",
            Some(&admin),
            json!({"country": "GB", "operator": format!("op-{}", uuid::Uuid::new_v4().simple())}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.id()
}

/// Reads the session every 200 ms until `done` holds for it (at most 20 s).
async fn session_until(
    app: &TestApp,
    token: &str,
    id: &str,
    what: &str,
    mut done: impl FnMut(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = app.get(&format!("/api/v1/sessions/{id}"), token).await.body;
        if done(&seen) {
            return seen;
        }
        assert!(Instant::now() < deadline, "never {what}: {seen}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits, if need be, so the next seconds stay within one clock minute:
/// a minute's window that turned mid-test would hold twice the quota.
pub async fn clear_of_a_minute_boundary() {
    let second = chrono::Utc::now().timestamp() % 60;
    if second > 45 {
        tokio::time::sleep(Duration::from_secs((61 - second) as u64)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_sends_against_a_quota_of_twenty_take_twenty_across_two_replicas() {
    let sandbox = Sandbox::start_default();
    let app = TestApp::spawn_with(Options {
        twilio_base_url: sandbox.url.clone(),
        ..Options::default()
    })
    .await;
    let second = app.spawn_sms_replica(free_addr()).await;
    let pair = new_pair(&app).await;
    let (_, token) = app
        .operator_with_quota(json!({"per_minute": 20, "per_day": 1000}))
        .await;
    let replicas = [app.sms_addr, second.addr];

    clear_of_a_minute_boundary().await;
    let mut sends = Vec::new();
    for n in 0..50usize {
        let (token, pair) = (token.clone(), pair.clone());
        let addr = replicas[n % 2];
        sends.push(tokio::spawn(async move {
            let mut client = SmsServiceClient::connect(format!("http://{addr}"))
                .await
                .unwrap();
            let mut request = tonic::Request::new(SendSmsRequest {
                country_operator_id: pair,
                to: format!("+4477009{n:05}"),
                body: format!("quota {n}"),
                ..Default::default()
            });
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
            client.send_sms(request).await
        }));
    }
    let (mut accepted, mut refused) = (0, 0);
    for send in sends {
        match send.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status}");
                let meta = status.metadata();
                assert_eq!(meta.get("smsops-error-code").unwrap(), "quota_exceeded");
                let retry: u32 = meta
                    .get("smsops-retry-after")
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=60).contains(&retry), "retry after {retry}");
                refused += 1;
            }
        }
    }
    assert_eq!((accepted, refused), (20, 30));

    // Through the gateway: 429 with the code and Retry-After.
    let reply = app
        .post(
            "/api/v1/sms",
            Some(&token),
            json!({"country_operator_id": pair, "to": "+447700900999", "body": "one more"}),
        )
        .await;
    reply.assert_error(429, "quota_exceeded");
    let retry: u32 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "retry after {retry}");
    // Only 20 were ever recorded: a refused send is not accepted.
    let listed = app
        .get(
            &format!("/api/v1/sms?country_operator_id={pair}&page_size=100"),
            &token,
        )
        .await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 20);
    second.stop().await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_are_shown_changed_and_reset_by_admins() {
    let app = TestApp::spawn_with(Options {
        quotas: auth_svc::core::RoleQuotas {
            admin: smsops_common::auth::Quota::UNLIMITED,
            operator: smsops_common::auth::Quota {
                per_minute: Some(600),
                per_day: Some(100_000),
            },
        },
        ..Options::default()
    })
    .await;
    let admin = app.admin_tokens().await.access;
    let (id, old) = app.new_user_as("operator").await;
    let users = app.get("/api/v1/users?page_size=200", &admin).await;
    let user = users.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        user["quota"],
        json!({"per_minute": 600, "per_day": 100000, "source": "role"})
    );
    let path = format!("/api/v1/users/{id}/quota");
    let reply = app
        .call(
            Method::PUT,
            &path,
            Some(&admin),
            Some(json!({"per_day": 5})),
        )
        .await;
    assert_eq!(
        reply.body["quota"],
        json!({"per_minute": null, "per_day": 5, "source": "user"})
    );
    // The token from before carried the old quota: it stops working.
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.get("/api/v1/auth/me", &old.access).await.status != StatusCode::UNAUTHORIZED {
        assert!(Instant::now() < deadline, "old token still accepted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reply = app
        .call(
            Method::PUT,
            &path,
            Some(&admin),
            Some(json!({"reset": true})),
        )
        .await;
    assert_eq!(reply.body["quota"]["source"], "role");
    assert_eq!(reply.body["quota"]["per_minute"], 600);
    // Both changes are in the audit log, before and after.
    let audit = app
        .get("/api/v1/audit?kind=user.quota_changed", &admin)
        .await;
    let items = audit.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", audit.body);
    assert_eq!(items[1]["after"]["per_day"], 5, "{}", audit.body);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_account_has_one_cap_a_day_for_everyone() {
    let sandbox = Sandbox::start_default();
    let app = TestApp::spawn_with(Options {
        twilio_base_url: sandbox.url.clone(),
        account_daily_cap: Some(3),
        ..Options::default()
    })
    .await;
    let pair = new_pair(&app).await;
    let (_, alice) = app.new_user_as("operator").await;
    let (_, bob) = app.new_user_as("operator").await;
    let send = |token: String, n: u32| {
        let (app, pair) = (&app, pair.clone());
        async move {
            app.post(
                "/api/v1/sms",
                Some(&token),
                json!({"country_operator_id": pair, "to": format!("+44770090{n:04}"), "body": "x"}),
            )
            .await
        }
    };
    for n in 0..2 {
        assert_eq!(
            send(alice.access.clone(), n).await.status,
            StatusCode::ACCEPTED
        );
    }
    assert_eq!(
        send(bob.access.clone(), 2).await.status,
        StatusCode::ACCEPTED
    );
    let refused: Reply = send(bob.access.clone(), 3).await;
    refused.assert_error(429, "quota_exceeded");
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("provider account"),
        "{}",
        refused.body
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_past_their_quota_are_refused_at_creation_and_pause_when_it_is_full() {
    let sandbox = Sandbox::start_default();
    let app = TestApp::spawn_with(Options {
        twilio_base_url: sandbox.url.clone(),
        ..Options::default()
    })
    .await;
    let pair = new_pair(&app).await;
    let (_, token) = app
        .operator_with_quota(json!({"per_minute": 600, "per_day": 5}))
        .await;
    let session = |rate: f64, recipients: Value| {
        json!({"country_operator_id": pair, "rate_per_minute": rate,
               "recipients": recipients, "template": "q {n}"})
    };
    // Defect 1: a user could ask 600,000 a minute over 100,000,000 numbers.
    app.post(
        "/api/v1/sessions",
        Some(&token),
        session(
            600_000.0,
            json!({"range": {"first": "+447700000000", "count": 100_000_000}}),
        ),
    )
    .await
    .assert_error(400, "invalid_rate");
    app.post(
        "/api/v1/sessions",
        Some(&token),
        session(
            600.0,
            json!({"range": {"first": "+447700000000", "count": 6}}),
        ),
    )
    .await
    .assert_error(400, "invalid_recipients");

    // Within both, it runs until the day's five are sent, then waits.
    let reply = app
        .post(
            "/api/v1/sessions",
            Some(&token),
            session(600.0, json!({"numbers": ["+447700900100"]})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let id = reply.id();
    let seen = session_until(&app, &token, &id, "paused", |seen| {
        seen["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("paused: quota_exceeded"))
    })
    .await;
    assert_eq!(seen["state"], "paused", "{seen}");
    assert!(
        seen["paused_reason"]
            .as_str()
            .is_some_and(|why| why.starts_with("quota_exceeded")),
        "{seen}"
    );
    assert_eq!(seen["counters"]["accepted"], 5, "{seen}");
    assert_eq!(seen["counters"]["failed"], 0, "{seen}");
    // Paused, not failing: after its runner has saved its progress twice
    // more (it does each heartbeat), still five, still paused.
    let saves = |view: &Value| view["updated_at"].as_str().unwrap_or_default().to_string();
    let mut seen_saves = vec![saves(&seen)];
    let later = session_until(&app, &token, &id, "saved twice more", |later| {
        if !seen_saves.contains(&saves(later)) {
            seen_saves.push(saves(later));
        }
        seen_saves.len() >= 3
    })
    .await;
    assert_eq!(later["state"], "paused", "{later}");
    assert_eq!(later["counters"]["accepted"], 5, "{later}");
    let listed = app
        .get(
            &format!("/api/v1/sms?session_id={id}&page_size=100"),
            &token,
        )
        .await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 5);
    let stopped = app
        .post(
            &format!("/api/v1/sessions/{id}/stop"),
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(stopped.body["state"], "stopped", "{}", stopped.body);
    app.cleanup().await;
}
