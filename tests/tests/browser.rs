//! The dashboard in headless Chromium against the real stack, used as a
//! person uses it: signed in through its form, driven through its own
//! navigation, read off the screen, photographed at desktop and phone
//! widths (in `$CARGO_TARGET_DIR/tmp/screenshots/`, to be looked at).
//!
//! A test binary of its own: cargo runs test binaries one after another, so
//! Chromium's load never lands on the pacing tests of `api`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::PathBuf, time::Duration};

use reqwest::StatusCode;
use serde_json::{Value, json};
use smsops_tests::{
    ADMIN_PASSWORD, Options, TestApp, USER_PASSWORD, browser::Browser, sandbox::Sandbox,
};

fn shots(test: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("screenshots")
        .join(test)
}

async fn app_with_sandbox(sandbox: &Sandbox, options: Options) -> TestApp {
    TestApp::spawn_with(Options {
        twilio_base_url: sandbox.url.clone(),
        telegram_base_url: sandbox.url.clone(),
        telegram_chats: vec!["-100200300".into()],
        ..options
    })
    .await
}

/// A pair named `GB / <operator>`; its id.
async fn a_pair(app: &TestApp, operator: &str, pinned: bool) -> String {
    let admin = app.admin_tokens().await.access;
    let pair = app
        .post(
            "/api/v1/country-operators",
            Some(&admin),
            json!({"country": "GB", "operator": operator, "is_high_priority": pinned}),
        )
        .await;
    assert_eq!(pair.status, StatusCode::CREATED, "{}", pair.body);
    pair.id()
}

/// A pair, and one message to +447700900671 on it sent by an operator.
async fn a_pair_with_a_message(app: &TestApp) -> String {
    let pair = a_pair(app, "Vodafone", false).await;
    let (_, operator) = app.new_user().await;
    let sent = app
        .post(
            "/api/v1/sms",
            Some(&operator.access),
            json!({"country_operator_id": pair, "to": "+447700900671", "body": "hello"}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    pair
}

fn asked_for<'a>(requests: &'a [String], path: &str) -> Vec<&'a String> {
    requests
        .iter()
        .filter(|r| r.starts_with(&format!("/api/v1{path}")))
        .collect()
}

/// Waits until the view has loaded what it loads: no "Loading…" left.
async fn settled(browser: &Browser, view: &str) {
    browser
        .wait_until(
            &format!("{view} has loaded"),
            "return document.querySelector('#view .loading') === null \
             && document.querySelector('#view h1') !== null",
            |done| done == &Value::Bool(true),
        )
        .await;
}

/// What a person sees wrong on the page: an error box, or the console's.
async fn assert_nothing_wrong(browser: &Browser, page: &str) {
    let problems = browser
        .script(
            "return [...document.querySelectorAll('.problem')]\
             .filter((e) => e.offsetParent !== null).map((e) => e.innerText);",
        )
        .await;
    assert_eq!(problems, json!([]), "{page} shows a problem");
    browser.assert_no_console_errors(page).await;
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "{page}: {violations:#?}");
}

