use reqwest::{Method, StatusCode};
use serde_json::json;
use smsops_proto::operator::v1::{
    CreatePairRequest, operator_service_client::OperatorServiceClient,
};
use smsops_tests::{NOTIFY_EMAIL, SERVICE_EMAIL, TestApp, USER_PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_get_403_on_every_admin_route_and_admins_pass() {
    let app = TestApp::spawn().await;
    let admin = app.admin_tokens().await.access;
    let (user_id, user) = app.new_user().await;
    let (other_id, _) = app.new_user().await;
    let pair = app
        .post(
            "/api/v1/country-operators",
            Some(&admin),
            json!({"country": "NG", "operator": "MTN"}),
        )
        .await
        .id();

    let admin_routes = [
        (Method::GET, "/api/v1/users".to_string(), None),
        (
            Method::PATCH,
            format!("/api/v1/users/{other_id}"),
            Some(json!({"role": "admin"})),
        ),
        (Method::DELETE, format!("/api/v1/users/{other_id}"), None),
        (
            Method::POST,
            "/api/v1/country-operators".to_string(),
            Some(json!({"country": "NG", "operator": "Glo"})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/country-operators/{pair}"),
            Some(json!({"operator": "MTN NG"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/country-operators/{pair}"),
            None,
        ),
    ];
    for (method, path, body) in &admin_routes {
        let reply = app
            .call(method.clone(), path, Some(&user.access), body.clone())
            .await;
        reply.assert_error(403, "forbidden");
    }
    // Nothing changed behind the 403s.
    let reply = app
        .get(&format!("/api/v1/country-operators/{pair}"), &admin)
        .await;
    assert_eq!(reply.body["operator"], "MTN");

    // A user cannot make itself admin.
    let reply = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{user_id}"),
            Some(&user.access),
            Some(json!({"role": "admin"})),
        )
        .await;
    reply.assert_error(403, "forbidden");
    assert_eq!(
        app.get("/api/v1/auth/me", &user.access).await.body["role"],
        "operator"
    );

    // The admin passes every one of them.
    // Pages of two: the three users, and process-svc's service account.
    let mut emails = Vec::new();
    let mut path = "/api/v1/users?page_size=2".to_string();
    loop {
        let reply = app.get(&path, &admin).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let items = reply.body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        emails.extend(
            items
                .iter()
                .map(|u| u["email"].as_str().unwrap().to_string()),
        );
        match reply.body["next_page_token"].as_str() {
            Some(next) => path = format!("/api/v1/users?page_size=2&page_token={next}"),
            None => break,
        }
    }
    emails.retain(|email| email != SERVICE_EMAIL && email != NOTIFY_EMAIL);
    assert_eq!(emails.len(), 3, "{emails:?}");
    for (method, path, body) in admin_routes {
        let reply = app.call(method.clone(), &path, Some(&admin), body).await;
        assert!(
            reply.status.is_success(),
            "{method} {path}: {} {}",
            reply.status,
            reply.body
        );
    }

    // A promoted user is admin on its next token; a deleted user cannot sign in.
    // The email is read first: the promotion revokes the old token within
    // the verifier's 1 s poll, so reading it afterwards races that poll.
    let email = app.get("/api/v1/auth/me", &user.access).await.body["email"]
        .as_str()
        .unwrap()
        .to_string();
    let reply = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{user_id}"),
            Some(&admin),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(reply.body["role"], "admin");
    // The token of the old role stops working within the verifier's poll.
    let mut old_role = app.get("/api/v1/auth/me", &user.access).await.status;
    for _ in 0..50 {
        if old_role == StatusCode::UNAUTHORIZED {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        old_role = app.get("/api/v1/auth/me", &user.access).await.status;
    }
    assert_eq!(old_role, StatusCode::UNAUTHORIZED);
    let promoted = app.sign_in(&email, USER_PASSWORD).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.get("/api/v1/users", &promoted).await.status,
        StatusCode::OK
    );
    app.call(
        Method::PATCH,
        &format!("/api/v1/users/{user_id}"),
        Some(&admin),
        Some(json!({"role": "superuser"})),
    )
    .await
    .assert_error(400, "invalid_argument");
    app.call(
        Method::DELETE,
        "/api/v1/users/no-such-user",
        Some(&admin),
        None,
    )
    .await
    .assert_error(404, "not_found");

    // Admins cannot lock themselves out.
    let admin_id = app.get("/api/v1/auth/me", &admin).await.id();
    app.call(
        Method::PATCH,
        &format!("/api/v1/users/{admin_id}"),
        Some(&admin),
        Some(json!({"role": "operator"})),
    )
    .await
    .assert_error(403, "forbidden");

    app.cleanup().await;
}

/// The gateway is not the only gate: operator-svc checks the forwarded token
/// and the role itself, so a caller that reaches it directly gains nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_enforce_tokens_and_roles_themselves() {
    let app = TestApp::spawn().await;
    let (_, user) = app.new_user().await;
    let mut client = OperatorServiceClient::connect(format!("http://{}", app.operator_addr))
        .await
        .unwrap();
    let create = || CreatePairRequest {
        country: "KE".into(),
        operator: "Safaricom".into(),
        is_high_priority: false,
    };

    let status = client.create_pair(create()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    let mut request = tonic::Request::new(create());
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", user.access).parse().unwrap(),
    );
    let status = client.create_pair(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        status.metadata().get("smsops-error-code").unwrap(),
        "forbidden"
    );

    let admin = app.admin_tokens().await.access;
    let mut request = tonic::Request::new(create());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {admin}").parse().unwrap());
    assert_eq!(
        client
            .create_pair(request)
            .await
            .unwrap()
            .into_inner()
            .country,
        "KE"
    );

    app.cleanup().await;
}
