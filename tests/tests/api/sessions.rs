//! Sessions end to end: process-svc paces sends through sms-svc into the
//! sandbox; stops, restarts, pins, crashes, replicas and country budgets.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::{Value, json};
use smsops_proto::process::v1::{
    CreateSessionRequest, Recipients, SessionActionRequest, SessionConfig,
    process_service_client::ProcessServiceClient,
};
use smsops_tests::{Options, Reply, TestApp, amqp::EventQueue, free_addr, sandbox::Sandbox};

pub(crate) async fn app_with(sandbox: &Sandbox, options: Options) -> TestApp {
    TestApp::spawn_with(Options {
        twilio_base_url: sandbox.url.clone(),
        ..options
    })
    .await
}

/// The country of each pair [`new_pair`] made: a session only takes
/// numbers under its pair's calling code, so [`session_body`] picks them
/// by it (pairs made elsewhere are taken for GB).
static COUNTRIES: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

pub(crate) async fn new_pair(app: &TestApp, admin: &str, country: &str, pinned: bool) -> String {
    let operator = format!("op-{}", uuid::Uuid::new_v4().simple());
    let body = json!({"country": country, "operator": operator, "is_high_priority": pinned});
    let reply = app
        .post("/api/v1/country-operators", Some(admin), body)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let id = reply.id();
    COUNTRIES.lock().unwrap().insert(id.clone(), country.into());
    id
}

/// Three numbers of the pair's country: +44 7700 900001 to 3 for GB.
pub(crate) fn numbers_for(pair: &str) -> Vec<String> {
    let country = COUNTRIES.lock().unwrap().get(pair).cloned();
    let code = smsops_common::phone::calling_code(country.as_deref().unwrap_or("GB")).unwrap();
    (1..=3).map(|n| format!("+{code}770090000{n}")).collect()
}

pub(crate) fn session_body(pair: &str, rate: f64, tag: &str) -> Value {
    json!({
        "country_operator_id": pair,
        "rate_per_minute": rate,
        "recipients": numbers_for(pair),
        "template": format!("{tag} {{n}} for {{pair}}"),
    })
}

