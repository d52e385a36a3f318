use std::time::{SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header, decode_header, encode};
use reqwest::StatusCode;
use serde_json::{Value, json};
use smsops_tests::{TestApp, Tokens};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_expired_and_malformed_tokens_get_401() {
    let app = TestApp::spawn().await;
    let real = app.admin_tokens().await.access;
    assert_eq!(
        app.get("/api/v1/auth/me", &real).await.status,
        StatusCode::OK
    );
    let kid = decode_header(&real).unwrap().kid.unwrap();
    let base = payload(&real);
    let pem = std::fs::read(app.key_dir.join("signing.pem")).unwrap();
    let key = EncodingKey::from_ed_pem(&pem).unwrap();
    let sign = |claims: &Value| {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.clone());
        encode(&header, claims, &key).unwrap()
    };
    // Our own key signs a valid token: the harness forges correctly.
    assert_eq!(
        app.get("/api/v1/auth/me", &sign(&base)).await.status,
        StatusCode::OK
    );

    let mut cases: Vec<(&str, String)> = Vec::new();

    let (head, rest) = real.split_once('.').unwrap();
    let (body, sig) = rest.split_once('.').unwrap();
    let mut flipped = sig.to_string().into_bytes();
    flipped[5] = if flipped[5] == b'A' { b'B' } else { b'A' };
    cases.push((
        "tampered signature",
        format!("{head}.{body}.{}", String::from_utf8(flipped).unwrap()),
    ));

    let mut promoted = base.clone();
    promoted["role"] = json!("admin");
    promoted["sub"] = json!("someone-else");
    cases.push((
        "tampered payload",
        format!(
            "{head}.{}.{sig}",
            URL_SAFE_NO_PAD.encode(promoted.to_string())
        ),
    ));

    let none_header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
    cases.push(("alg none", format!("{none_header}.{body}.")));

    // HS256 keyed with the public key: the classic algorithm-confusion attack.
    let public = public_key_bytes(&pem);
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some(kid.clone());
    cases.push((
        "HS256 with the public key",
        encode(&hs_header, &base, &EncodingKey::from_secret(&public)).unwrap(),
    ));

    let mut expired = base.clone();
    expired["iat"] = json!(now() - 3600);
    expired["exp"] = json!(now() - 120);
    cases.push(("expired", sign(&expired)));

    let mut wrong_aud = base.clone();
    wrong_aud["aud"] = json!("someone-else");
    cases.push(("wrong aud", sign(&wrong_aud)));

    let mut wrong_iss = base.clone();
    wrong_iss["iss"] = json!("evil");
    cases.push(("wrong iss", sign(&wrong_iss)));

    let mut unknown_kid = Header::new(Algorithm::EdDSA);
    unknown_kid.kid = Some("not-a-key".into());
    cases.push(("unknown kid", encode(&unknown_kid, &base, &key).unwrap()));

    cases.push(("malformed header", format!("not-base64!.{body}.{sig}")));
    cases.push(("garbage", "garbage".into()));
    cases.push(("two parts", format!("{head}.{body}")));

    for (name, token) in cases {
        let reply = app.get("/api/v1/auth/me", &token).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{name}: {}",
            reply.body
        );
        assert_eq!(reply.code(), "unauthorized", "{name}");
        assert_eq!(
            reply
                .headers
                .get("www-authenticate")
                .unwrap()
                .to_str()
                .unwrap(),
            "Bearer realm=\"smsops\"",
            "{name}"
        );
        let reply = app.get("/api/v1/country-operators", &token).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{name} on operators: {}",
            reply.body
        );
    }

    // No header, or another scheme.
    let reply = app
        .call(reqwest::Method::GET, "/api/v1/auth/me", None, None)
        .await;
    reply.assert_error(401, "unauthorized");
    assert!(reply.headers.contains_key("www-authenticate"));
    let reply = app
        .http
        .get(app.url("/api/v1/auth/me"))
        .header("authorization", format!("Basic {real}"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);

    app.cleanup().await;
}

/// The raw 32-byte Ed25519 public key inside a PKCS#8 v2 document, as an
/// attacker would find it in the published JWKS.
fn public_key_bytes(pem: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(pem.to_vec()).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    der[der.len() - 32..].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let app = TestApp::spawn().await;
    let first = app.admin_tokens().await;

    let reply = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": first.refresh}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let second = Tokens::from(&reply.body);
    assert_ne!(second.refresh, first.refresh);
    assert_eq!(
        app.get("/api/v1/auth/me", &second.access).await.status,
        StatusCode::OK
    );

    let reply = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": second.refresh}),
        )
        .await;
    let third = Tokens::from(&reply.body);

    // Reusing the spent first token is refused and revokes everything rotated from it.
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": first.refresh}),
    )
    .await
    .assert_error(401, "invalid_token");
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": third.refresh}),
    )
    .await
    .assert_error(401, "invalid_token");

    // Another sign-in is another family, untouched.
    let other = app.admin_tokens().await;
    let reply = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": other.refresh}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let other = Tokens::from(&reply.body);

    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": "made-up"}),
    )
    .await
    .assert_error(401, "invalid_token");
    app.post("/api/v1/auth/refresh", None, json!({"refresh_token": ""}))
        .await
        .assert_error(401, "invalid_token");

    // Sign-out needs a signed-in caller and revokes the refresh token.
    let reply = app
        .post(
            "/api/v1/auth/sign-out",
            None,
            json!({"refresh_token": other.refresh}),
        )
        .await;
    reply.assert_error(401, "unauthorized");
    let reply = app
        .post(
            "/api/v1/auth/sign-out",
            Some(&other.access),
            json!({"refresh_token": other.refresh}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": other.refresh}),
    )
    .await
    .assert_error(401, "invalid_token");

    // Concurrent use of one token: exactly one wins.
    let fresh = app.admin_tokens().await;
    let racers = (0..10).map(|_| {
        app.post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": fresh.refresh}),
        )
    });
    let ok = futures::future::join_all(racers)
        .await
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert_eq!(ok, 1);

    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_user_look_the_same() {
    let app = TestApp::spawn().await;
    let wrong = app.sign_in(&app.admin_email, "wrong-password-123").await;
    let unknown = app
        .sign_in("nobody@smsops.test", "wrong-password-123")
        .await;
    let malformed = app.sign_in("not-an-email", "wrong-password-123").await;
    for reply in [&wrong, &unknown, &malformed] {
        reply.assert_error(401, "invalid_credentials");
    }
    assert_eq!(wrong.body, unknown.body);
    app.cleanup().await;
}

/// Rotation: auth-svc restarts with a new signing key and keeps the old one
/// as a verification key. The gateway and operator-svc are not restarted,
/// yet accept tokens from both keys, fetching the new `kid` on first sight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_needs_no_verifier_restart() {
    let mut app = TestApp::spawn().await;
    let old = app.admin_tokens().await.access;
    assert_eq!(
        app.get("/api/v1/country-operators", &old).await.status,
        StatusCode::OK
    );

    let old_key = app.key_dir.join("signing.pem");
    let new_key = app.key_dir.join("signing-2.pem");
    auth_svc::core::keys::write_new_key(&new_key).unwrap();
    app.stop_auth().await;
    app.start_auth(new_key, vec![old_key]).await;

    let new = app.admin_tokens().await.access;
    assert_ne!(
        decode_header(&new).unwrap().kid,
        decode_header(&old).unwrap().kid
    );
    for token in [&old, &new] {
        let reply = app.get("/api/v1/country-operators", token).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(
            app.get("/api/v1/auth/me", token).await.status,
            StatusCode::OK
        );
    }
    app.cleanup().await;
}
