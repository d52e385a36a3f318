//! auth-svc protects itself, whoever calls it: password hashing runs a few
//! at a time (19 MiB each), and the RPCs that mint tokens are rate limited
//! per account on its own gRPC port, which callers inside the cluster reach
//! without passing the gateway's per-IP limit.

use reqwest::StatusCode;
use smsops_common::{ApiError, ErrorCode};
use smsops_proto::auth::v1::{SignInRequest, auth_service_client::AuthServiceClient};
use smsops_tests::{ADMIN_PASSWORD, Options, TestApp};

/// 64 sign-ins at once through the gateway, against an auth-svc of its own
/// (a child process, so what is measured is auth-svc alone) that hashes
/// two at a time with four waiting: every answer is a token or a 503 that
/// says when to come back, never a 500, and memory stays far below the 512
/// MiB that 64 unbounded hashes (1.2 GiB of argon2 blocks) would need.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_sign_ins_beyond_the_hashing_pool_get_503_with_retry_after() {
    let mut limits = smsops_tests::generous_auth_limits();
    limits.hashing = auth_svc::limits::HashingConfig {
        concurrency: 2,
        queue: 4,
    };
    let app = TestApp::spawn_with(Options {
        auth_apart: true,
        auth_limits: limits,
        ..Options::default()
    })
    .await;
    let auth = app.auth_process.as_ref().unwrap();
    let before = auth.peak_rss_mib();

    let replies =
        futures::future::join_all((0..64).map(|_| app.sign_in(&app.admin_email, ADMIN_PASSWORD)))
            .await;
    let (mut ok, mut busy) = (0, 0);
    for reply in &replies {
        match reply.status {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                reply.assert_error(503, "unavailable");
                let retry: u64 = reply.headers["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=10).contains(&retry), "retry-after {retry}");
                busy += 1;
            }
            other => panic!("{other}: {}", reply.body),
        }
    }
    let peak = auth.peak_rss_mib();
    println!(
        "64 parallel sign-ins: {ok} signed in, {busy} told to retry; \
         auth-svc peak RSS {peak:.0} MiB ({before:.0} MiB before)"
    );
    assert!(ok >= 6, "at least the running and the waiting get through");
    assert!(busy > 0, "64 at once do not fit in 2 running + 4 waiting");
    assert!(peak < 256.0, "auth-svc peaked at {peak:.0} MiB");

    // The pool drains: the next sign-in waits for nobody.
    let reply = app.sign_in(&app.admin_email, ADMIN_PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    app.cleanup().await;
}

/// auth-svc's production limits, on its own gRPC port: one email's guesses
/// run out after ten, another email's do not; the gateway answers the same
/// refusal as 429 with Retry-After.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_for_one_email_are_limited_on_the_grpc_port() {
    let app = TestApp::spawn_with(Options {
        auth_limits: auth_svc::limits::LimitsConfig::default(),
        ..Options::default()
    })
    .await;
    let mut client = AuthServiceClient::connect(format!("http://{}", app.auth_addr))
        .await
        .unwrap();
    let victim = format!("victim-{}@smsops.test", uuid::Uuid::new_v4().simple());
    let mut codes = Vec::new();
    let mut retry_after = None;
    for n in 0..15 {
        let status = client
            .sign_in(SignInRequest {
                email: victim.clone(),
                password: format!("guess-number-{n}"),
            })
            .await
            .unwrap_err();
        let err = ApiError::from_status(&status);
        if err.code == ErrorCode::RateLimited {
            assert_eq!(status.code(), tonic::Code::ResourceExhausted);
            retry_after = err.retry_after;
        }
        codes.push(err.code);
    }
    let limited = codes
        .iter()
        .filter(|c| **c == ErrorCode::RateLimited)
        .count();
    assert_eq!(
        (codes[..10].to_vec(), limited),
        (vec![ErrorCode::InvalidCredentials; 10], 5),
        "{codes:?}"
    );
    let retry_after = retry_after.unwrap();
    assert!((1..=10).contains(&retry_after), "retry after {retry_after}");

    // Another account is not affected, and neither is the admin.
    let other = client
        .sign_in(SignInRequest {
            email: "someone-else@smsops.test".into(),
            password: "guess-number-0".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        ApiError::from_status(&other).code,
        ErrorCode::InvalidCredentials
    );
    let admin = app.sign_in(&app.admin_email, ADMIN_PASSWORD).await;
    assert_eq!(admin.status, StatusCode::OK, "{}", admin.body);

    // Through the gateway, the email's refusal is a 429 with Retry-After.
    let reply = app.sign_in(&victim, "guess-number-99").await;
    reply.assert_error(429, "rate_limited");
    assert!(reply.headers.contains_key("retry-after"), "{reply:?}");
    app.cleanup().await;
}
