//! The dashboard in headless Chromium against the real stack, used as a
//! person uses it: signed in through its form, read off the screen,
//! photographed at desktop and phone widths (in
//! `$CARGO_TARGET_DIR/tmp/screenshots/`, to be looked at).
//!
//! A test binary of its own: cargo runs test binaries one after another, so
//! Chromium's load never lands on the pacing tests of `api`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::{Value, json};
use smsops_tests::{ADMIN_PASSWORD, TestApp, USER_PASSWORD, browser::Browser};

fn shots(test: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("screenshots")
        .join(test)
}

/// A pair, and one message to +447700900671 on it sent by an operator.
async fn a_pair_with_a_message(app: &TestApp) {
    let admin = app.admin_tokens().await.access;
    let pair = app
        .post(
            "/api/v1/country-operators",
            Some(&admin),
            json!({"country": "GB", "operator": "Vodafone"}),
        )
        .await;
    assert_eq!(pair.status, StatusCode::CREATED, "{}", pair.body);
    let (_, operator) = app.new_user().await;
    let sent = app
        .post(
            "/api/v1/sms",
            Some(&operator.access),
            json!({"country_operator_id": pair.id(), "to": "+447700900671", "body": "hello"}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
}

/// Waits until the page has drawn the message table with its one message.
async fn wait_for_messages(browser: &Browser) -> String {
    let shown = browser
        .wait_until(
            "the messages table shows the message",
            "return document.querySelector('#messages tbody').innerText",
            |text| text.as_str().is_some_and(|t| t.contains("GB / Vodafone")),
        )
        .await;
    shown.as_str().unwrap_or_default().to_string()
}

fn asked_for<'a>(requests: &'a [String], path: &str) -> Vec<&'a String> {
    requests
        .iter()
        .filter(|r| r.starts_with(&format!("/api/v1{path}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_is_shown_what_it_may_do_and_never_a_refusal() {
    let app = TestApp::spawn().await;
    a_pair_with_a_message(&app).await;
    let browser = Browser::start(&shots("roles")).await;
    browser.goto(&app.url("/")).await;
    browser
        .script("performance.setResourceTimingBufferSize(10000); return null;")
        .await;

    for role in ["viewer", "operator"] {
        let email = app.new_account(role).await;
        browser
            .script("performance.clearResourceTimings(); return null;")
            .await;
        browser.sign_in(&email, USER_PASSWORD).await;
        let messages = wait_for_messages(&browser).await;
        if role == "viewer" {
            assert!(messages.contains("+44770****671"), "{messages}");
            assert!(!messages.contains("+447700900671"), "{messages}");
        } else {
            assert!(messages.contains("+447700900671"), "{messages}");
        }
        assert!(
            !browser.visible("#error").await,
            "{role} was shown an error: {}",
            browser.text("#error").await
        );
        for admins_only in ["#rules-view", "#admin-view", "#new-pair"] {
            assert!(
                !browser.visible(admins_only).await,
                "{role} sees {admins_only}"
            );
        }
        for senders_only in ["#new-session", "#new-sms"] {
            assert_eq!(
                browser.visible(senders_only).await,
                role == "operator",
                "{role} and {senders_only}"
            );
        }
        let pairs = browser.text("#pairs tbody").await;
        assert!(!pairs.contains("Delete"), "{role}: {pairs}");
        // The page asks only for what this role may read: no 403 behind the scenes.
        let requests = browser.requests().await;
        for path in [
            "/alerts/rules",
            "/users",
            "/api-keys",
            "/invitations",
            "/audit",
        ] {
            assert!(
                asked_for(&requests, path).is_empty(),
                "{role}'s page asked for {path}: {requests:?}"
            );
        }
        browser.screenshots(role).await;
        browser.click("#sign-out").await;
        browser
            .wait_until(
                "the sign-in form is back",
                "return !document.querySelector('#sign-in-view').hidden",
                |shown| shown == &Value::Bool(true),
            )
            .await;
        assert!(!browser.visible("#app-view").await);
        // Nothing the last person saw stays in the page, hidden or not.
        let left = browser
            .script("return document.querySelector('#app-view').textContent;")
            .await;
        assert!(
            !left.as_str().unwrap_or_default().contains("+4477"),
            "{left}"
        );
    }

    browser
        .script("performance.clearResourceTimings(); return null;")
        .await;
    browser.sign_in(&app.admin_email, ADMIN_PASSWORD).await;
    wait_for_messages(&browser).await;
    browser
        .wait_until(
            "the admin sees the rules editor and the users",
            "return document.querySelectorAll('#rules input').length > 0 \
             && document.querySelector('#users tbody').innerText.includes('viewer')",
            |ready| ready == &Value::Bool(true),
        )
        .await;
    for element in [
        "#rules-view",
        "#admin-view",
        "#new-pair",
        "#new-session",
        "#new-sms",
    ] {
        assert!(
            browser.visible(element).await,
            "the admin does not see {element}"
        );
    }
    assert!(browser.text("#pairs tbody").await.contains("Delete"));
    assert!(
        !browser.visible("#error").await,
        "{}",
        browser.text("#error").await
    );
    browser.screenshots("admin").await;
    browser.close().await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_that_meet_an_expired_token_together_renew_it_once() {
    let app = TestApp::spawn().await;
    a_pair_with_a_message(&app).await;
    let email = app.new_account("operator").await;
    let browser = Browser::start(&shots("renewal")).await;
    browser.goto(&app.url("/")).await;
    browser.sign_in(&email, USER_PASSWORD).await;
    wait_for_messages(&browser).await;
    let before = browser
        .script("return sessionStorage.getItem('refresh_token');")
        .await;

    // The access token expires (one signed by the stack's key, an hour
    // past its exp), then the page refreshes: its five calls all meet a
    // 401 at once. A refresh token is single use, and a second use revokes
    // the whole sign-in, so they must share one renewal.
    let signed_in = app.sign_in(&email, USER_PASSWORD).await;
    let me = app
        .get(
            "/api/v1/auth/me",
            signed_in.body["access_token"].as_str().unwrap(),
        )
        .await;
    let expired = app.expired_token(me.body["id"].as_str().unwrap());
    browser
        .script(&format!(
            "performance.setResourceTimingBufferSize(10000); performance.clearResourceTimings(); \
             sessionStorage.setItem('access_token', {}); \
             document.querySelector('#window').dispatchEvent(new Event('change')); return null;",
            json!(expired)
        ))
        .await;
    browser
        .wait_until(
            "every call of the refresh went out again after the renewal",
            "return performance.getEntriesByType('resource')\
             .filter((e) => e.name.includes('/api/v1/sms?')).length",
            |calls| calls.as_u64() >= Some(2),
        )
        .await;
    let requests = browser.requests().await;
    assert_eq!(
        asked_for(&requests, "/auth/refresh").len(),
        1,
        "{requests:?}"
    );
    assert!(
        browser.visible("#app-view").await,
        "the person was signed out"
    );
    assert!(
        !browser.visible("#error").await,
        "{}",
        browser.text("#error").await
    );
    let after = browser
        .script("return sessionStorage.getItem('refresh_token');")
        .await;
    assert_ne!(before, after);

    // The sign-in is whole: the page's new refresh token still renews.
    let renewed = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": after.as_str().unwrap()}),
        )
        .await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.body);
    browser.screenshots("after-renewal").await;
    browser.close().await;
    app.cleanup().await;
}