const VIEWS: [&str; 5] = ["/", "/sessions", "/messages", "/pairs", "/alerts"];
const WRITE_CONTROLS: [&str; 6] = [
    "#new-session",
    "#new-sms",
    "#new-pair",
    "#new-alert",
    "#rules",
    "#view button.danger",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_is_shown_what_it_may_do_and_never_a_refusal() {
    let app = TestApp::spawn().await;
    let pair = a_pair_with_a_message(&app).await;
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
        assert!(
            !browser.exists("header nav a[href=\"/admin\"]").await,
            "{role} is offered the admin view"
        );
        for view in VIEWS {
            browser.open_view(view).await;
            settled(&browser, view).await;
            if view == "/messages" {
                let shown = browser
                    .wait_until(
                        "the messages table shows the message",
                        "return document.querySelector('#messages tbody').innerText",
                        |text| text.as_str().is_some_and(|t| t.contains("GB / Vodafone")),
                    )
                    .await;
                let shown = shown.as_str().unwrap_or_default();
                if role == "viewer" {
                    assert!(shown.contains("+44770****671"), "{shown}");
                    assert!(!shown.contains("+447700900671"), "{shown}");
                } else {
                    assert!(shown.contains("+447700900671"), "{shown}");
                }
            }
            for control in WRITE_CONTROLS {
                let may = role == "operator"
                    && ((view == "/sessions" && control == "#new-session")
                        || (view == "/messages" && control == "#new-sms"));
                assert_eq!(
                    browser.exists(control).await,
                    may,
                    "{role} on {view} and {control}"
                );
            }
            assert_nothing_wrong(&browser, &format!("{role} on {view}")).await;
            let name = if view == "/" { "overview" } else { &view[1..] };
            browser.screenshots(&format!("{role}-{name}")).await;
        }
        // A pair's own page, from the pairs table.
        browser.open_view("/pairs").await;
        settled(&browser, "/pairs").await;
        browser
            .click(&format!("#pairs a[href=\"/pairs/{pair}\"]"))
            .await;
        settled(&browser, "the pair").await;
        browser
            .wait_until(
                "the pair's page names it",
                "return document.querySelector('#pair-title').innerText",
                |t| t.as_str().is_some_and(|t| t.contains("GB / Vodafone")),
            )
            .await;
        assert!(
            browser.exists("#route").await && !browser.exists("#route-save").await,
            "{role} sees the route, and no way to change it"
        );
        assert_nothing_wrong(&browser, &format!("{role} on the pair")).await;
        browser.screenshots(&format!("{role}-pair")).await;

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
        browser.click("#sign-out").await;
        browser
            .wait_until(
                "the sign-in form is back",
                "return document.querySelector('#sign-in') !== null",
                |shown| shown == &Value::Bool(true),
            )
            .await;
        // Nothing the last person saw stays in the page, hidden or not.
        let left = browser.script("return document.body.textContent;").await;
        assert!(
            !left.as_str().unwrap_or_default().contains("+4477"),
            "{left}"
        );
    }

    browser
        .script("performance.clearResourceTimings(); return null;")
        .await;
    browser.sign_in(&app.admin_email, ADMIN_PASSWORD).await;
    for view in VIEWS.into_iter().chain(["/admin"]) {
        browser.open_view(view).await;
        settled(&browser, view).await;
        let name = if view == "/" { "overview" } else { &view[1..] };
        match view {
            "/pairs" => {
                assert!(browser.exists("#new-pair").await);
                assert!(browser.text("#pairs tbody").await.contains("Delete"));
            }
            "/alerts" => {
                browser
                    .wait_until(
                        "the admin sees the rules editor",
                        "return document.querySelectorAll('#rules input').length",
                        |n| n.as_u64() > Some(5),
                    )
                    .await;
                assert!(browser.exists("#new-alert").await);
            }
            "/admin" => {
                browser
                    .wait_until(
                        "the admin sees the users",
                        "return document.querySelector('#users tbody').innerText.includes('viewer')",
                        |ready| ready == &Value::Bool(true),
                    )
                    .await;
                for (tab, table) in [
                    ("Invitations", "#invitations"),
                    ("API keys", "#api-keys"),
                    ("Audit log", "#audit"),
                ] {
                    browser
                        .script(&format!(
                            "[...document.querySelectorAll('[role=tab]')]\
                             .find((t) => t.innerText === {}).click(); return null;",
                            json!(tab)
                        ))
                        .await;
                    browser
                        .wait_until(
                            &format!("the {tab} tab shows its table"),
                            &format!("return document.querySelector({}) !== null", json!(table)),
                            |shown| shown == &Value::Bool(true),
                        )
                        .await;
                    assert_nothing_wrong(&browser, &format!("admin on {tab}")).await;
                    browser
                        .screenshots(&format!("admin-{}", tab.to_lowercase().replace(' ', "-")))
                        .await;
                }
            }
            _ => {}
        }
        assert_nothing_wrong(&browser, &format!("admin on {view}")).await;
        browser.screenshots(&format!("admin-{name}")).await;
    }
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
    settled(&browser, "the overview").await;
    let before = browser
        .script("return sessionStorage.getItem('refresh_token');")
        .await;

    // The access token expires (one signed by the stack's key, an hour
    // past its exp), then the person picks another window: the summary,
    // the chart and every sparkline meet a 401 at once. A refresh token is
    // single use, and a second use revokes the whole sign-in, so they must
    // share one renewal.
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
             sessionStorage.setItem('access_token', {}); return null;",
            json!(expired)
        ))
        .await;
    browser.click("input[name=window][value='24h']").await;
    browser
        .wait_until(
            "the summary and the chart went out again after the renewal",
            "const names = performance.getEntriesByType('resource').map((e) => e.name); \
             return [names.filter((n) => n.includes('/api/v1/metrics/summary?window=24h')).length, \
                     names.filter((n) => n.includes('/api/v1/metrics/series?')).length];",
            |calls| calls[0].as_u64() >= Some(2) && calls[1].as_u64() >= Some(2),
        )
        .await;
    let requests = browser.requests().await;
    assert_eq!(
        asked_for(&requests, "/auth/refresh").len(),
        1,
        "{requests:?}"
    );
    assert!(
        browser.exists("#sign-out").await,
        "the person was signed out"
    );
    settled(&browser, "the overview").await;
    let problems = browser
        .script("return [...document.querySelectorAll('.problem')].map((e) => e.innerText);")
        .await;
    assert_eq!(problems, json!([]));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_renewed_in_the_background_and_the_page_stays_live() {
    // Renewal comes a minute before expiry: with 62 s tokens, every 2 s.
    let app = TestApp::spawn_with(Options {
        access_ttl: Duration::from_secs(62),
        ..Options::default()
    })
    .await;
    let email = app.new_account("operator").await;
    let browser = Browser::start(&shots("background-renewal")).await;
    browser.goto(&app.url("/")).await;
    browser
        .script("performance.setResourceTimingBufferSize(10000); return null;")
        .await;
    browser.sign_in(&email, USER_PASSWORD).await;
    browser
        .wait_until(
            "the live feed is up",
            "return document.querySelector('#connection').innerText",
            |t| t.as_str() == Some("Live"),
        )
        .await;
    let first = browser
        .script("return sessionStorage.getItem('access_token');")
        .await;
    browser
        .wait_until(
            "the page renewed its token twice by itself",
            "return performance.getEntriesByType('resource')\
             .filter((e) => e.name.includes('/api/v1/auth/refresh')).length",
            |n| n.as_u64() >= Some(2),
        )
        .await;
    let now = browser
        .script("return sessionStorage.getItem('access_token');")
        .await;
    assert_ne!(first, now);
    // Still signed in, still live, and what it asks for still answers.
    assert_eq!(browser.text("#connection").await, "Live");
    browser.open_view("/sessions").await;
    settled(&browser, "/sessions").await;
    assert_nothing_wrong(&browser, "after renewals").await;
    browser.close().await;
    app.cleanup().await;
}

