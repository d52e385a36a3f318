use reqwest::{Method, StatusCode};
use serde_json::json;
use smsops_tests::{TestApp, USER_PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_sign_in_and_manage_pairs() {
    let app = TestApp::spawn().await;

    // An invited account has the invitation's role, whatever case its
    // email was typed in.
    let email = format!("Ops-{}@Example.com", uuid::Uuid::new_v4().simple());
    let invitation = app.invitation("operator").await;
    let reply = app
        .sign_up_invited(&email, USER_PASSWORD, &invitation)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["role"], "operator");
    assert_eq!(reply.body["email"], email.to_lowercase());
    // A failed sign-up does not spend the invitation it came with.
    let again = app.invitation("viewer").await;
    app.sign_up_invited(&email.to_uppercase(), USER_PASSWORD, &again)
        .await
        .assert_error(409, "user_exists");
    let other = format!("other-{}@example.com", uuid::Uuid::new_v4().simple());
    let reply = app.sign_up_invited(&other, USER_PASSWORD, &again).await;
    assert_eq!(reply.body["role"], "viewer", "{}", reply.body);
    // Spent now.
    let third = format!("third-{}@example.com", uuid::Uuid::new_v4().simple());
    app.sign_up_invited(&third, USER_PASSWORD, &again)
        .await
        .assert_error(403, "forbidden");

    let reply = app.sign_in(&email.to_lowercase(), USER_PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["token_type"], "Bearer");
    assert_eq!(reply.body["expires_in"], 900);
    let user = reply.body["access_token"].as_str().unwrap().to_string();
    let me = app.get("/api/v1/auth/me", &user).await;
    assert_eq!(
        (me.status, me.body["email"].as_str()),
        (StatusCode::OK, Some(email.to_lowercase().as_str()))
    );

    let admin = app.admin_tokens().await.access;
    let reply = app
        .post(
            "/api/v1/country-operators",
            Some(&admin),
            json!({"country": "gb", "operator": "  Vodafone ", "is_high_priority": true}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(
        (
            reply.body["country"].as_str(),
            reply.body["operator"].as_str()
        ),
        (Some("GB"), Some("Vodafone"))
    );
    assert_eq!(reply.body["is_high_priority"], true);
    let id = reply.id();

    // Any signed-in user reads.
    let reply = app
        .get(&format!("/api/v1/country-operators/{id}"), &user)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["operator"], "Vodafone");

    // Seven more pairs: five in DE (two high priority), two in FR.
    for (country, operator, high) in [
        ("DE", "Telekom", true),
        ("de", "Vodafone", false),
        ("De", "O2", true),
        ("DE", "1&1", false),
        ("DE", "Freenet", false),
        ("FR", "Orange", false),
        ("FR", "SFR", false),
    ] {
        let body = json!({"country": country, "operator": operator, "is_high_priority": high});
        let reply = app
            .post("/api/v1/country-operators", Some(&admin), body)
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }

    // Paging over more than one page, with a filter, in creation order.
    let mut seen = Vec::new();
    let mut path = "/api/v1/country-operators?country=de&page_size=2".to_string();
    let mut pages = 0;
    loop {
        let reply = app.get(&path, &user).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        pages += 1;
        for item in reply.body["items"].as_array().unwrap() {
            assert_eq!(item["country"], "DE");
            seen.push(item["operator"].as_str().unwrap().to_string());
        }
        match reply.body["next_page_token"].as_str() {
            Some(token) => {
                path =
                    format!("/api/v1/country-operators?country=DE&page_size=2&page_token={token}")
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["Telekom", "Vodafone", "O2", "1&1", "Freenet"]);

    let reply = app
        .get(
            "/api/v1/country-operators?country=DE&high_priority=true",
            &user,
        )
        .await;
    let names: Vec<_> = reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["operator"].clone())
        .collect();
    assert_eq!(names, [json!("Telekom"), json!("O2")]);
    let reply = app
        .get("/api/v1/country-operators?high_priority=true", &user)
        .await;
    assert_eq!(reply.body["items"].as_array().unwrap().len(), 3);
    let reply = app.get("/api/v1/country-operators", &user).await;
    assert_eq!(reply.body["items"].as_array().unwrap().len(), 8);
    assert!(reply.body["next_page_token"].is_null());

    // Partial update keeps the fields it does not name.
    let path = format!("/api/v1/country-operators/{id}");
    let reply = app
        .call(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"is_high_priority": false})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        (
            reply.body["operator"].as_str(),
            reply.body["is_high_priority"].as_bool()
        ),
        (Some("Vodafone"), Some(false))
    );
    let reply = app
        .call(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"operator": "Vodafone UK"})),
        )
        .await;
    assert_eq!(reply.body["operator"], "Vodafone UK");
    assert_ne!(reply.body["updated_at"], reply.body["created_at"]);
    // Renaming onto an existing pair of the same country is a conflict.
    let reply = app
        .call(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"country": "de", "operator": "telekom"})),
        )
        .await;
    reply.assert_error(409, "pair_exists");

    let reply = app.call(Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    app.get(&path, &user).await.assert_error(404, "not_found");
    app.call(Method::DELETE, &path, Some(&admin), None)
        .await
        .assert_error(404, "not_found");
    app.call(
        Method::PATCH,
        &path,
        Some(&admin),
        Some(json!({"operator": "x"})),
    )
    .await
    .assert_error(404, "not_found");

    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_pairs_are_refused_even_when_racing() {
    let app = TestApp::spawn().await;
    let admin = app.admin_tokens().await.access;
    let create = |country: &str, operator: &str| {
        app.post(
            "/api/v1/country-operators",
            Some(&admin),
            json!({"country": country, "operator": operator}),
        )
    };
    assert_eq!(create("US", "Verizon").await.status, StatusCode::CREATED);
    create("US", "Verizon")
        .await
        .assert_error(409, "pair_exists");
    create("us", "VERIZON")
        .await
        .assert_error(409, "pair_exists");
    create("US", " verizon ")
        .await
        .assert_error(409, "pair_exists");
    // The same operator name in another country is a different pair.
    assert_eq!(create("CA", "Verizon").await.status, StatusCode::CREATED);

    let racers = (0..20).map(|_| create("JP", "Docomo"));
    let statuses: Vec<u16> = futures::future::join_all(racers)
        .await
        .iter()
        .map(|r| r.status.as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        19,
        "{statuses:?}"
    );
    let reply = app
        .get("/api/v1/country-operators?country=JP", &admin)
        .await;
    assert_eq!(reply.body["items"].as_array().unwrap().len(), 1);

    app.cleanup().await;
}
