//! The audit log: every write by a person (or process-svc on its own) is
//! recorded once, with its actor, kind, target and fields before and after;
//! it filters and pages, only admins read it, it survives auth-svc's
//! restart, it holds no secret, and a write made while auth-svc is away
//! is recorded once it is back.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use smsops_proto::auth::v1::{RecordAuditRequest, auth_service_client::AuthServiceClient};
use smsops_tests::{ADMIN_PASSWORD, Options, SERVICE_EMAIL, TestApp, USER_PASSWORD};

/// Every record `query` selects, page by page (`page_size` each).
async fn records(app: &TestApp, admin: &str, query: &[(&str, &str)], page_size: u32) -> Vec<Value> {
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut params: Vec<(&str, String)> =
            query.iter().map(|(k, v)| (*k, v.to_string())).collect();
        params.push(("page_size", page_size.to_string()));
        if let Some(token) = &token {
            params.push(("page_token", token.clone()));
        }
        let path = format!(
            "/api/v1/audit?{}",
            serde_urlencoded::to_string(&params).unwrap()
        );
        let reply = app.get(&path, admin).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        let items = reply.body["items"].as_array().unwrap();
        assert!(items.len() <= page_size as usize);
        all.extend(items.iter().cloned());
        match reply.body["next_page_token"].as_str() {
            Some(next) => token = Some(next.to_string()),
            None => return all,
        }
    }
}