/// p50 and p99 of the page's User Timing measures called `name`, in ms.
async fn percentiles(browser: &Browser, name: &str) -> (usize, f64, f64) {
    let durations = browser
        .script(&format!(
            "return performance.getEntriesByName({}).map((e) => e.duration);",
            json!(name)
        ))
        .await;
    let mut durations: Vec<f64> = serde_json::from_value(durations).unwrap();
    durations.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((durations.len() as f64 - 1.0) * q).round() as usize;
        durations.get(i).copied().unwrap_or(f64::NAN)
    };
    (durations.len(), at(0.5), at(0.99))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_runs_a_session_from_the_page_and_a_viewer_watches_it_live() {
    let sandbox = Sandbox::start_default();
    let app = app_with_sandbox(&sandbox, Options::default()).await;
    let viewer = app.new_account("viewer").await;
    let operator = format!(
        "Vodafone-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    );

    // The viewer watches the overview in a browser of their own.
    let watcher = Browser::start(&shots("live-viewer")).await;
    watcher.goto(&app.url("/")).await;
    watcher.sign_in(&viewer, USER_PASSWORD).await;
    watcher
        .wait_until(
            "the viewer's feed is up",
            "return document.querySelector('#connection').innerText",
            |t| t.as_str() == Some("Live"),
        )
        .await;

    // The admin adds a pair through the form.
    let browser = Browser::start(&shots("live-admin")).await;
    browser.goto(&app.url("/")).await;
    browser.sign_in(&app.admin_email, ADMIN_PASSWORD).await;
    browser.open_view("/pairs").await;
    settled(&browser, "/pairs").await;
    browser.fill("#new-pair", "country", "gb").await;
    browser.fill("#new-pair", "operator", &operator).await;
    browser.click("#new-pair button").await;
    browser
        .wait_until(
            "the new pair is listed",
            "return document.querySelector('#pairs tbody').innerText",
            |t| t.as_str().is_some_and(|t| t.contains(&operator)),
        )
        .await;

    // A form that the API would refuse says so at its fields, sending nothing.
    browser.open_view("/sessions").await;
    settled(&browser, "/sessions").await;
    browser.fill("#new-session", "rate", "0").await;
    browser.fill("#new-session", "first", "07700").await;
    browser.click("#new-session > button").await;
    let problems = browser
        .script("return [...document.querySelectorAll('#new-session .problem-text')].length")
        .await;
    assert_eq!(problems, json!(3), "pair, rate and first number");

    // Then a good one: 600 a minute to 1,000 numbers, stopping after 2,000.
    browser
        .choose("#new-session select[name=pair]", &operator)
        .await;
    browser.fill("#new-session", "rate", "600").await;
    browser.fill("#new-session", "first", "+447700900000").await;
    browser.fill("#new-session", "count", "1000").await;
    browser.fill("#new-session", "limit", "2000").await;
    browser.click("#new-session > button").await;
    browser
        .wait_until(
            "the page opened the new session",
            "return location.pathname",
            |p| p.as_str().is_some_and(|p| p.starts_with("/sessions/")),
        )
        .await;
    let session_path = browser.script("return location.pathname").await;
    let session_id = session_path.as_str().unwrap()["/sessions/".len()..].to_string();

    // The viewer is told it started (a toast lasts 8 s: ask now).
    watcher
        .wait_until(
            "the viewer was told the session started",
            "return document.querySelector('.toasts').innerText",
            |t| t.as_str().is_some_and(|t| t.contains("started")),
        )
        .await;

    // Counters move as the feed pushes events: many changes on screen,
    // and no reload of the session behind them.
    browser
        .script(
            "performance.setResourceTimingBufferSize(10000); performance.clearResourceTimings(); \
             performance.clearMeasures(); \
             window.__changes = 0; \
             const target = document.querySelector('#session-counters .accepted'); \
             new MutationObserver(() => { window.__changes += 1; }) \
               .observe(target, {childList: true, characterData: true, subtree: true}); \
             return null;",
        )
        .await;
    browser
        .wait_until(
            "a hundred events reached the screen",
            "return performance.getEntriesByName('event-to-screen').length",
            |n| n.as_u64() >= Some(100),
        )
        .await;
    let changes = browser.script("return window.__changes").await;
    let reloads = asked_for(
        &browser.requests().await,
        &format!("/sessions/{session_id}"),
    )
    .into_iter()
    .filter(|r| !r.contains("/audit"))
    .count();
    assert!(
        changes.as_u64() >= Some(10),
        "the accepted counter changed {changes} times"
    );
    assert!(
        reloads <= 1,
        "the session was reloaded {reloads} times while it ran"
    );
    let (events, p50, p99) = percentiles(&browser, "event-to-screen").await;
    let (_, arrival50, arrival99) = percentiles(&browser, "arrival-to-screen").await;
    println!(
        "dashboard latency over {events} events: event to screen p50 {p50:.1} ms p99 {p99:.1} ms; \
         arrival to screen p50 {arrival50:.1} ms p99 {arrival99:.1} ms"
    );
    browser.screenshots("session-running").await;

    // The chart moves with the traffic.
    watcher
        .wait_until(
            "the viewer's chart drew the traffic",
            "return Number(document.querySelector('figure.chart').dataset.sum)",
            |n| n.as_f64() > Some(0.0),
        )
        .await;
    let sum = watcher
        .script("return Number(document.querySelector('figure.chart').dataset.sum)")
        .await;
    watcher
        .wait_until(
            "the viewer's chart keeps moving",
            "return Number(document.querySelector('figure.chart').dataset.sum)",
            |n| n.as_f64() > sum.as_f64(),
        )
        .await;
    watcher.screenshots("overview-live").await;

    // The admin stops it; the viewer is told.
    browser.click("#view .heading .actions button.danger").await;
    browser
        .wait_until(
            "the session shows stopped",
            "return document.querySelector('#session-counters .chip').innerText",
            |t| t.as_str() == Some("stopped"),
        )
        .await;
    watcher
        .wait_until(
            "the viewer was told the session stopped",
            "return document.querySelector('.toasts').innerText",
            |t| t.as_str().is_some_and(|t| t.contains("stopped")),
        )
        .await;

    // A notice from the admin reaches the viewer's screen and Telegram.
    browser.open_view("/alerts").await;
    settled(&browser, "/alerts").await;
    browser
        .fill("#new-alert", "message", "Twilio maintenance at 22:00 UTC")
        .await;
    browser.click("#new-alert button").await;
    watcher
        .wait_until(
            "the viewer got the notice",
            "return document.querySelector('.toasts').innerText",
            |t| t.as_str().is_some_and(|t| t.contains("Twilio maintenance")),
        )
        .await;
    browser
        .wait_until(
            "the notice is listed",
            "return document.querySelector('#alerts tbody').innerText",
            |t| t.as_str().is_some_and(|t| t.contains("Twilio maintenance")),
        )
        .await;
    for view in WRITE_CONTROLS {
        assert!(!watcher.exists(view).await, "the viewer sees {view}");
    }
    assert_nothing_wrong(&watcher, "the viewer's overview").await;
    assert_nothing_wrong(&browser, "the admin's alerts").await;
    watcher.screenshots("viewer-toasts").await;
    browser.close().await;
    watcher.close().await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_routes_a_pair_through_the_smsc_first() {
    let sandbox = Sandbox::start_default();
    let app = app_with_sandbox(
        &sandbox,
        Options {
            smpp_addr: Some(sandbox.smsc_addr.clone()),
            twilio_beside_smpp: true,
            ..Options::default()
        },
    )
    .await;
    let pair = a_pair(&app, "Vodafone", false).await;
    let browser = Browser::start(&shots("route")).await;
    browser.goto(&app.url(&format!("/pairs/{pair}"))).await;
    browser.sign_in(&app.admin_email, ADMIN_PASSWORD).await;
    settled(&browser, "the pair").await;
    // Both accounts listed and up (the SMSC bound): then two steps.
    browser
        .wait_until(
            "the route offers both accounts",
            "return document.querySelector('#route-add') !== null \
             && !document.querySelector('#route-add').disabled",
            |ready| ready == &Value::Bool(true),
        )
        .await;
    // The SMSC first: a step (the first unused account, twilio) made the
    // SMSC, then a second, which is twilio.
    browser.click("#route-add").await;
    browser.choose("#route-provider-0", "smsc").await;
    browser.click("#route-add").await;
    browser
        .wait_until(
            "both steps show their account up",
            "return document.querySelectorAll('#route .route-step .chip.good').length",
            |up| up == &json!(2),
        )
        .await;
    browser.screenshots("route-editing").await;
    browser.click("#route-save").await;
    browser
        .wait_until(
            "the route is saved",
            "return document.querySelector('.toast') && document.querySelector('.toast').innerText",
            |text| text.as_str().is_some_and(|t| t.contains("Route saved")),
        )
        .await;
    let admin = app.admin_tokens().await.access;
    let kept = app
        .get(&format!("/api/v1/country-operators/{pair}"), &admin)
        .await;
    let route: Vec<(&str, u64)> = kept.body["route"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["provider"].as_str().unwrap(),
                s["priority"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(route, [("smsc", 0), ("twilio", 1)], "{}", kept.body);
    assert_nothing_wrong(&browser, "the route editor").await;
    browser.screenshots("route-saved").await;
    browser.close().await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_stops_a_high_priority_session_after_confirming() {
    let sandbox = Sandbox::start_default();
    let app = app_with_sandbox(&sandbox, Options::default()).await;
    let pair = a_pair(&app, "EE", true).await;
    let admin = app.admin_tokens().await.access;
    let started = app
        .post(
            "/api/v1/sessions",
            Some(&admin),
            json!({
                "country_operator_id": pair,
                "rate_per_minute": 60,
                "recipients": {"range": {"first": "+447700900000", "count": 10}},
                "template": "pinned {n}",
            }),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let id = started.id();

    let browser = Browser::start(&shots("pinned")).await;
    browser.goto(&app.url("/sessions")).await;
    browser.sign_in(&app.admin_email, ADMIN_PASSWORD).await;
    let row = format!("#sessions tr[data-key=\"{id}\"]");
    browser
        .wait_until(
            "the pinned session is listed with its Stop",
            &format!(
                "return document.querySelector({}) !== null",
                json!(format!("{row} button.danger"))
            ),
            |shown| shown == &Value::Bool(true),
        )
        .await;
    browser.click(&format!("{row} button.danger")).await;
    browser
        .wait_until(
            "a dialog asks before overriding the pin",
            "const d = document.querySelector('dialog.confirm'); return d.open ? d.innerText : ''",
            |t| t.as_str().is_some_and(|t| t.contains("high-priority")),
        )
        .await;
    browser.screenshots("confirm-force").await;
    browser.click("dialog.confirm button.danger").await;
    browser
        .wait_until(
            "the session shows stopped",
            &format!("return document.querySelector({}).innerText", json!(row)),
            |t| t.as_str().is_some_and(|t| t.contains("stopped")),
        )
        .await;
    let session = app.get(&format!("/api/v1/sessions/{id}"), &admin).await;
    assert_eq!(session.body["state"], "stopped", "{}", session.body);
    assert_nothing_wrong(&browser, "the sessions").await;
    browser.close().await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sms_is_counted_as_typed_confirmed_and_not_sent_twice() {
    let sandbox = Sandbox::start_default();
    let app = app_with_sandbox(&sandbox, Options::default()).await;
    a_pair(&app, "O2", false).await;
    let email = app.new_account("operator").await;
    let browser = Browser::start(&shots("send-one")).await;
    browser.goto(&app.url("/messages")).await;
    browser.sign_in(&email, USER_PASSWORD).await;
    settled(&browser, "/messages").await;
    browser
        .wait_until(
            "the send form lists the pair",
            "return document.querySelectorAll('#new-sms select[name=pair] option').length",
            |n| n.as_u64() >= Some(2),
        )
        .await;
    browser
        .choose("#new-sms select[name=pair]", "GB / O2")
        .await;
    browser.fill("#new-sms", "to", "+447700900123").await;
    // Cyrillic is UCS-2: 70 to a segment, so 71 characters are two.
    browser.fill("#new-sms", "body", &"я".repeat(71)).await;
    let counted = browser.text("#sms-count").await;
    assert!(
        counted.contains("71 characters, 2 segments (UCS-2)"),
        "{counted}"
    );
    browser.click("#new-sms > button").await;
    browser
        .wait_until(
            "the page confirms the message",
            "return document.querySelector('.toasts').innerText",
            |t| {
                t.as_str()
                    .is_some_and(|t| t.contains("Sent to +447700900123"))
            },
        )
        .await;
    let left = browser
        .script(
            "return [document.querySelector('#new-sms [name=to]').value, \
                     document.querySelector('#new-sms [name=body]').value];",
        )
        .await;
    assert_eq!(left, json!(["", ""]), "the form keeps what was sent");
    browser
        .wait_until(
            "the message is listed",
            "return document.querySelector('#messages tbody').innerText",
            |t| t.as_str().is_some_and(|t| t.contains("+447700900123")),
        )
        .await;
    let (_, operator) = app.new_user().await;
    let listed = app.get("/api/v1/sms?page_size=10", &operator.access).await;
    let to_that_number = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["to"] == "+447700900123")
        .count();
    assert_eq!(to_that_number, 1, "{}", listed.body);
    assert_nothing_wrong(&browser, "the messages").await;
    browser.screenshots("sent").await;
    browser.close().await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_promoted_while_signed_in_sees_the_new_role_without_a_reload() {
    let app = TestApp::spawn().await;
    let (id, _) = app.new_user_as("viewer").await;
    let me = app
        .get(
            "/api/v1/users?page_size=100",
            &app.admin_tokens().await.access,
        )
        .await;
    let email = me.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == id.as_str())
        .map(|u| u["email"].as_str().unwrap().to_string())
        .unwrap();
    let browser = Browser::start(&shots("promoted")).await;
    browser.goto(&app.url("/messages")).await;
    browser.sign_in(&email, USER_PASSWORD).await;
    settled(&browser, "/messages").await;
    assert!(!browser.exists("#new-sms").await);
    let admin = app.admin_tokens().await.access;
    let promoted = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            Some(json!({"role": "operator"})),
        )
        .await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.body);
    browser
        .wait_until(
            "the page shows the new role",
            "const who = document.querySelector('#who'); return who ? who.textContent : 'signed out'",
            |t| t.as_str().is_some_and(|t| t.contains("(operator)")),
        )
        .await;
    browser
        .wait_until(
            "the operator's send form appears",
            "return document.querySelector('#new-sms') !== null",
            |shown| shown == &Value::Bool(true),
        )
        .await;
    browser.close().await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_pairs_and_people_appear_on_open_pages_without_a_reload() {
    let app = TestApp::spawn().await;
    let viewer = app.new_account("viewer").await;
    let watcher = Browser::start(&shots("directory-viewer")).await;
    watcher.goto(&app.url("/pairs")).await;
    watcher.sign_in(&viewer, USER_PASSWORD).await;
    settled(&watcher, "/pairs").await;
    let admin = Browser::start(&shots("directory-admin")).await;
    admin.goto(&app.url("/admin")).await;
    admin.sign_in(&app.admin_email, ADMIN_PASSWORD).await;
    settled(&admin, "/admin").await;
    for page in [&watcher, &admin] {
        page.wait_until(
            "the live feed is up",
            "return document.querySelector('#connection').innerText",
            |t| t.as_str() == Some("Live"),
        )
        .await;
    }
    // Someone else adds a pair and a person, through the API.
    a_pair(&app, "Lebara", false).await;
    let newcomer = app.new_account("operator").await;
    watcher
        .wait_until(
            "the viewer's pairs list the new pair",
            "return document.querySelector('#pairs tbody').innerText",
            |t| t.as_str().is_some_and(|t| t.contains("Lebara")),
        )
        .await;
    admin
        .wait_until(
            "the admin's users list the newcomer",
            "return document.querySelector('#users tbody').innerText",
            |t| t.as_str().is_some_and(|t| t.contains(&newcomer)),
        )
        .await;
    assert_nothing_wrong(&watcher, "the viewer's pairs").await;
    assert_nothing_wrong(&admin, "the admin's users").await;
    watcher.close().await;
    admin.close().await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_network_is_said_where_it_matters_and_forgotten_once_back() {
    let app = TestApp::spawn().await;
    a_pair(&app, "Vodafone", false).await;
    let email = app.new_account("operator").await;
    let browser = Browser::start(&shots("offline")).await;
    browser.goto(&app.url("/")).await;
    browser.sign_in(&email, USER_PASSWORD).await;
    settled(&browser, "the overview").await;

    browser.set_offline(true).await;
    browser.open_view("/pairs").await;
    let said = browser
        .wait_until(
            "the pairs view says it cannot reach smsops",
            "const p = document.querySelector('#view .problem'); return p ? p.innerText : ''",
            |t| {
                t.as_str()
                    .is_some_and(|t| t.contains("Cannot reach smsops"))
            },
        )
        .await;
    assert_eq!(browser.text("#connection").await, "Offline: no network");
    browser.screenshots("offline").await;
    // Next to what it failed to load, not in a banner that outlives it.
    assert!(said.as_str().unwrap().contains("the pairs"), "{said}");

    browser.set_offline(false).await;
    browser
        .wait_until(
            "the pairs load and the problem goes by itself",
            "return [document.querySelector('#view .problem') === null, \
                     !!document.querySelector('#pairs') && \
                     document.querySelector('#pairs tbody').innerText.includes('Vodafone')]",
            |v| v == &json!([true, true]),
        )
        .await;
    browser
        .wait_until(
            "the live feed is back",
            "return document.querySelector('#connection').innerText",
            |t| t.as_str() == Some("Live"),
        )
        .await;
    // The failed requests of the offline spell are the console's only errors.
    let errors = browser.console_errors().await;
    assert!(
        errors
            .iter()
            .all(|e| e.contains("ERR_INTERNET_DISCONNECTED") || e.contains("net::")),
        "{errors:#?}"
    );
    browser.screenshots("back-online").await;
    browser.close().await;
    app.cleanup().await;
}