pub(crate) async fn start(app: &TestApp, token: &str, body: Value) -> Value {
    let reply = app.post("/api/v1/sessions", Some(token), body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body
}

pub(crate) async fn act(app: &TestApp, token: &str, id: &str, action: &str, body: Value) -> Reply {
    app.post(
        &format!("/api/v1/sessions/{id}/{action}"),
        Some(token),
        body,
    )
    .await
}

/// The sequence numbers the sandbox received for messages tagged `tag`,
/// in arrival order, with arrival times (ms), and its duplicate count.
pub(crate) async fn received(sandbox: &Sandbox, tag: &str) -> (Vec<(u64, i64)>, u64) {
    let log = sandbox.twilio_messages().await;
    let prefix = format!("{tag} ");
    let mut seen = Vec::new();
    let mut duplicates = 0;
    for message in log["messages"].as_array().unwrap() {
        let body = message["body"].as_str().unwrap();
        let Some(rest) = body.strip_prefix(&prefix) else {
            continue;
        };
        let seq: u64 = rest.split_whitespace().next().unwrap().parse().unwrap();
        seen.push((seq, message["received_at_ms"].as_i64().unwrap()));
        duplicates += message["submissions"].as_u64().unwrap() - 1;
    }
    seen.sort_by_key(|(_, at)| *at);
    (seen, duplicates)
}

/// Waits (10 s at most) until what the sandbox received for `tag`
/// satisfies `done`, and returns it.
pub(crate) async fn wait_received(
    sandbox: &Sandbox,
    tag: &str,
    what: &str,
    done: impl Fn(&[(u64, i64)]) -> bool,
) -> Vec<(u64, i64)> {
    for _ in 0..200 {
        let (seen, _) = received(sandbox, tag).await;
        if done(&seen) {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{tag}: never {what}");
}

/// The time span, in ms, between the first and the last message received.
fn span_ms(seen: &[(u64, i64)]) -> i64 {
    match (seen.first(), seen.last()) {
        (Some(first), Some(last)) => last.1 - first.1,
        _ => 0,
    }
}

/// Every number from 0 up, once each.
#[track_caller]
pub(crate) fn assert_no_gaps(seen: &[(u64, i64)]) {
    let mut seqs: Vec<u64> = seen.iter().map(|(seq, _)| *seq).collect();
    seqs.sort_unstable();
    let expected: Vec<u64> = (0..seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "the sequence has gaps or repeats");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_sends_at_its_rate_evenly_and_stops_when_told() {
    let sandbox = Sandbox::start_default();
    let app = app_with(&sandbox, Options::default()).await;
    let admin = app.admin_tokens().await.access;
    let (_, user) = app.new_user().await;
    let pair = new_pair(&app, &admin, "GB", false).await;
    let mut events = EventQueue::bind(&app.session_exchange).await;

    let session = start(&app, &user.access, session_body(&pair, 600.0, "rate")).await;
    let id = session["id"].as_str().unwrap().to_string();
    assert_eq!(session["config"]["rate_per_minute"], 600.0);
    // Three seconds of sending, by the sandbox's clock.
    wait_received(&sandbox, "rate", "ran for 3 s", |seen| {
        span_ms(seen) >= 2900
    })
    .await;
    let stopped = act(&app, &user.access, &id, "stop", json!({})).await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.body);
    assert_eq!(stopped.body["state"], "stopped", "{}", stopped.body);

    let (seen, duplicates) = received(&sandbox, "rate").await;
    assert!(
        (28..=33).contains(&seen.len()),
        "600/min for 3 s sent {} messages",
        seen.len()
    );
    assert_eq!(duplicates, 0);
    assert_no_gaps(&seen);
    // Evenly spaced: 100 ms apart on average, never a burst.
    // The first message pays sms-svc's first look-up of the pair.
    let gaps: Vec<i64> = seen[1..].windows(2).map(|w| w[1].1 - w[0].1).collect();
    let mean = gaps.iter().sum::<i64>() as f64 / gaps.len() as f64;
    assert!(
        (85.0..=115.0).contains(&mean),
        "mean gap {mean} ms: {gaps:?}"
    );
    // The first sends also open sms-svc's connections to the provider;
    // one that comes late is followed by one on schedule, closer than 100
    // ms. Past them, no two sends ever come together.
    assert!(
        gaps.iter().skip(2).all(|gap| *gap >= 30),
        "a burst: {gaps:?}"
    );

    let counters = &stopped.body["counters"];
    assert_eq!(counters["submitted"].as_u64().unwrap(), seen.len() as u64);
    assert_eq!(
        stopped.body["next_seq"].as_u64().unwrap(),
        seen.len() as u64
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        received(&sandbox, "rate").await.0.len(),
        seen.len(),
        "sent after stop"
    );

    let got = events
        .collect_until(Duration::from_secs(10), |e| e.len() >= 2)
        .await;
    let kinds: Vec<&str> = got.iter().map(|e| e.routing_key.as_str()).collect();
    assert_eq!(kinds, ["session.started", "session.stopped"]);
    assert_eq!(got[1].body["session_id"], id.as_str());
    assert_eq!(got[1].message_id, got[1].body["event_id"].as_str().unwrap());
    assert!(
        got.iter()
            .all(|e| e.persistent && !e.traceparent.is_empty())
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_counters_and_sequence_and_the_audit_names_each_user() {
    let sandbox = Sandbox::start_default();
    let app = app_with(&sandbox, Options::default()).await;
    let admin = app.admin_tokens().await.access;
    let (starter_id, starter) = app.new_user().await;
    // Only the starter or an admin may stop it: the starter does.
    let (stopper_id, stopper) = (starter_id.clone(), starter.clone());
    let pair = new_pair(&app, &admin, "DE", false).await;

    let id = start(&app, &starter.access, session_body(&pair, 1200.0, "again")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_received(&sandbox, "again", "sent 10", |seen| seen.len() >= 10).await;
    let restarted = act(&app, &admin, &id, "restart", json!({})).await;
    assert_eq!(restarted.status, StatusCode::OK, "{}", restarted.body);
    assert!(
        ["starting", "running"].contains(&restarted.body["state"].as_str().unwrap()),
        "{}",
        restarted.body
    );
    let before = restarted.body["next_seq"].as_u64().unwrap();
    assert!(before > 0);
    let wanted = before as usize + 10;
    wait_received(&sandbox, "again", "went on after the restart", |seen| {
        seen.len() >= wanted
    })
    .await;
    let stopped = act(&app, &stopper.access, &id, "stop", json!({})).await;
    assert_eq!(stopped.body["state"], "stopped", "{}", stopped.body);
    assert!(stopped.body["next_seq"].as_u64().unwrap() > before);
    assert_eq!(stopped.body["stopped_by"], stopper_id.as_str());
    assert_eq!(stopped.body["started_by"], starter_id.as_str());

    let (seen, duplicates) = received(&sandbox, "again").await;
    assert_eq!(duplicates, 0);
    assert_no_gaps(&seen);
    assert_eq!(
        stopped.body["counters"]["submitted"].as_u64().unwrap(),
        seen.len() as u64
    );

    let audit = app
        .get(&format!("/api/v1/sessions/{id}/audit"), &admin)
        .await;
    let trail: Vec<(String, String)> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap().to_string(),
                a["by"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let admin_id = app.get("/api/v1/auth/me", &admin).await.id();
    assert_eq!(
        trail,
        [
            ("start".to_string(), starter_id),
            ("restart".to_string(), admin_id),
            ("stop".to_string(), stopper_id),
        ]
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_pairs_session_stops_only_for_an_admin_with_force() {
    let sandbox = Sandbox::start_default();
    let app = app_with(&sandbox, Options::default()).await;
    let admin = app.admin_tokens().await.access;
    let (_, user) = app.new_user().await;
    let pair = new_pair(&app, &admin, "FR", true).await;
    let id = start(&app, &user.access, session_body(&pair, 60.0, "pinned")).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    for action in ["stop", "restart"] {
        act(&app, &user.access, &id, action, json!({"force": true}))
            .await
            .assert_error(403, "pair_pinned");
    }
    act(&app, &admin, &id, "stop", json!({}))
        .await
        .assert_error(403, "pair_pinned");
    let stopped = act(&app, &admin, &id, "stop", json!({"force": true})).await;
    assert_eq!(stopped.body["state"], "stopped", "{}", stopped.body);

    let audit = app
        .get(&format!("/api/v1/sessions/{id}/audit"), &admin)
        .await;
    let last = audit.body["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["action"].as_str(), last["forced"].as_bool()),
        (Some("stop"), Some(true))
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_session_config_gets_its_code() {
    let sandbox = Sandbox::start_default();
    let app = app_with(&sandbox, Options::default()).await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin, "ES", false).await;
    let with = |patch: Value| {
        let mut body = session_body(&pair, 60.0, "bad");
        for (key, value) in patch.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    let cases = [
        (with(json!({"rate_per_minute": 0})), 400, "invalid_rate"),
        (with(json!({"rate_per_minute": -5})), 400, "invalid_rate"),
        (with(json!({"recipients": []})), 400, "invalid_recipients"),
        (
            with(json!({"recipients": {"range": {"first": "+447700900000", "count": 0}}})),
            400,
            "invalid_recipients",
        ),
        (
            with(json!({"recipients": ["+44 7700", "12345"]})),
            400,
            "invalid_phone",
        ),
        (
            with(json!({"template": "x".repeat(1601)})),
            400,
            "invalid_template",
        ),
        (with(json!({"template": ""})), 400, "invalid_template"),
        (
            with(json!({"stop_at": "tomorrow"})),
            400,
            "invalid_argument",
        ),
        (
            with(json!({"country_operator_id": "no-such-pair"})),
            404,
            "pair_not_found",
        ),
        (
            with(json!({"rate_per_minute": "fast"})),
            400,
            "invalid_argument",
        ),
    ];
    for (body, status, code) in cases {
        app.post("/api/v1/sessions", Some(&admin), body.clone())
            .await
            .assert_error(status, code);
    }
    let id = start(&app, &admin, with(json!({}))).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.post("/api/v1/sessions", Some(&admin), with(json!({})))
        .await
        .assert_error(409, "session_active");
    app.get("/api/v1/sessions/no-such-session", &admin)
        .await
        .assert_error(404, "session_not_found");
    act(&app, &admin, "no-such-session", "stop", json!({}))
        .await
        .assert_error(404, "session_not_found");
    // A stopped pair takes a new session.
    let stopped = act(&app, &admin, &id, "stop", json!({})).await;
    assert_eq!(stopped.body["state"], "stopped", "{}", stopped.body);
    start(&app, &admin, with(json!({"template": "again {n}"}))).await;
    let listed = app.get("/api/v1/sessions?country=ES", &admin).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 2);
    let running = app.get("/api/v1/sessions?state=running", &admin).await;
    assert_eq!(running.body["items"].as_array().unwrap().len(), 1);
    app.get("/api/v1/sessions?state=asleep", &admin)
        .await
        .assert_error(400, "invalid_argument");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_country_budget_is_shared_by_its_sessions() {
    let sandbox = Sandbox::start_default();
    let options = Options {
        country_budgets: vec![("IT".into(), 600.0)],
        ..Options::default()
    };
    let app = app_with(&sandbox, options).await;
    let admin = app.admin_tokens().await.access;
    let first = new_pair(&app, &admin, "IT", false).await;
    let second = new_pair(&app, &admin, "IT", false).await;
    let a = start(&app, &admin, session_body(&first, 600.0, "budget-a")).await;
    let b = start(&app, &admin, session_body(&second, 600.0, "budget-b")).await;
    // Both hold their share once the budget is shared out.
    for session in [&a, &b] {
        let path = format!("/api/v1/sessions/{}", session["id"].as_str().unwrap());
        let mut shared = false;
        for _ in 0..100 {
            if app.get(&path, &admin).await.body["effective_rate_per_minute"] == 300.0 {
                shared = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(shared, "the budget was never shared");
    }
    let from = chrono::Utc::now().timestamp_millis();
    let to = from + 3000;
    // Until both have sent past the 3 s window, by the sandbox's clock.
    for tag in ["budget-a", "budget-b"] {
        wait_received(&sandbox, tag, "sent past the window", |seen| {
            seen.last().is_some_and(|(_, at)| *at >= to)
        })
        .await;
    }
    let mut in_window = 0;
    for tag in ["budget-a", "budget-b"] {
        let (seen, _) = received(&sandbox, tag).await;
        let count = seen
            .iter()
            .filter(|(_, at)| (from..to).contains(at))
            .count();
        assert!(count >= 10, "{tag} starved: {count}");
        in_window += count;
    }
    // 600/min together is 30 in 3 s, not 60.
    assert!(
        (25..=35).contains(&in_window),
        "{in_window} messages in 3 s"
    );
    for session in [&a, &b] {
        let id = session["id"].as_str().unwrap();
        let now = app.get(&format!("/api/v1/sessions/{id}"), &admin).await;
        assert_eq!(now.body["effective_rate_per_minute"], 300.0, "{}", now.body);
    }
    for session in [&a, &b] {
        act(
            &app,
            &admin,
            session["id"].as_str().unwrap(),
            "stop",
            json!({}),
        )
        .await;
    }
    app.cleanup().await;
}

/// One replica's gRPC client, with the admin's token.
pub(crate) async fn replica_client(
    addr: std::net::SocketAddr,
) -> ProcessServiceClient<tonic::transport::Channel> {
    ProcessServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

pub(crate) fn authed<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

fn create_request(pair: &str, tag: &str, rate: f64) -> CreateSessionRequest {
    CreateSessionRequest {
        country_operator_id: pair.into(),
        config: Some(SessionConfig {
            rate_per_minute: rate,
            recipients: Some(Recipients {
                numbers: numbers_for(pair)[..1].to_vec(),
                range: None,
            }),
            template: format!("{tag} {{n}}"),
            limit: 0,
            stop_at: String::new(),
        }),
    }
}

/// An app whose process-svc replicas the test starts itself, and the
/// admin's token.
async fn app_for_replicas(sandbox: &Sandbox) -> (TestApp, String) {
    let options = Options {
        process_in_process: false,
        ..Options::default()
    };
    let app = app_with(sandbox, options).await;
    let admin = app.admin_tokens().await.access;
    (app, admin)
}

/// Each session's lease holder, read straight from the store.
async fn holders(app: &TestApp) -> HashMap<String, String> {
    let client = mongodb::Client::with_uri_str(&app.mongo_url).await.unwrap();
    let sessions = client
        .database(&app.process_db)
        .collection::<mongodb::bson::Document>("sessions");
    let mut cursor = sessions.find(mongodb::bson::doc! {}).await.unwrap();
    let mut owners = HashMap::new();
    while cursor.advance().await.unwrap() {
        let doc = cursor.deserialize_current().unwrap();
        owners.insert(
            doc.get_str("_id").unwrap().to_string(),
            doc.get_str("lease_owner").unwrap_or("").to_string(),
        );
    }
    owners
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replicas_session_resumes_with_no_repeat_and_no_gap() {
    let sandbox = Sandbox::start_default();
    let (app, admin) = app_for_replicas(&sandbox).await;
    let pair = new_pair(&app, &admin, "NL", false).await;
    let mut first = app.spawn_process_replica(app.process_addr, "replica-1");
    first.ready(app.process_addr).await;
    let id = start(&app, &admin, session_body(&pair, 1200.0, "crash")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_received(&sandbox, "crash", "sent 15", |seen| seen.len() >= 15).await;
    first.kill();
    let sent_before = received(&sandbox, "crash").await.0.len();
    assert!(sent_before > 10, "only {sent_before} sent before the crash");

    let second = app.spawn_process_replica(app.process_addr, "replica-2");
    second.ready(app.process_addr).await;
    let mut resumed = false;
    for _ in 0..100 {
        if received(&sandbox, "crash").await.0.len() > sent_before + 10 {
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(resumed, "the session did not resume");
    let stopped = act(&app, &admin, &id, "stop", json!({})).await;
    assert_eq!(stopped.body["state"], "stopped", "{}", stopped.body);
    let (seen, duplicates) = received(&sandbox, "crash").await;
    assert_eq!(duplicates, 0, "a number was sent twice");
    assert_no_gaps(&seen);
    let audit = app
        .get(&format!("/api/v1/sessions/{id}/audit"), &admin)
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["start", "resume", "stop"]);
    drop(second);
    app.cleanup().await;
}

/// Which replica holds the lifecycle event relay's lease, if any.
async fn relay_owner(app: &TestApp) -> Option<String> {
    let client = mongodb::Client::with_uri_str(&app.mongo_url).await.unwrap();
    let lease = client
        .database(&app.process_db)
        .collection::<mongodb::bson::Document>("sessions_relay_lease")
        .find_one(mongodb::bson::doc! {})
        .await
        .unwrap()?;
    Some(lease.get_str("owner").unwrap().to_string())
}

/// Creates a session on the replica at `addr` and stops it at once: two
/// lifecycle events, `session.started` and `session.stopped`.
async fn start_and_stop(
    app: &TestApp,
    admin: &str,
    addr: std::net::SocketAddr,
    tag: &str,
) -> String {
    let pair = new_pair(app, admin, "LU", false).await;
    let mut client = replica_client(addr).await;
    let created = client
        .create_session(authed(admin, create_request(&pair, tag, 60.0)))
        .await
        .unwrap()
        .into_inner();
    let request = SessionActionRequest {
        id: created.id.clone(),
        force: false,
    };
    client.stop_session(authed(admin, request)).await.unwrap();
    created.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_publishes_lifecycle_events_and_another_takes_over() {
    let sandbox = Sandbox::start_default();
    let (app, admin) = app_for_replicas(&sandbox).await;
    let mut events = EventQueue::bind(&app.session_exchange).await;
    let (a_addr, b_addr) = (app.process_addr, free_addr());
    let mut replicas = HashMap::from([
        (
            "replica-a",
            (a_addr, app.spawn_process_replica(a_addr, "replica-a")),
        ),
        (
            "replica-b",
            (b_addr, app.spawn_process_replica(b_addr, "replica-b")),
        ),
    ]);
    for (addr, replica) in replicas.values() {
        replica.ready(*addr).await;
    }
    // Sessions changed on both replicas: every event once, by one relay.
    for (i, addr) in [a_addr, b_addr, a_addr, b_addr].into_iter().enumerate() {
        start_and_stop(&app, &admin, addr, &format!("relay{i}")).await;
    }
    let seen = events
        .collect_until(Duration::from_secs(15), |e| e.len() >= 8)
        .await;
    assert_eq!(seen.len(), 8, "events: {seen:?}");
    let owner = relay_owner(&app)
        .await
        .expect("a replica holds the relay lease");
    // A second relay would have published some of them again by now.
    let again = events
        .collect_until(Duration::from_secs(1), |e| !e.is_empty())
        .await;
    assert!(again.is_empty(), "published twice: {again:?}");
    let ids: std::collections::HashSet<&str> = seen.iter().map(|e| e.message_id.as_str()).collect();
    assert_eq!(ids.len(), 8);

    // The relay's replica dies: the other takes the lease over once it
    // lapses, and publishes what happens on it.
    let (_, mut relay) = replicas.remove(owner.as_str()).unwrap();
    relay.kill();
    let (survivor, (survivor_addr, _)) = replicas.iter().next().unwrap();
    let id = start_and_stop(&app, &admin, *survivor_addr, "relay-after").await;
    let after = events
        .collect_until(Duration::from_secs(15), |e| e.len() >= 2)
        .await;
    let kinds: Vec<&str> = after
        .iter()
        .filter(|e| e.body["session_id"] == id.as_str())
        .map(|e| e.routing_key.as_str())
        .collect();
    assert_eq!(kinds, ["session.started", "session.stopped"]);
    assert_eq!(relay_owner(&app).await.as_deref(), Some(*survivor));
    drop(replicas);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_sessions_and_take_over_a_dead_ones() {
    let sandbox = Sandbox::start_default();
    let (app, admin) = app_for_replicas(&sandbox).await;
    let (a_addr, b_addr) = (app.process_addr, free_addr());
    let mut a = app.spawn_process_replica(a_addr, "replica-a");
    let b = app.spawn_process_replica(b_addr, "replica-b");
    a.ready(a_addr).await;
    b.ready(b_addr).await;
    let mut on_a = Vec::new();
    for (i, addr) in [a_addr, a_addr, b_addr, b_addr].into_iter().enumerate() {
        let pair = new_pair(&app, &admin, "BE", false).await;
        let tag = format!("share{i}");
        let created = replica_client(addr)
            .await
            .create_session(authed(&admin, create_request(&pair, &tag, 600.0)))
            .await
            .unwrap()
            .into_inner();
        if addr == a_addr {
            on_a.push((created.id, tag));
        }
    }
    // A replica holds what it created from the start.
    let owners = holders(&app).await;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for owner in owners.values() {
        *counts.entry(owner.as_str()).or_default() += 1;
    }
    assert_eq!(counts, HashMap::from([("replica-a", 2), ("replica-b", 2)]));

    a.kill();
    let killed_at = std::time::Instant::now();
    let mut before = HashMap::new();
    for (_, tag) in &on_a {
        before.insert(tag.clone(), received(&sandbox, tag).await.0.len());
    }
    loop {
        let owners = holders(&app).await;
        let taken = owners.values().all(|owner| owner == "replica-b");
        let mut sending = true;
        for (_, tag) in &on_a {
            sending &= received(&sandbox, tag).await.0.len() > before[tag] + 2;
        }
        if taken && sending {
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(10),
            "not taken over in 10 s: {owners:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut client = replica_client(b_addr).await;
    for id in owners.keys() {
        let request = SessionActionRequest {
            id: id.clone(),
            force: false,
        };
        let stopped = client
            .stop_session(authed(&admin, request))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(stopped.state, "stopped");
    }
    for i in 0..4 {
        let (seen, duplicates) = received(&sandbox, &format!("share{i}")).await;
        assert_eq!(duplicates, 0);
        assert_no_gaps(&seen);
    }
    drop(b);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_sends_keep_failing_fails_with_the_reason() {
    // No provider answers at the default Twilio URL of the tests.
    let app = TestApp::spawn_with(Options {
        failure_streak: 5,
        ..Options::default()
    })
    .await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin, "PT", false).await;
    let mut events = EventQueue::bind(&app.session_exchange).await;
    let id = start(&app, &admin, session_body(&pair, 600.0, "doomed")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut session = Value::Null;
    for _ in 0..150 {
        session = app
            .get(&format!("/api/v1/sessions/{id}"), &admin)
            .await
            .body;
        if session["state"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(session["state"], "failed", "{session}");
    let reason = session["reason"].as_str().unwrap();
    // Unreachable until sms-svc's breaker opens, unavailable after: which
    // one the fifth failure meets depends on timing.
    assert!(
        reason.contains("in a row")
            && (reason.contains("provider_unavailable") || reason.contains("provider_unreachable")),
        "{reason}"
    );
    assert!(session["counters"]["failed"].as_u64().unwrap() >= 5);
    let got = events
        .collect_until(Duration::from_secs(10), |e| e.len() >= 2)
        .await;
    let kinds: Vec<&str> = got.iter().map(|e| e.routing_key.as_str()).collect();
    assert_eq!(kinds, ["session.started", "session.failed"]);
    let audit = app
        .get(&format!("/api/v1/sessions/{id}/audit"), &admin)
        .await;
    let last = audit.body["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["action"].as_str(), last["by"].as_str()),
        (Some("fail"), Some("process-svc"))
    );
    // The pair is free again.
    start(&app, &admin, session_body(&pair, 60.0, "next")).await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_waits_out_an_sms_svc_outage_and_skips_nothing() {
    let sandbox = Sandbox::start_default();
    // Three failures of its own would fail it: the outage must not count.
    let options = Options {
        failure_streak: 3,
        ..Options::default()
    };
    let mut app = app_with(&sandbox, options).await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin, "AT", false).await;
    let id = start(&app, &admin, session_body(&pair, 1200.0, "outage")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_received(&sandbox, "outage", "sent 5", |seen| seen.len() >= 5).await;
    app.stop_sms().await;
    let during = received(&sandbox, "outage").await.0.len();
    // Until the session has met the outage (and saved what it met).
    let mut session = Value::Null;
    for _ in 0..100 {
        session = app
            .get(&format!("/api/v1/sessions/{id}"), &admin)
            .await
            .body;
        if session["state"] == "paused" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(received(&sandbox, "outage").await.0.len(), during);
    assert_eq!(session["state"], "paused", "{session}");
    assert!(
        session["paused_reason"]
            .as_str()
            .unwrap()
            .contains("unavailable"),
        "{session}"
    );
    // However long it lasts: many more tries than the failure streak.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let waiting = app
        .get(&format!("/api/v1/sessions/{id}"), &admin)
        .await
        .body;
    assert_eq!(waiting["state"], "paused", "{waiting}");
    let listed = app.get("/api/v1/sessions?state=paused", &admin).await.body;
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == id),
        "{listed}"
    );

    app.start_sms().await;
    let mut resumed = false;
    for _ in 0..100 {
        if received(&sandbox, "outage").await.0.len() > during + 10 {
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(resumed, "the session did not resume after the outage");
    let running = app
        .get(&format!("/api/v1/sessions/{id}"), &admin)
        .await
        .body;
    assert_eq!(
        (running["state"].as_str(), &running["paused_reason"]),
        (Some("running"), &Value::Null),
        "{running}"
    );
    let stopped = act(&app, &admin, &id, "stop", json!({})).await;
    assert_eq!(stopped.body["state"], "stopped", "{}", stopped.body);
    let (seen, duplicates) = received(&sandbox, "outage").await;
    assert_eq!(duplicates, 0);
    assert_no_gaps(&seen);
    assert_eq!(
        stopped.body["next_seq"].as_u64().unwrap(),
        seen.len() as u64
    );
    app.cleanup().await;
}