/// The one record of `kind` on `target`; fails unless there is exactly one.
fn one<'a>(all: &'a [Value], kind: &str, target: &str) -> &'a Value {
    let found: Vec<&Value> = all
        .iter()
        .filter(|r| r["kind"] == kind && r["target"] == target)
        .collect();
    assert_eq!(found.len(), 1, "{kind} on {target}: {found:?}");
    found[0]
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[track_caller]
fn by(record: &Value, id: &str, email: &str, role: &str) {
    assert_eq!(
        (
            record["actor"]["id"].as_str(),
            record["actor"]["email"].as_str(),
            record["actor"]["role"].as_str(),
        ),
        (Some(id), Some(email), Some(role)),
        "{record}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_is_recorded_once_with_its_actor_target_and_change() {
    let mut app = TestApp::spawn().await;
    let admin = app.admin_tokens().await.access;
    let admin_id = app.get("/api/v1/auth/me", &admin).await.id();
    let admin_email = app.admin_email.clone();

    // Users and roles: three sign-ups by invitation, a role change, a deletion.
    let (viewer_id, viewer) = app.new_user_as("viewer").await;
    let (operator_id, operator) = app.new_user_as("operator").await;
    let (changed_id, _) = app.new_user_as("viewer").await;
    let operator_email = app.get("/api/v1/auth/me", &operator.access).await.body["email"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/users/{changed_id}");
    let reply = app
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"role": "operator"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let reply = app
        .call(reqwest::Method::DELETE, &path, Some(&admin), None)
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);

    // An invitation made and withdrawn; an API key made and revoked.
    let invited = app
        .post(
            "/api/v1/invitations",
            Some(&admin),
            json!({"role": "viewer", "email": "invited@smsops.test", "expires_in_hours": 2}),
        )
        .await;
    assert_eq!(invited.status, StatusCode::CREATED, "{}", invited.body);
    let (invitation_id, invitation) = (
        invited.id(),
        invited.body["token"].as_str().unwrap().to_string(),
    );
    let reply = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/invitations/{invitation_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let created = app
        .post(
            "/api/v1/api-keys",
            Some(&admin),
            json!({"name": "audited key"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let (key_id, key) = (
        created.id(),
        created.body["key"].as_str().unwrap().to_string(),
    );
    for _ in 0..2 {
        // The second revocation changes nothing and records nothing.
        let reply = app
            .call(
                reqwest::Method::DELETE,
                &format!("/api/v1/api-keys/{key_id}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }

    // A pair created, renamed and deleted; another for a session.
    let name = format!("op-{}", uuid::Uuid::new_v4().simple());
    let pair = app
        .post(
            "/api/v1/country-operators",
            Some(&admin),
            json!({"country": "gb", "operator": name}),
        )
        .await
        .id();
    let renamed = format!("{name}-renamed");
    let pair_path = format!("/api/v1/country-operators/{pair}");
    let reply = app
        .call(
            reqwest::Method::PATCH,
            &pair_path,
            Some(&admin),
            Some(json!({"operator": renamed})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let reply = app
        .call(reqwest::Method::DELETE, &pair_path, Some(&admin), None)
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    let session_pair = app
        .post(
            "/api/v1/country-operators",
            Some(&admin),
            json!({"country": "FR", "operator": format!("{name}-fr")}),
        )
        .await
        .id();

    // The operator starts a session and stops it.
    let started = app
        .post(
            "/api/v1/sessions",
            Some(&operator.access),
            json!({
                "country_operator_id": session_pair,
                "rate_per_minute": 6.0,
                "recipients": ["+33612345678", "+33612345679"],
                "template": "audit {n}",
                "limit": 10,
            }),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let session = started.id();
    let stopped = app
        .post(
            &format!("/api/v1/sessions/{session}/stop"),
            Some(&operator.access),
            json!({}),
        )
        .await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.body);
    assert_eq!(stopped.body["state"], "stopped");

    // The admin changes the rules' cooldown and raises an alert.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let midway = now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut rules = app.get("/api/v1/alerts/rules", &admin).await.body;
    assert_eq!(rules["cooldown_seconds"], 600, "{rules}");
    rules["cooldown_seconds"] = json!(300);
    let reply = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/alerts/rules",
            Some(&admin),
            Some(rules),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let alert = app
        .post(
            "/api/v1/alerts",
            Some(&admin),
            json!({"message": "audit me"}),
        )
        .await;
    assert_eq!(alert.status, StatusCode::CREATED, "{}", alert.body);
    let alert = alert.id();

    let all = records(&app, &admin, &[], 200).await;

    // Each write once, with its actor, target and change.
    let record = one(&all, "user.role_changed", &changed_id);
    by(record, &admin_id, &admin_email, "admin");
    assert_eq!(record["actor"]["kind"], "user");
    assert_eq!(record["before"], json!({"role": "viewer"}));
    assert_eq!(record["after"], json!({"role": "operator"}));
    let record = one(&all, "user.deleted", &changed_id);
    by(record, &admin_id, &admin_email, "admin");
    assert_eq!(record["before"]["role"], "operator");
    assert!(record["after"].is_null(), "{record}");
    // A sign-up is the new user's own write.
    let record = one(&all, "user.signed_up", &operator_id);
    by(record, &operator_id, &operator_email, "operator");
    assert_eq!(record["after"]["role"], "operator");
    assert!(record["after"]["invitation"].is_string(), "{record}");
    one(&all, "user.signed_up", &viewer_id);

    let record = one(&all, "invitation.created", &invitation_id);
    by(record, &admin_id, &admin_email, "admin");
    assert_eq!(record["after"]["role"], "viewer");
    assert_eq!(record["after"]["email"], "invited@smsops.test");
    assert!(record["before"].is_null());
    let record = one(&all, "invitation.revoked", &invitation_id);
    assert_eq!(record["before"], json!({"state": "pending"}));
    assert_eq!(record["after"], json!({"state": "revoked"}));
    // The helpers' invitations too: three sign-ups, three invitations.
    let invitations = all
        .iter()
        .filter(|r| r["kind"] == "invitation.created")
        .count();
    assert_eq!(invitations, 4);

    let record = one(&all, "api_key.created", &key_id);
    by(record, &admin_id, &admin_email, "admin");
    assert_eq!(record["after"]["name"], "audited key");
    assert!(
        record["after"]["prefix"]
            .as_str()
            .unwrap()
            .starts_with("smk_")
    );
    let record = one(&all, "api_key.revoked", &key_id);
    assert_eq!(record["before"], json!({"revoked_at": null}));
    assert!(record["after"]["revoked_at"].is_string(), "{record}");

    let record = one(&all, "pair.created", &pair);
    by(record, &admin_id, &admin_email, "admin");
    assert_eq!(
        record["after"],
        json!({"country": "GB", "operator": name, "is_high_priority": false, "route": []})
    );
    let record = one(&all, "pair.updated", &pair);
    assert_eq!(record["before"], json!({"operator": name}));
    assert_eq!(record["after"], json!({"operator": renamed}));
    let record = one(&all, "pair.deleted", &pair);
    assert_eq!(
        record["before"],
        json!({"country": "GB", "operator": renamed, "is_high_priority": false, "route": []})
    );
    assert!(record["after"].is_null());
    one(&all, "pair.created", &session_pair);

    let record = one(&all, "session.started", &session);
    by(record, &operator_id, &operator_email, "operator");
    assert_eq!(
        record["after"]["country_operator_id"],
        session_pair.as_str()
    );
    assert_eq!(record["after"]["rate_per_minute"], 6.0);
    assert_eq!(record["after"]["recipients"], 2);
    assert_eq!(record["after"]["limit"], 10);
    let record = one(&all, "session.stopped", &session);
    by(record, &operator_id, &operator_email, "operator");
    let was = record["before"]["state"].as_str().unwrap();
    assert!(["starting", "running"].contains(&was), "{record}");
    assert_eq!(record["after"], json!({"state": "stopped"}));

    let record = one(&all, "alert_rules.updated", "alert_rules");
    by(record, &admin_id, &admin_email, "admin");
    assert_eq!(record["before"], json!({"cooldown_seconds": 600}));
    assert_eq!(record["after"], json!({"cooldown_seconds": 300}));
    let record = one(&all, "alert.raised", &alert);
    assert_eq!(
        record["after"],
        json!({"rule": "manual", "message": "audit me"})
    );

    // Nothing else: 3 sign-ups, 4 invitations (2 records for the withdrawn
    // one), 2 users, 2 keys, 4 pairs, 2 session, 1 rules, 1 alert.
    assert_eq!(all.len(), 3 + 5 + 2 + 2 + 4 + 2 + 2, "{all:#?}");

    // Newest first, and no secret anywhere.
    let times: Vec<&str> = all.iter().map(|r| r["at"].as_str().unwrap()).collect();
    let parsed: Vec<chrono::DateTime<chrono::FixedOffset>> = times
        .iter()
        .map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap())
        .collect();
    assert!(parsed.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    let text = serde_json::to_string(&all).unwrap();
    // The secret is all after the prefix (`smk_`, `inv_`); it is base64url,
    // so it may hold `_` itself, and its last piece can be one letter.
    let key_secret = key.split_once('_').unwrap().1;
    let invitation_secret = invitation.split_once('_').unwrap().1;
    for secret in [
        key.as_str(),
        key_secret,
        invitation.as_str(),
        invitation_secret,
        ADMIN_PASSWORD,
        USER_PASSWORD,
        admin.as_str(),
        operator.access.as_str(),
        operator.refresh.as_str(),
        "$argon2",
    ] {
        assert!(!text.contains(secret), "the audit log holds {secret}");
    }

    // Filters: by actor (id, or email in any case), by kind or family, by time.
    let theirs = records(&app, &admin, &[("actor", &operator_id)], 50).await;
    let kinds: Vec<&str> = theirs.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["session.stopped", "session.started", "user.signed_up"]
    );
    let upper = operator_email.to_uppercase();
    let by_email = records(&app, &admin, &[("actor", &upper)], 50).await;
    assert_eq!(by_email, theirs);
    let deleted = records(&app, &admin, &[("kind", "pair.deleted")], 50).await;
    assert_eq!(deleted.len(), 1);
    let pairs = records(&app, &admin, &[("kind", "pair")], 50).await;
    assert_eq!(pairs.len(), 4);
    assert!(
        pairs
            .iter()
            .all(|r| r["kind"].as_str().unwrap().starts_with("pair."))
    );
    let late = records(&app, &admin, &[("since", &midway)], 50).await;
    let kinds: Vec<&str> = late.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["alert.raised", "alert_rules.updated"]);
    let both = records(
        &app,
        &admin,
        &[("actor", &admin_id), ("kind", "session")],
        50,
    )
    .await;
    assert!(both.is_empty(), "{both:?}");
    for bad in [
        "kind=Pair",
        "kind=pair.",
        "since=yesterday",
        "page_token=not-a-token",
        "page_size=201",
        "who=me",
    ] {
        let reply = app.get(&format!("/api/v1/audit?{bad}"), &admin).await;
        reply.assert_error(400, "invalid_argument");
    }

    // Paging: small pages make up the whole log, in the same order.
    let paged = records(&app, &admin, &[], 3).await;
    assert_eq!(paged, all);

    // Admins only.
    for token in [&viewer.access, &operator.access] {
        app.get("/api/v1/audit", token)
            .await
            .assert_error(403, "forbidden");
    }

    // It is kept across a restart of auth-svc.
    app.stop_auth().await;
    let key_file = app.key_dir.join("signing.pem");
    app.start_auth(key_file, vec![]).await;
    let admin = app.admin_tokens().await.access;
    assert_eq!(records(&app, &admin, &[], 200).await, all);
    app.cleanup().await;
}

/// Calls auth-svc's RecordAudit directly with `token`.
async fn record_directly(
    app: &TestApp,
    token: &str,
    entry: RecordAuditRequest,
) -> Result<bool, tonic::Status> {
    let mut auth = AuthServiceClient::connect(format!("http://{}", app.auth_addr))
        .await
        .unwrap();
    let mut request = tonic::Request::new(entry);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    auth.record_audit(request)
        .await
        .map(|reply| reply.into_inner().duplicate)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_made_while_auth_svc_is_away_is_recorded_once_it_is_back() {
    let mut app = TestApp::spawn().await;
    let admin = app.admin_tokens().await.access;
    // operator-svc and the gateway hold the token keys from here on.
    let reply = app.get("/api/v1/country-operators", &admin).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    app.stop_auth().await;
    let made = app
        .post(
            "/api/v1/country-operators",
            Some(&admin),
            json!({"country": "DE", "operator": format!("op-{}", uuid::Uuid::new_v4().simple())}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let written = chrono::Utc::now();
    let pair = made.id();
    assert_eq!(
        app.prometheus_sum("operator-svc", "smsops_audit_pending")
            .await,
        1.0
    );
    assert!(
        app.prometheus_sum("operator-svc", "smsops_audit_record_failures_total")
            .await
            >= 1.0
    );
    // At least one retry has failed by now (the failure counter above).
    let back = chrono::Utc::now();
    let key_file = app.key_dir.join("signing.pem");
    app.start_auth(key_file, vec![]).await;
    let mut found = Vec::new();
    for _ in 0..150 {
        found = records(&app, &admin, &[("kind", "pair.created")], 50).await;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let record = one(&found, "pair.created", &pair);
    assert_eq!(record["actor"]["email"], app.admin_email.as_str());
    assert_eq!(record["after"]["country"], "DE");
    // Recorded when the write happened, not when auth-svc came back.
    let at = chrono::DateTime::parse_from_rfc3339(record["at"].as_str().unwrap()).unwrap();
    assert!(at <= written && written < back, "{record}");
    assert_eq!(
        app.prometheus_sum("operator-svc", "smsops_audit_pending")
            .await,
        0.0
    );
    let text = app
        .http
        .get(format!("http://{}/metrics", app.prometheus["operator-svc"]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let recorded = text.lines().find(|line| {
        line.starts_with("smsops_audit_records_total{") && line.contains("outcome=\"recorded\"")
    });
    assert!(recorded.is_some_and(|line| line.ends_with(" 1")), "{text}");

    // A retry is recorded once: the writer's id makes it the same record.
    let entry = RecordAuditRequest {
        id: uuid::Uuid::now_v7().to_string(),
        at: String::new(),
        kind: "pair.updated".into(),
        target: pair.clone(),
        before: r#"{"operator":"a","password":"hunter2"}"#.into(),
        after: r#"{"operator":"b"}"#.into(),
    };
    assert_eq!(
        record_directly(&app, &admin, entry.clone()).await.ok(),
        Some(false)
    );
    assert_eq!(
        record_directly(&app, &admin, entry.clone()).await.ok(),
        Some(true)
    );
    let updated = records(&app, &admin, &[("kind", "pair.updated")], 50).await;
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0]["before"]["password"], "[redacted]");

    // The actor is the token's: a viewer records nothing, an operator
    // nothing but sessions, a token too old nothing at all.
    let (viewer_id, viewer) = app.new_user_as("viewer").await;
    let (_, operator) = app.new_user_as("operator").await;
    let fresh = |kind: &str| RecordAuditRequest {
        id: uuid::Uuid::now_v7().to_string(),
        kind: kind.into(),
        target: "x".into(),
        ..Default::default()
    };
    let refused = record_directly(&app, &viewer.access, fresh("session.stopped")).await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::PermissionDenied);
    let refused = record_directly(&app, &operator.access, fresh("user.role_changed")).await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::PermissionDenied);
    assert!(
        record_directly(&app, &operator.access, fresh("session.stopped"))
            .await
            .is_ok()
    );
    let refused = record_directly(&app, "not-a-token", fresh("session.stopped")).await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::Unauthenticated);
    // A token that lapsed an hour ago still records a write made while
    // it was good (a retry after an outage), not one made since.
    let lapsed = app.expired_token(&viewer_id);
    let mut late = fresh("pair.deleted");
    late.at = (chrono::Utc::now() - chrono::TimeDelta::minutes(90))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(record_directly(&app, &lapsed, late).await.ok(), Some(false));
    let refused = record_directly(&app, &lapsed, fresh("pair.deleted")).await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::InvalidArgument);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_process_svc_does_on_its_own_is_recorded_as_its_account() {
    // No provider answers at the tests' default Twilio URL: the session fails.
    let app = TestApp::spawn_with(Options {
        failure_streak: 5,
        ..Options::default()
    })
    .await;
    let admin = app.admin_tokens().await.access;
    let pair = app
        .post(
            "/api/v1/country-operators",
            Some(&admin),
            json!({"country": "PT", "operator": format!("op-{}", uuid::Uuid::new_v4().simple())}),
        )
        .await
        .id();
    let started = app
        .post(
            "/api/v1/sessions",
            Some(&admin),
            json!({
                "country_operator_id": pair,
                "rate_per_minute": 600.0,
                "recipients": ["+351912345678"],
                "template": "doomed {n}",
            }),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let session = started.id();
    let mut failed = Vec::new();
    for _ in 0..150 {
        failed = records(&app, &admin, &[("kind", "session.failed")], 50).await;
        if !failed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let record = one(&failed, "session.failed", &session);
    assert_eq!(record["actor"]["kind"], "service", "{record}");
    assert_eq!(record["actor"]["email"], SERVICE_EMAIL);
    assert_eq!(record["actor"]["role"], "service");
    assert_eq!(record["before"], json!({"state": "running"}));
    assert_eq!(record["after"]["state"], "failed");
    assert!(
        record["after"]["reason"]
            .as_str()
            .unwrap()
            .contains("in a row"),
        "{record}"
    );
    let sessions = records(&app, &admin, &[("kind", "session")], 50).await;
    let record = one(&sessions, "session.started", &session);
    assert_eq!(record["actor"]["kind"], "user");
    // The session's own trail is kept as it was.
    let trail = app
        .get(&format!("/api/v1/sessions/{session}/audit"), &admin)
        .await;
    let actions: Vec<&str> = trail.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["start", "fail"]);
    app.cleanup().await;
}
