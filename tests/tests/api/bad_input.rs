use reqwest::{Method, StatusCode};
use serde_json::json;
use smsops_tests::{TestApp, USER_PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_documented_4xx_codes() {
    let app = TestApp::spawn().await;
    let admin = app.admin_tokens().await.access;
    let create =
        |body: serde_json::Value| app.post("/api/v1/country-operators", Some(&admin), body);

    create(json!({"country": "XX", "operator": "Acme"}))
        .await
        .assert_error(400, "invalid_country");
    create(json!({"country": "USA", "operator": "Acme"}))
        .await
        .assert_error(400, "invalid_country");
    create(json!({"country": "", "operator": "Acme"}))
        .await
        .assert_error(400, "invalid_country");
    create(json!({"country": "US", "operator": ""}))
        .await
        .assert_error(400, "invalid_operator");
    create(json!({"country": "US", "operator": "   "}))
        .await
        .assert_error(400, "invalid_operator");
    create(json!({"country": "US", "operator": "x".repeat(51)}))
        .await
        .assert_error(400, "invalid_operator");
    // 50 characters of any script are fine, however many bytes they take.
    let cyrillic = "\u{41c}".repeat(50);
    let reply = create(json!({"country": "RU", "operator": cyrillic})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);

    // Wrong JSON types, missing fields and unknown fields.
    create(json!({"country": 12, "operator": "Acme"}))
        .await
        .assert_error(400, "invalid_argument");
    create(json!({"country": "US", "operator": "Acme", "is_high_priority": "yes"}))
        .await
        .assert_error(400, "invalid_argument");
    create(json!({"country": "US"}))
        .await
        .assert_error(400, "invalid_argument");
    create(json!({"country": "US", "operator": "Acme", "owner": "me"}))
        .await
        .assert_error(400, "invalid_argument");
    create(json!(["US", "Acme"]))
        .await
        .assert_error(400, "invalid_argument");

    // Malformed JSON, wrong content type, oversized body.
    let raw = |body: &'static str, content_type: &'static str| {
        app.http
            .post(app.url("/api/v1/country-operators"))
            .bearer_auth(&admin)
            .header("content-type", content_type)
            .body(body)
    };
    let send = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        (status, body["code"].as_str().unwrap().to_string())
    };
    assert_eq!(
        send(raw("{\"country\": \"US\",", "application/json")).await,
        (400, "invalid_json".into())
    );
    assert_eq!(
        send(raw("", "application/json")).await,
        (400, "invalid_json".into())
    );
    assert_eq!(
        send(raw("country=US", "application/x-www-form-urlencoded")).await,
        (415, "unsupported_media_type".into())
    );
    let huge = json!({"country": "US", "operator": "x".repeat(70 * 1024)}).to_string();
    let request = app
        .http
        .post(app.url("/api/v1/country-operators"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(huge);
    assert_eq!(send(request).await, (413, "payload_too_large".into()));
    let huge = json!({"email": "x".repeat(70 * 1024), "password": USER_PASSWORD}).to_string();
    let request = app
        .http
        .post(app.url("/api/v1/auth/sign-up"))
        .header("content-type", "application/json")
        .body(huge);
    assert_eq!(send(request).await, (413, "payload_too_large".into()));

    // Query strings.
    app.get("/api/v1/country-operators?high_priority=maybe", &admin)
        .await
        .assert_error(400, "invalid_argument");
    app.get("/api/v1/country-operators?page_size=0x10", &admin)
        .await
        .assert_error(400, "invalid_argument");
    app.get("/api/v1/country-operators?page_size=1000", &admin)
        .await
        .assert_error(400, "invalid_argument");
    app.get("/api/v1/country-operators?page_token=%2A%2A", &admin)
        .await
        .assert_error(400, "invalid_argument");
    app.get("/api/v1/country-operators?country=ZZ", &admin)
        .await
        .assert_error(400, "invalid_country");
    app.get("/api/v1/country-operators?colour=red", &admin)
        .await
        .assert_error(400, "invalid_argument");

    // Sign-up rules.
    app.sign_up("no-at-sign", USER_PASSWORD)
        .await
        .assert_error(400, "invalid_email");
    app.sign_up("a@b", USER_PASSWORD)
        .await
        .assert_error(400, "invalid_email");
    app.sign_up("", USER_PASSWORD)
        .await
        .assert_error(400, "invalid_email");
    app.sign_up("short@smsops.test", "123456789")
        .await
        .assert_error(400, "invalid_password");
    app.sign_up("long@smsops.test", &"p".repeat(2000))
        .await
        .assert_error(400, "invalid_password");
    let reply = app
        .post(
            "/api/v1/auth/sign-up",
            None,
            json!({"email": "r@smsops.test", "password": USER_PASSWORD, "role": "admin"}),
        )
        .await;
    reply.assert_error(400, "invalid_argument");

    // Unknown routes and methods.
    app.get("/api/v1/nothing-here", &admin)
        .await
        .assert_error(404, "not_found");
    let wrong_method = app
        .call(
            Method::PUT,
            "/api/v1/country-operators",
            Some(&admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(wrong_method.headers["allow"], "GET, POST");
    wrong_method.assert_error(405, "method_not_allowed");
    let wrong_method = app
        .call(Method::POST, "/api/v1/sms/some-id", Some(&admin), None)
        .await;
    assert_eq!(wrong_method.headers["allow"], "GET");
    app.get("/api/v1/country-operators/not-an-id", &admin)
        .await
        .assert_error(404, "not_found");

    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_sign_up_are_rate_limited_per_ip() {
    let app = TestApp::spawn_with(smsops_tests::Options {
        auth_rate_per_minute: 6,
        auth_burst: 3,
        ..Default::default()
    })
    .await;
    for _ in 0..3 {
        app.sign_in("nobody@smsops.test", USER_PASSWORD)
            .await
            .assert_error(401, "invalid_credentials");
    }
    let reply = app.sign_in("nobody@smsops.test", USER_PASSWORD).await;
    reply.assert_error(429, "rate_limited");
    let retry: u64 = reply
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&retry), "retry-after {retry}");
    app.sign_up("new@smsops.test", USER_PASSWORD)
        .await
        .assert_error(429, "rate_limited");
    // Other routes are not limited by it.
    let status = app.call(Method::GET, "/healthz", None, None).await.status;
    assert_eq!(status, StatusCode::OK);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_and_docs_are_served() {
    let app = TestApp::spawn().await;
    let spec = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(spec.status, StatusCode::OK);
    for path in [
        "/api/v1/auth/sign-in",
        "/api/v1/country-operators",
        "/api/v1/country-operators/{id}",
        "/api/v1/users/{id}",
        "/readyz",
    ] {
        assert!(
            spec.body["paths"].get(path).is_some(),
            "{path} missing from the spec"
        );
    }
    // Every answer an operation can give is in the document: 401 where a
    // token is needed, 400 where a query string or JSON body is read, 415
    // where a body is.
    for (path, item) in spec.body["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = &operation["responses"];
            let secured = operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty());
            if secured {
                assert!(responses.get("401").is_some(), "{method} {path}: no 401");
            }
            let queried = operation["parameters"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["in"] == "query"));
            if queried {
                assert!(responses.get("400").is_some(), "{method} {path}: no 400");
            }
            if operation.get("requestBody").is_some() {
                for status in ["400", "415"] {
                    assert!(
                        responses.get(status).is_some(),
                        "{method} {path}: no {status}"
                    );
                }
            }
        }
    }
    let docs = app.http.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("swagger"));
    app.cleanup().await;
}
