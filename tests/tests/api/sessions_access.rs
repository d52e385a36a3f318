//! Sessions that people can trust (issue 14): a session is its starter's
//! and the admins', through the gateway and on process-svc's own port; a
//! rate holds a pair for an hour at most between two messages; a pair is
//! not deleted from under its session.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use smsops_common::ApiError;
use smsops_proto::process::v1::{RetirePairRequest, SessionActionRequest};
use smsops_tests::{Options, TestApp, sandbox::Sandbox};

use super::sessions::{act, app_with, authed, new_pair, replica_client, session_body, start};

async fn session(app: &TestApp, token: &str, id: &str) -> Value {
    let reply = app.get(&format!("/api/v1/sessions/{id}"), token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

/// The actions in a session's audit trail, oldest first.
async fn audit_actions(app: &TestApp, token: &str, id: &str) -> Vec<String> {
    let reply = app
        .get(&format!("/api/v1/sessions/{id}/audit"), token)
        .await;
    reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap().to_string())
        .collect()
}

/// The stable code of a refused gRPC call.
fn grpc_code(status: &tonic::Status) -> &'static str {
    ApiError::from_status(status).code.as_str()
}

/// Waits (5 s at most) until the session has sent more than `after`.
async fn wait_sent_past(app: &TestApp, token: &str, id: &str, after: u64) -> Value {
    for _ in 0..100 {
        let body = session(app, token, id).await;
        if body["counters"]["submitted"].as_u64().unwrap() > after {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("session {id} sent nothing past {after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_its_starter_or_an_admin_stops_or_restarts_a_session() {
    let sandbox = Sandbox::start_default();
    let app = app_with(&sandbox, Options::default()).await;
    let admin = app.admin_tokens().await.access;
    let (alice_id, alice) = app.new_user().await;
    let (_, bob) = app.new_user().await;
    let pair = new_pair(&app, &admin, "GB", false).await;
    let id = start(&app, &alice.access, session_body(&pair, 600.0, "owned")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_sent_past(&app, &alice.access, &id, 0).await;

    // Through the gateway.
    for action in ["stop", "restart"] {
        let refused = act(&app, &bob.access, &id, action, json!({})).await;
        refused.assert_error(403, "forbidden");
        let message = refused.body["message"].as_str().unwrap();
        assert!(
            message.contains("started by another user") && message.contains(action),
            "{message}"
        );
    }
    // Straight on process-svc's port, with the same token.
    let mut client = replica_client(app.process_addr).await;
    let request = || SessionActionRequest {
        id: id.clone(),
        force: false,
    };
    let status = client
        .stop_session(authed(&bob.access, request()))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), grpc_code(&status)),
        (tonic::Code::PermissionDenied, "forbidden")
    );
    let status = client
        .restart_session(authed(&bob.access, request()))
        .await
        .unwrap_err();
    assert_eq!(grpc_code(&status), "forbidden");
    // Nothing changed behind the refusals: it runs, as alice's, and goes on sending.
    let now = session(&app, &alice.access, &id).await;
    assert_eq!(now["state"], "running", "{now}");
    assert_eq!(now["started_by"], alice_id.as_str());
    assert!(now["stopped_by"].is_null(), "{now}");
    assert_eq!(now["config"]["rate_per_minute"], 600.0);
    let sent = now["counters"]["submitted"].as_u64().unwrap();
    wait_sent_past(&app, &alice.access, &id, sent).await;
    assert_eq!(audit_actions(&app, &admin, &id).await, ["start"]);

    // Its starter may.
    let restarted = act(&app, &alice.access, &id, "restart", json!({})).await;
    assert_eq!(restarted.status, StatusCode::OK, "{}", restarted.body);
    let stopped = act(&app, &alice.access, &id, "stop", json!({})).await;
    assert_eq!(stopped.body["state"], "stopped", "{}", stopped.body);
    // A stopped session is no more bob's than a running one.
    act(&app, &bob.access, &id, "restart", json!({}))
        .await
        .assert_error(403, "forbidden");
    let status = client
        .restart_session(authed(&bob.access, request()))
        .await
        .unwrap_err();
    assert_eq!(grpc_code(&status), "forbidden");
    assert_eq!(session(&app, &admin, &id).await["state"], "stopped");

    // An admin may; the session stays alice's.
    let restarted = act(&app, &admin, &id, "restart", json!({})).await;
    assert_eq!(restarted.status, StatusCode::OK, "{}", restarted.body);
    assert_eq!(restarted.body["started_by"], alice_id.as_str());
    let stopped = act(&app, &admin, &id, "stop", json!({})).await;
    assert_eq!(stopped.body["state"], "stopped", "{}", stopped.body);
    let restarted = act(&app, &alice.access, &id, "restart", json!({})).await;
    assert_eq!(restarted.status, StatusCode::OK, "{}", restarted.body);
    let stopped = client
        .stop_session(authed(&alice.access, request()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stopped.state, "stopped");

    // With alice deleted, her session is the admins' alone.
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{alice_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    act(&app, &bob.access, &id, "restart", json!({}))
        .await
        .assert_error(403, "forbidden");
    let restarted = act(&app, &admin, &id, "restart", json!({})).await;
    assert_eq!(restarted.status, StatusCode::OK, "{}", restarted.body);
    let stopped = act(&app, &admin, &id, "stop", json!({})).await;
    assert_eq!(stopped.body["state"], "stopped", "{}", stopped.body);
    assert_eq!(
        audit_actions(&app, &admin, &id).await,
        [
            "start", "restart", "stop", "restart", "stop", "restart", "stop", "restart", "stop"
        ]
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_runs_at_one_message_an_hour_at_the_slowest() {
    let sandbox = Sandbox::start_default();
    let app = app_with(&sandbox, Options::default()).await;
    let admin = app.admin_tokens().await.access;
    let (_, user) = app.new_user().await;
    let pair = new_pair(&app, &admin, "IE", false).await;

    for rate in [1e-7, 0.0166] {
        let reply = app
            .post(
                "/api/v1/sessions",
                Some(&user.access),
                session_body(&pair, rate, "slow"),
            )
            .await;
        reply.assert_error(400, "invalid_rate");
        assert!(
            reply.body["message"]
                .as_str()
                .unwrap()
                .contains("one message an hour"),
            "{}",
            reply.body
        );
    }
    let none = app
        .get(
            &format!("/api/v1/sessions?country_operator_id={pair}"),
            &admin,
        )
        .await;
    assert_eq!(none.body["items"], json!([]), "{}", none.body);

    let hourly = start(
        &app,
        &user.access,
        session_body(&pair, 1.0 / 60.0, "hourly"),
    )
    .await;
    assert_eq!(hourly["config"]["rate_per_minute"], 1.0 / 60.0);
    let id = hourly["id"].as_str().unwrap();
    let stopped = act(&app, &user.access, id, "stop", json!({})).await;
    assert_eq!(stopped.body["state"], "stopped", "{}", stopped.body);

    // The document states the floor the API holds to.
    let openapi = app.get("/api/v1/openapi.json", &admin).await.body;
    let rate = &openapi["components"]["schemas"]["NewSession"]["properties"]["rate_per_minute"];
    assert_eq!(rate["minimum"], 1.0 / 60.0, "{rate}");
    assert_eq!(rate["maximum"], 600_000.0, "{rate}");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_is_not_deleted_while_its_session_is_active() {
    let sandbox = Sandbox::start_default();
    let mut app = app_with(&sandbox, Options::default()).await;
    let admin = app.admin_tokens().await.access;
    let (_, user) = app.new_user().await;
    let pair = new_pair(&app, &admin, "PT", false).await;
    let pair_path = format!("/api/v1/country-operators/{pair}");
    let id = start(&app, &user.access, session_body(&pair, 600.0, "kept")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_sent_past(&app, &user.access, &id, 0).await;

    let refused = app
        .call(Method::DELETE, &pair_path, Some(&admin), None)
        .await;
    refused.assert_error(409, "pair_in_use");
    assert!(
        refused.body["message"].as_str().unwrap().contains(&id),
        "{}",
        refused.body
    );
    assert_eq!(app.get(&pair_path, &admin).await.status, StatusCode::OK);
    // The session goes on, and none of its sends fails for want of the pair
    // (with the pair gone, 20 of them would fail it with pair_not_found).
    let sent = session(&app, &user.access, &id).await["counters"]["submitted"]
        .as_u64()
        .unwrap();
    let later = wait_sent_past(&app, &user.access, &id, sent + 20).await;
    assert_eq!(later["state"], "running", "{later}");
    assert_eq!(later["counters"]["failed"], 0, "{later}");

    // Only an admin may retire a pair, on process-svc's own port too.
    let mut client = replica_client(app.process_addr).await;
    let retire = || RetirePairRequest {
        country_operator_id: pair.clone(),
    };
    let status = client
        .retire_pair(authed(&user.access, retire()))
        .await
        .unwrap_err();
    assert_eq!(grpc_code(&status), "forbidden");
    let status = client
        .retire_pair(authed(&admin, retire()))
        .await
        .unwrap_err();
    assert_eq!(grpc_code(&status), "pair_in_use");

    // Stopped, the session lets the pair go.
    let stopped = act(&app, &user.access, &id, "stop", json!({})).await;
    assert_eq!(stopped.body["state"], "stopped", "{}", stopped.body);
    let deleted = app
        .call(Method::DELETE, &pair_path, Some(&admin), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    app.get(&pair_path, &admin)
        .await
        .assert_error(404, "not_found");
    // Its session cannot run again on a pair that is gone.
    act(&app, &user.access, &id, "restart", json!({}))
        .await
        .assert_error(404, "pair_not_found");
    assert_eq!(session(&app, &admin, &id).await["state"], "stopped");
    app.post(
        "/api/v1/sessions",
        Some(&user.access),
        session_body(&pair, 60.0, "gone"),
    )
    .await
    .assert_error(404, "pair_not_found");

    // When process-svc cannot say whether a pair is in use, nothing is deleted.
    let other = new_pair(&app, &admin, "PT", false).await;
    let other_path = format!("/api/v1/country-operators/{other}");
    app.stop_process().await;
    let refused = app
        .call(Method::DELETE, &other_path, Some(&admin), None)
        .await;
    refused.assert_error(503, "unavailable");
    assert!(refused.headers.contains_key("retry-after"), "{refused:?}");
    assert_eq!(app.get(&other_path, &admin).await.status, StatusCode::OK);
    app.call(
        Method::DELETE,
        "/api/v1/country-operators/no-such-pair",
        Some(&admin),
        None,
    )
    .await
    .assert_error(404, "not_found");
    app.cleanup().await;
}
