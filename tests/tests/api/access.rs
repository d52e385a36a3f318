//! Who may do what (issue 14): sign-up by invitation, viewers who read
//! masked numbers, API-key tokens that only report, rights that end within
//! seconds of a change, and idempotency keys that belong to their caller.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use smsops_proto::{
    auth::v1::{UpdateUserRoleRequest, auth_service_client::AuthServiceClient},
    operator::v1::{ListPairsRequest, operator_service_client::OperatorServiceClient},
    process::v1::{CreateSessionRequest, process_service_client::ProcessServiceClient},
    sms::v1::{SendSmsRequest, sms_service_client::SmsServiceClient},
};
use smsops_tests::{Options, Reply, SERVICE_EMAIL, TestApp, USER_PASSWORD, sandbox::Sandbox};
use tokio_tungstenite::tungstenite::Message;

/// Revocations must take effect within this (the bound).
const WITHIN: Duration = Duration::from_secs(5);

fn bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// One SMS straight at sms-svc's gRPC port, past the gateway.
async fn send_direct(
    app: &TestApp,
    token: &str,
    request: SendSmsRequest,
) -> Result<tonic::Response<smsops_proto::sms::v1::Sms>, tonic::Status> {
    let mut sms = SmsServiceClient::connect(format!("http://{}", app.sms_addr))
        .await
        .unwrap();
    sms.send_sms(bearer(request, token)).await
}

/// A message to `to` on `pair`, everything else left default.
fn sms_to(pair: &str, to: &str) -> SendSmsRequest {
    SendSmsRequest {
        country_operator_id: pair.to_string(),
        to: to.into(),
        body: "hi".into(),
        ..Default::default()
    }
}

fn email() -> String {
    format!("new-{}@smsops.test", uuid::Uuid::new_v4().simple())
}

