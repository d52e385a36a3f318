//! Provider credentials never reach a user, a stored error or a log line:
//! the Telegram bot token is part of the Bot API's URL and the Twilio
//! account SID of the Messages resource's, and both clients' errors name
//! the URL; a provider or a proxy may quote it back too.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use smsops_tests::{
    Options, TestApp,
    amqp::EventQueue,
    logs,
    sandbox::{ACCOUNT_SID, AUTH_TOKEN, BOT_TOKEN, Sandbox},
};

/// The notifications' stored errors, oldest first, once `count` have one.
async fn stored_errors(app: &TestApp, count: usize) -> Vec<String> {
    let url = format!("mysql://root@127.0.0.1:3306/{}", app.notify_db);
    let pool = sqlx::MySqlPool::connect(&url).await.unwrap();
    for _ in 0..200 {
        let errors: Vec<(Option<String>,)> =
            sqlx::query_as("SELECT last_error FROM notifications ORDER BY id")
                .fetch_all(&pool)
                .await
                .unwrap();
        let errors: Vec<String> = errors.into_iter().filter_map(|(e,)| e).collect();
        if errors.len() >= count {
            pool.close().await;
            return errors;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {count} notifications failed");
}

async fn manual_alert(app: &TestApp, admin: &str, message: &str) -> String {
    let reply = app
        .post("/api/v1/alerts", Some(admin), json!({"message": message}))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.id()
}

async fn delivery_of(app: &TestApp, admin: &str, alert: &str) -> String {
    let alerts = app.get("/api/v1/alerts", admin).await;
    alerts.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == alert)
        .map(|a| a["delivery"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no alert {alert}: {}", alerts.body))
}

#[test]
fn the_telegram_bot_token_is_in_no_stored_error_reply_or_log() {
    logs::capturing(|captured| async move {
        let sandbox = Sandbox::start_default();
        let app = TestApp::spawn_with(Options {
            telegram_base_url: sandbox.url.clone(),
            ..Options::default()
        })
        .await;
        let admin = app.admin_tokens().await.access;

        // Telegram, or something in front of it, answers an error that
        // quotes the request path, token included; the retry gets through.
        sandbox.set_faults(json!({"telegram_404_burst": 1})).await;
        let echoed = manual_alert(&app, &admin, "answered with an error").await;
        let first = stored_errors(&app, 1).await;
        assert!(
            first[0].starts_with("telegram answered 404") && first[0].contains("/bot<redacted>/"),
            "{first:?}"
        );
        for _ in 0..100 {
            if delivery_of(&app, &admin, &echoed).await == "sent" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(delivery_of(&app, &admin, &echoed).await, "sent");

        // Nothing listens any more: the request fails before any answer.
        drop(sandbox);
        let refused = manual_alert(&app, &admin, "never reaches telegram").await;
        let errors = stored_errors(&app, 2).await;
        assert!(
            errors[1].starts_with("telegram connection failed"),
            "{errors:?}"
        );
        assert_eq!(delivery_of(&app, &admin, &refused).await, "retrying");

        for error in &errors {
            assert!(!error.contains(BOT_TOKEN), "stored: {error}");
        }
        let alerts = app.get("/api/v1/alerts", &admin).await;
        assert!(
            !alerts.body.to_string().contains(BOT_TOKEN),
            "{}",
            alerts.body
        );
        let logged = captured.text();
        assert!(
            logged.contains("telegram message not delivered"),
            "the failures were logged: {logged}"
        );
        assert!(!logged.contains(BOT_TOKEN), "logged: {logged}");
        app.cleanup().await;
    });
}

async fn new_pair(app: &TestApp, admin: &str) -> String {
    let operator = format!("op-{}", uuid::Uuid::new_v4().simple());
    let body = json!({"country": "US", "operator": operator});
    let reply = app
        .post("/api/v1/country-operators", Some(admin), body)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.id()
}

/// Sends one SMS through the gateway and reads it back once it failed.
async fn failed_sms(app: &TestApp, token: &str, pair: &str, to: &str) -> Value {
    let reply = app
        .post(
            "/api/v1/sms",
            Some(token),
            json!({"country_operator_id": pair, "to": to, "body": "leak test"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let id = reply.id();
    for _ in 0..100 {
        let detail = app.get(&format!("/api/v1/sms/{id}"), token).await;
        if detail.body["status"] == "failed" {
            return detail.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("message {id} never failed");
}

#[test]
fn the_twilio_account_sid_is_in_no_error_message_event_or_log() {
    logs::capturing(|captured| async move {
        let sandbox = Sandbox::start_default();
        let app = TestApp::spawn_with(Options {
            twilio_base_url: sandbox.url.clone(),
            provider_timeout: Duration::from_secs(1),
            ..Options::default()
        })
        .await;
        let admin = app.admin_tokens().await.access;
        let pair = new_pair(&app, &admin).await;
        let mut events = EventQueue::bind(&app.exchange).await;
        let secrets = [ACCOUNT_SID, AUTH_TOKEN];
        let clean = |text: &str| secrets.iter().all(|s| !text.contains(s));

        // Twilio refuses, quoting the resource path: its code and words
        // stay, the SID does not.
        sandbox.set_faults(json!({"twilio_404_burst": 1})).await;
        let refused = failed_sms(&app, &admin, &pair, "+12025550101").await;
        assert_eq!(refused["error_code"], "20404", "{refused}");
        assert_eq!(
            refused["error_message"],
            "The requested resource /2010-04-01/Accounts/<redacted>/Messages.json was not found"
        );

        // No answer in time.
        sandbox.set_faults(json!({"timeout_share": 1.0})).await;
        let timed_out = failed_sms(&app, &admin, &pair, "+12025550102").await;
        assert_eq!(
            (&timed_out["error_code"], &timed_out["error_message"]),
            (
                &json!("provider_uncertain"),
                &json!("provider request timed out")
            ),
            "{timed_out}"
        );

        // Nothing listens any more.
        drop(sandbox);
        let unreachable = failed_sms(&app, &admin, &pair, "+12025550103").await;
        assert_eq!(
            (&unreachable["error_code"], &unreachable["error_message"]),
            (
                &json!("provider_unreachable"),
                &json!("provider connection failed")
            ),
            "{unreachable}"
        );

        for sms in [&refused, &timed_out, &unreachable] {
            assert!(clean(&sms.to_string()), "{sms}");
        }
        let listed = app.get("/api/v1/sms", &admin).await;
        assert!(clean(&listed.body.to_string()), "{}", listed.body);
        let published = events
            .collect_until(Duration::from_secs(10), |e| {
                e.iter().filter(|e| e.body["status"] == "failed").count() >= 3
            })
            .await;
        for event in &published {
            assert!(clean(&event.body.to_string()), "{}", event.body);
        }
        let logged = captured.text();
        assert!(
            logged.contains("provider request failed"),
            "the failures were logged: {logged}"
        );
        assert!(clean(&logged), "logged: {logged}");
        app.cleanup().await;
    });
}