async fn new_pair(app: &TestApp, country: &str) -> String {
    let admin = app.admin_tokens().await.access;
    let reply = app
        .post(
            "/api/v1/country-operators",
            Some(&admin),
            json!({"country": country, "operator": "Vodafone"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.id()
}

async fn send(app: &TestApp, token: &str, pair: &str, to: &str, key: Option<&str>) -> Reply {
    let mut body = json!({"country_operator_id": pair, "to": to, "body": "hello"});
    if let Some(key) = key {
        body["idempotency_key"] = json!(key);
    }
    app.post("/api/v1/sms", Some(token), body).await
}

/// Polls `check` until it holds; how long that took, or a panic after `WITHIN`.
async fn within<F, Fut>(what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < WITHIN {
        if check().await {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: still not refused after {WITHIN:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_is_by_invitation_and_the_service_account_cannot_be_taken() {
    let app = TestApp::spawn().await;
    // Defect 1: open sign-up gave send rights. By default, no invitation, no account.
    app.sign_up(&email(), USER_PASSWORD)
        .await
        .assert_error(403, "forbidden");

    // An invitation for one email is for that email only, and only admins make them.
    let admin = app.admin_tokens().await.access;
    let bound = email();
    let reply = app
        .post(
            "/api/v1/invitations",
            Some(&admin),
            json!({"role": "viewer", "email": bound, "expires_in_hours": 1}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let (id, token) = (
        reply.id(),
        reply.body["token"].as_str().unwrap().to_string(),
    );
    assert_eq!(reply.body["state"], "pending");
    app.sign_up_invited(&email(), USER_PASSWORD, &token)
        .await
        .assert_error(403, "forbidden");
    let reply = app.sign_up_invited(&bound, USER_PASSWORD, &token).await;
    assert_eq!(reply.body["role"], "viewer", "{}", reply.body);
    let listed = app.get("/api/v1/invitations", &admin).await;
    let item = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(item["state"], "used");
    assert!(
        !listed.body.to_string().contains(&token),
        "invitations are shown once"
    );
    let (_, operator) = app.new_user().await;
    app.post(
        "/api/v1/invitations",
        Some(&operator.access),
        json!({"role": "admin"}),
    )
    .await
    .assert_error(403, "forbidden");
    app.post(
        "/api/v1/invitations",
        Some(&admin),
        json!({"role": "service"}),
    )
    .await
    .assert_error(400, "invalid_argument");
    app.post(
        "/api/v1/invitations",
        Some(&admin),
        json!({"role": "viewer", "expires_in_hours": 100000}),
    )
    .await
    .assert_error(400, "invalid_argument");

    // A withdrawn invitation is spent for nobody.
    let reply = app
        .post(
            "/api/v1/invitations",
            Some(&admin),
            json!({"role": "operator"}),
        )
        .await;
    let (id, token) = (
        reply.id(),
        reply.body["token"].as_str().unwrap().to_string(),
    );
    let reply = app
        .call(
            Method::DELETE,
            &format!("/api/v1/invitations/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(reply.body["state"], "revoked", "{}", reply.body);
    app.sign_up_invited(&email(), USER_PASSWORD, &token)
        .await
        .assert_error(403, "forbidden");

    // auth-svc made process-svc's account at start-up: its email is taken,
    // and admins can neither demote nor delete it.
    let invitation = app.invitation("admin").await;
    app.sign_up_invited(SERVICE_EMAIL, USER_PASSWORD, &invitation)
        .await
        .assert_error(409, "user_exists");
    let mut users = app.get("/api/v1/users?page_size=200", &admin).await.body["items"]
        .as_array()
        .unwrap()
        .clone();
    users.retain(|u| u["email"] == SERVICE_EMAIL);
    assert_eq!(users[0]["role"], "service");
    let service_id = users[0]["id"].as_str().unwrap().to_string();
    app.call(
        Method::PATCH,
        &format!("/api/v1/users/{service_id}"),
        Some(&admin),
        Some(json!({"role": "viewer"})),
    )
    .await
    .assert_error(403, "forbidden");
    app.call(
        Method::DELETE,
        &format!("/api/v1/users/{service_id}"),
        Some(&admin),
        None,
    )
    .await
    .assert_error(403, "forbidden");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_sign_up_makes_viewers_and_closed_sign_up_makes_no_one() {
    let app = TestApp::spawn_with(Options {
        signup: auth_svc::core::SignupPolicy::Open,
        ..Options::default()
    })
    .await;
    let address = email();
    let reply = app.sign_up(&address, USER_PASSWORD).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["role"], "viewer");
    let viewer = app.sign_in(&address, USER_PASSWORD).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let pair = new_pair(&app, "GB").await;
    send(&app, &viewer, &pair, "+447700900671", None)
        .await
        .assert_error(403, "forbidden");
    app.post(
        "/api/v1/sessions",
        Some(&viewer),
        json!({"country_operator_id": pair, "rate_per_minute": 600000,
               "recipients": {"range": {"first": "+447700000000", "count": 100000000}},
               "template": "x {n}"}),
    )
    .await
    .assert_error(403, "forbidden");
    app.cleanup().await;

    let app = TestApp::spawn_with(Options {
        signup: auth_svc::core::SignupPolicy::Closed,
        ..Options::default()
    })
    .await;
    app.sign_up(&email(), USER_PASSWORD)
        .await
        .assert_error(403, "forbidden");
    let admin = app.admin_tokens().await.access;
    app.post(
        "/api/v1/invitations",
        Some(&admin),
        json!({"role": "viewer"}),
    )
    .await
    .assert_error(403, "forbidden");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_read_everything_with_numbers_masked() {
    let app = TestApp::spawn().await;
    let (_, operator) = app.new_user_as("operator").await;
    let (_, viewer) = app.new_user_as("viewer").await;
    let pair = new_pair(&app, "GB").await;
    let sent = send(&app, &operator.access, &pair, "+447700900671", None).await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    assert_eq!(sent.body["to"], "+447700900671");
    let id = sent.id();

    let shown = app.get(&format!("/api/v1/sms/{id}"), &viewer.access).await;
    assert_eq!(shown.body["to"], "+44770****671", "{}", shown.body);
    let listed = app.get("/api/v1/sms", &viewer.access).await;
    assert_eq!(listed.body["items"][0]["to"], "+44770****671");
    let full = app
        .get(&format!("/api/v1/sms/{id}"), &operator.access)
        .await;
    assert_eq!(full.body["to"], "+447700900671");

    let reply = app
        .post(
            "/api/v1/sessions",
            Some(&operator.access),
            json!({"country_operator_id": pair, "rate_per_minute": 1,
                   "recipients": {"numbers": ["+447700900123"]}, "template": "x {n}"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let session = reply.id();
    let seen = app
        .get(&format!("/api/v1/sessions/{session}"), &viewer.access)
        .await;
    assert_eq!(
        seen.body["config"]["recipients"]["numbers"][0], "+44770****123",
        "{}",
        seen.body
    );
    let listed = app.get("/api/v1/sessions", &viewer.access).await;
    assert_eq!(
        listed.body["items"][0]["config"]["recipients"]["numbers"][0],
        "+44770****123"
    );
    // Viewers stop nothing either.
    app.post(
        &format!("/api/v1/sessions/{session}/stop"),
        Some(&viewer.access),
        json!({}),
    )
    .await
    .assert_error(403, "forbidden");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_token_only_reports_results_wherever_it_is_sent() {
    let app = TestApp::spawn().await;
    let pair = new_pair(&app, "GB").await;
    let ingest = app.ingest_token().await;

    // Defect 2: through the gateway...
    send(&app, &ingest, &pair, "+447700900671", None)
        .await
        .assert_error(403, "forbidden");
    app.post(
        "/api/v1/sessions",
        Some(&ingest),
        json!({"country_operator_id": pair, "rate_per_minute": 60,
               "recipients": {"numbers": ["+447700900123"]}, "template": "x"}),
    )
    .await
    .assert_error(403, "forbidden");

    // ... and straight at each service.
    let status = send_direct(&app, &ingest, sms_to(&pair, "+447700900671"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status}");
    let mut process = ProcessServiceClient::connect(format!("http://{}", app.process_addr))
        .await
        .unwrap();
    let status = process
        .create_session(bearer(
            CreateSessionRequest {
                country_operator_id: pair.clone(),
                config: None,
            },
            &ingest,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status}");
    let mut auth = AuthServiceClient::connect(format!("http://{}", app.auth_addr))
        .await
        .unwrap();
    let status = auth
        .me(bearer(smsops_proto::auth::v1::MeRequest {}, &ingest))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status}");
    // Looking pairs up is part of reporting: that one read stays open to it.
    let mut operator = OperatorServiceClient::connect(format!("http://{}", app.operator_addr))
        .await
        .unwrap();
    let pairs = operator
        .list_pairs(bearer(ListPairsRequest::default(), &ingest))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pairs.items.len(), 1);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demoted_deleted_and_signed_out_tokens_stop_working_within_seconds() {
    let app = TestApp::spawn().await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, "GB").await;

    // Defect 3: a demoted admin kept admin rights for up to 15 minutes.
    let (deputy_id, deputy) = app.new_user_as("admin").await;
    let (victim_id, _) = app.new_user_as("viewer").await;
    let victim = format!("/api/v1/users/{victim_id}");
    let reply = app
        .call(
            Method::PATCH,
            &victim,
            Some(&deputy.access),
            Some(json!({"role": "operator"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let reply = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{deputy_id}"),
            Some(&admin),
            Some(json!({"role": "operator"})),
        )
        .await;
    assert_eq!(reply.body["role"], "operator");
    let took = within("a demoted admin's token on REST", || async {
        app.call(
            Method::PATCH,
            &victim,
            Some(&deputy.access),
            Some(json!({"role": "viewer"})),
        )
        .await
        .status
            == StatusCode::UNAUTHORIZED
    })
    .await;
    println!("demotion took effect on REST after {took:?}");
    // auth-svc refuses it too when called directly (each service follows
    // the revocations on its own).
    let auth = AuthServiceClient::connect(format!("http://{}", app.auth_addr))
        .await
        .unwrap();
    within("a demoted admin's token at auth-svc", || {
        let mut auth = auth.clone();
        let request = bearer(
            UpdateUserRoleRequest {
                id: victim_id.clone(),
                role: 4,
            },
            &deputy.access,
        );
        async move {
            auth.update_user_role(request)
                .await
                .is_err_and(|status| status.code() == tonic::Code::Unauthenticated)
        }
    })
    .await;
    // The demoted user's next token has the new role and its rights.
    let renewed = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": deputy.refresh}),
        )
        .await;
    let fresh = renewed.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        app.get("/api/v1/auth/me", &fresh).await.body["role"],
        "operator"
    );
    app.call(Method::GET, "/api/v1/users", Some(&fresh), None)
        .await
        .assert_error(403, "forbidden");

    // A deleted user's token stops sending, on REST and at sms-svc itself.
    let (doomed_id, doomed) = app.new_user_as("operator").await;
    let sent = send(&app, &doomed.access, &pair, "+447700900671", None).await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    let mut socket = open_live(&app, &doomed.access).await;
    app.call(
        Method::DELETE,
        &format!("/api/v1/users/{doomed_id}"),
        Some(&admin),
        None,
    )
    .await;
    within("a deleted user's token on REST", || async {
        send(&app, &doomed.access, &pair, "+447700900671", None)
            .await
            .status
            == StatusCode::UNAUTHORIZED
    })
    .await;
    within("a deleted user's token at sms-svc", || async {
        send_direct(&app, &doomed.access, sms_to(&pair, "+447700900671"))
            .await
            .is_err_and(|status| status.code() == tonic::Code::Unauthenticated)
    })
    .await;
    // A live socket opened with it is closed with 4001.
    let code = closed_with(&mut socket).await;
    assert_eq!(code, Some(4001));

    // Signing out ends the access token it was done with, not just the refresh token.
    let (_, leaving) = app.new_user_as("operator").await;
    let reply = app
        .post(
            "/api/v1/auth/sign-out",
            Some(&leaving.access),
            json!({"refresh_token": leaving.refresh}),
        )
        .await;
    assert!(reply.status.is_success(), "{}", reply.body);
    within("a signed-out token", || async {
        app.get("/api/v1/auth/me", &leaving.access).await.status == StatusCode::UNAUTHORIZED
    })
    .await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_socket_stays_with_a_fresh_token_and_closes_at_expiry() {
    let app = TestApp::spawn().await;
    let (_, user) = app.new_user_as("viewer").await;
    let mut socket = open_live(&app, &user.access).await;
    // A fresh token of the same user keeps the socket.
    let fresh = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": user.refresh}),
        )
        .await
        .body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    socket
        .send(Message::Text(json!({"token": fresh}).to_string().into()))
        .await
        .unwrap();
    let renewed = next_of_type(&mut socket, "renewed").await;
    assert!(renewed["expires_at"].as_i64().unwrap() > chrono::Utc::now().timestamp());
    // Another user's token is not taken.
    let (_, other) = app.new_user_as("viewer").await;
    socket
        .send(Message::Text(
            json!({"token": other.access}).to_string().into(),
        ))
        .await
        .unwrap();
    let refused = next_of_type(&mut socket, "error").await;
    assert_eq!(refused["code"], "forbidden");
    drop(socket);

    // An expired token is refused up front; one that lapses mid-feed closes it.
    let expired = app.expired_token("someone");
    let url = format!(
        "{}/api/v1/live?token={expired}",
        app.base_url.replace("http://", "ws://")
    );
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_belong_to_their_caller() {
    let sandbox = Sandbox::start_default();
    let app = TestApp::spawn_with(Options {
        twilio_base_url: sandbox.url.clone(),
        ..Options::default()
    })
    .await;
    let pair = new_pair(&app, "GB").await;
    let (_, alice) = app.new_user_as("operator").await;
    let (_, bob) = app.new_user_as("operator").await;

    // Defect 4: Bob posting Alice's key got Alice's message, number and all,
    // and his own SMS was silently not sent.
    let first = send(&app, &alice.access, &pair, "+447700900001", Some("order-1")).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    let theirs = send(&app, &bob.access, &pair, "+447700900002", Some("order-1")).await;
    assert_eq!(theirs.status, StatusCode::ACCEPTED, "{}", theirs.body);
    assert_ne!(theirs.id(), first.id());
    assert_eq!(theirs.body["to"], "+447700900002");
    // The same caller, same key, same message: the first one back.
    let again = send(&app, &alice.access, &pair, "+447700900001", Some("order-1")).await;
    assert_eq!(again.id(), first.id());
    // The same key for something else is a mistake, said as such.
    send(&app, &alice.access, &pair, "+447700900003", Some("order-1"))
        .await
        .assert_error(409, "idempotency_mismatch");

    // Nobody but process-svc writes a session's messages.
    let request = SendSmsRequest {
        session_id: uuid::Uuid::new_v4().to_string(),
        ..sms_to(&pair, "+447700900004")
    };
    let status = send_direct(&app, &alice.access, request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status}");

    // A user posting `<session>:<seq>` keys makes the session skip nothing.
    let reply = app
        .post(
            "/api/v1/sessions",
            Some(&alice.access),
            json!({"country_operator_id": pair, "rate_per_minute": 600,
                   "recipients": {"numbers": ["+447700900100"]}, "template": "m {n}",
                   "limit": 20}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let session = reply.id();
    for seq in 10..20 {
        let key = format!("{session}:{seq}");
        let reply = send(&app, &bob.access, &pair, "+447700900999", Some(&key)).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = app
            .get(&format!("/api/v1/sessions/{session}"), &alice.access)
            .await
            .body;
        if state["state"] == "stopped" || Instant::now() > deadline {
            assert_eq!(state["state"], "stopped", "{state}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let listed = app
        .get(
            &format!("/api/v1/sms?session_id={session}&page_size=100"),
            &alice.access,
        )
        .await;
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 20, "{}", listed.body);
    assert!(items.iter().all(|m| m["to"] == "+447700900100"));
    app.cleanup().await;
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open_live(app: &TestApp, token: &str) -> Socket {
    let url = format!(
        "{}/api/v1/live?token={token}",
        app.base_url.replace("http://", "ws://")
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    next_of_type(&mut socket, "ready").await;
    socket
}

async fn next_of_type(socket: &mut Socket, kind: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let message: Value = serde_json::from_str(&text).unwrap();
                if message["type"] == kind {
                    return message;
                }
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("no {kind} message: {other:?}"),
        }
    }
}

/// The close code the socket ends with, waiting up to [`WITHIN`].
async fn closed_with(socket: &mut Socket) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => {}
            Ok(None) | Ok(Some(Err(_))) => return None,
            Err(_) => panic!("socket still open after {WITHIN:?}"),
        }
    }
}
