//! Failover on delivery health: the sandbox's SMSC stays bound but stops
//! delivering some pairs' messages. The pair whose share falls under the
//! route_health rule's threshold moves to Twilio (all but its probes), an
//! alert opens and notify-svc's service account audits the switch; a
//! high-priority pair moves at a share a normal pair keeps; once the SMSC
//! delivers again the probes show it, the alerts resolve and traffic
//! returns. A pair that stays above its threshold never moves.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use smsops_proto::sms::v1::{
    SendSmsBatchRequest, SendSmsRequest, send_sms_result, sms_service_client::SmsServiceClient,
};
use smsops_tests::{NOTIFY_EMAIL, Options, TestApp, sandbox::Sandbox};

/// The rule's window in this test; the defaults' is five minutes.
const WINDOW: Duration = Duration::from_secs(10);
/// Each pair's messages per tick of [`TICK`]: 50 a second per pair.
const PER_TICK: u32 = 5;
const TICK: Duration = Duration::from_millis(100);

struct Sent {
    at: Duration,
    pair: usize,
    provider: String,
    reason: String,
}

struct Pairs {
    ids: [String; 3],
}

/// X (delivers 10 % through the SMSC), H (high priority, 70 %) and Y
/// (normal, 70 %) while the fault is on.
const X: usize = 0;
const H: usize = 1;
const Y: usize = 2;
const PREFIXES: [&str; 3] = ["+4477001", "+4477002", "+4477003"];

async fn create_pair(app: &TestApp, admin: &str, high_priority: bool) -> String {
    let operator = format!("op-{}", uuid::Uuid::new_v4().simple());
    let body = json!({"country": "GB", "operator": operator, "is_high_priority": high_priority});
    let reply = app
        .post("/api/v1/country-operators", Some(admin), body)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let id = reply.id();
    let path = format!("/api/v1/country-operators/{id}");
    let route = json!({"route": [{"provider": "smsc"}, {"provider": "twilio", "priority": 1}]});
    let reply = app
        .call(Method::PATCH, &path, Some(admin), Some(route))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    id
}

/// One batch: [`PER_TICK`] messages for each pair.
async fn send_tick(
    client: &mut SmsServiceClient<tonic::transport::Channel>,
    token: &str,
    pairs: &Pairs,
    n: &mut u32,
    at: Duration,
    sent: &mut Vec<Sent>,
) {
    let mut messages = Vec::new();
    let mut which = Vec::new();
    for (pair, id) in pairs.ids.iter().enumerate() {
        for _ in 0..PER_TICK {
            *n += 1;
            messages.push(SendSmsRequest {
                country_operator_id: id.clone(),
                to: format!("{}{:05}", PREFIXES[pair], *n),
                body: "health".into(),
                ..Default::default()
            });
            which.push(pair);
        }
    }
    let mut request = tonic::Request::new(SendSmsBatchRequest { messages });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let reply = client.send_sms_batch(request).await.unwrap().into_inner();
    for (result, pair) in reply.results.into_iter().zip(which) {
        let Some(send_sms_result::Result::Sms(sms)) = result.result else {
            panic!("refused: {result:?}");
        };
        sent.push(Sent {
            at,
            pair,
            provider: sms.provider,
            reason: sms.route_reason,
        });
    }
}

/// The open or resolved route_health alert of `pair` for the SMSC.
fn alert_of<'a>(alerts: &'a Value, pair: &str) -> Option<&'a Value> {
    alerts["items"].as_array()?.iter().find(|a| {
        a["rule"] == "route_health" && a["country_operator_id"] == pair && a["provider"] == "smsc"
    })
}

/// Of `pair`'s messages sent in `from..to`, how many went to twilio, and
/// how many in all.
fn to_twilio(sent: &[Sent], pair: usize, from: Duration, to: Duration) -> (usize, usize) {
    let window: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.pair == pair && s.at >= from && s.at < to)
        .collect();
    let twilio = window.iter().filter(|s| s.provider == "twilio").count();
    (twilio, window.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_that_stops_delivering_moves_to_twilio_and_comes_back() {
    let sandbox = Sandbox::start(json!({
        "rules": [{"prefix": "+44", "delivered": 1.0, "callback_latency_ms": 100}],
    }));
    let app = TestApp::spawn_with(Options {
        twilio_base_url: sandbox.url.clone(),
        smpp_addr: Some(sandbox.smsc_addr.clone()),
        twilio_beside_smpp: true,
        ..Options::default()
    })
    .await;
    let admin = app.admin_tokens().await.access;
    let mut rules = app.get("/api/v1/alerts/rules", &admin).await.body;
    assert_eq!(rules["route_health"]["enabled"], true, "{rules}");
    rules["route_health"] = json!({
        "enabled": true, "threshold": 0.5, "high_priority_threshold": 0.8,
        "window_seconds": WINDOW.as_secs(), "min_finished": 30, "hysteresis": 0.2,
        "probe_share": 0.02, "min_probes": 5,
    });
    let reply = app
        .call(
            Method::PUT,
            "/api/v1/alerts/rules",
            Some(&admin),
            Some(rules),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["route_health"]["probe_share"], 0.02);
    let pairs = Pairs {
        ids: [
            create_pair(&app, &admin, false).await,
            create_pair(&app, &admin, true).await,
            create_pair(&app, &admin, false).await,
        ],
    };
    sandbox.wait_smsc_bound(1, Duration::from_secs(20)).await;
    let mut client = SmsServiceClient::connect(format!("http://{}", app.sms_addr))
        .await
        .unwrap();

    let started = Instant::now();
    let mut sent = Vec::new();
    let mut n = 0;
    let mut fault_at = None;
    let mut opened: [Option<Duration>; 2] = [None, None];
    let mut cleared_at = None;
    let mut resolved: [Option<Duration>; 2] = [None, None];
    let mut ticks = 0u32;
    let ended_at = loop {
        let at = started.elapsed();
        send_tick(&mut client, &admin, &pairs, &mut n, at, &mut sent).await;
        ticks += 1;
        if fault_at.is_none() && at > Duration::from_secs(3) {
            let shares = json!({PREFIXES[X]: 0.1, PREFIXES[H]: 0.7, PREFIXES[Y]: 0.7});
            sandbox
                .set_faults(json!({"smsc_delivered_share_by_prefix": shares}))
                .await;
            fault_at = Some(started.elapsed());
        }
        if let Some(fault) = fault_at
            && ticks.is_multiple_of(5)
        {
            let alerts = app.get("/api/v1/alerts?state=all", &admin).await.body;
            let now = started.elapsed();
            for (slot, pair) in [X, H].into_iter().enumerate() {
                let alert = alert_of(&alerts, &pairs.ids[pair]);
                if opened[slot].is_none() && alert.is_some() {
                    opened[slot] = Some(now);
                }
                if cleared_at.is_some()
                    && resolved[slot].is_none()
                    && alert.is_some_and(|a| a["state"] == "resolved")
                {
                    resolved[slot] = Some(now);
                }
            }
            assert!(
                alert_of(&alerts, &pairs.ids[Y]).is_none(),
                "a pair at 70 % moved: {alerts}"
            );
            assert!(
                opened.iter().all(Option::is_some) || now < fault + WINDOW * 3,
                "not moved in three windows: {opened:?} after {fault:?}, {alerts}"
            );
            // Eight seconds of both moved, and 200 of each sent since (a
            // slow machine sends fewer a second), then the SMSC delivers again.
            let both_open = opened.iter().copied().collect::<Option<Vec<_>>>();
            let moved_long = |at: &[Duration]| {
                at.iter().zip([X, H]).all(|(at, pair)| {
                    let since = *at + Duration::from_secs(1);
                    let count = sent
                        .iter()
                        .filter(|s| s.pair == pair && s.at >= since)
                        .count();
                    now > *at + Duration::from_secs(8) && count >= 200
                })
            };
            if cleared_at.is_none() && both_open.is_some_and(|at| moved_long(&at)) {
                sandbox.set_faults(json!({})).await;
                cleared_at = Some(started.elapsed());
            }
            if let Some(cleared) = cleared_at {
                assert!(
                    resolved.iter().all(Option::is_some) || now < cleared + WINDOW * 5,
                    "not back in five windows: {resolved:?} after {cleared:?}, {alerts}"
                );
            }
            let back = resolved.iter().copied().collect::<Option<Vec<_>>>();
            if back.is_some_and(|back| back.iter().all(|at| now > *at + Duration::from_secs(3))) {
                break now;
            }
        }
        tokio::time::sleep(TICK).await;
    };
    let fault = fault_at.unwrap();
    let (open_x, open_h) = (opened[X].unwrap(), opened[H].unwrap());
    let cleared = cleared_at.unwrap();
    let (back_x, back_h) = (resolved[X].unwrap(), resolved[H].unwrap());

    // Once moved (a second for the replicas to hear of it), X's and H's
    // new messages go to Twilio but for the 2 % of probes.
    let second = Duration::from_secs(1);
    for (pair, open) in [(X, open_x), (H, open_h)] {
        let (twilio, all) = to_twilio(&sent, pair, open + second, cleared);
        assert!(all >= 200, "{all} sent while moved");
        assert!(
            twilio * 100 >= all * 95,
            "pair {pair}: {twilio} of {all} to twilio"
        );
        let moved = sent
            .iter()
            .filter(|s| s.pair == pair && s.at >= open + second && s.at < cleared);
        for s in moved {
            let expected = if s.provider == "twilio" {
                "failover_health"
            } else {
                "probe"
            };
            assert_eq!(s.reason, expected, "pair {pair} at {:?}", s.at);
        }
        // Back: every message to the SMSC again, by its route.
        let back = if pair == X { back_x } else { back_h };
        let after: Vec<&Sent> = sent
            .iter()
            .filter(|s| s.pair == pair && s.at > back + second)
            .collect();
        assert!(!after.is_empty());
        for s in after {
            assert_eq!((s.provider.as_str(), s.reason.as_str()), ("smsc", "route"));
        }
    }
    // Y, at a share a normal pair keeps, never moved.
    for s in sent.iter().filter(|s| s.pair == Y) {
        assert_eq!(
            (s.provider.as_str(), s.reason.as_str()),
            ("smsc", "route"),
            "Y at {:?}",
            s.at
        );
    }

    // Each switch, both ways, is in the audit log as notify-svc's.
    let audit = app
        .get("/api/v1/audit?kind=route&page_size=50", &admin)
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.body);
    let records = audit.body["items"].as_array().unwrap();
    for pair in [X, H] {
        for kind in ["route.failed_over", "route.restored"] {
            let record = records
                .iter()
                .find(|r| r["kind"] == kind && r["target"] == pairs.ids[pair])
                .unwrap_or_else(|| panic!("no {kind} for pair {pair}: {records:?}"));
            assert_eq!(record["actor"]["email"], NOTIFY_EMAIL, "{record}");
            assert_eq!(record["actor"]["kind"], "service", "{record}");
            assert_eq!(record["after"]["provider"], "smsc", "{record}");
        }
    }
    assert!(
        !records.iter().any(|r| r["target"] == pairs.ids[Y]),
        "{records:?}"
    );
    let (twilio_x, all_x) = to_twilio(&sent, X, open_x + second, cleared);
    println!(
        "route health: fault at {:.1}s; X (10 %) moved after {:.1}s, H (70 %, high priority) after {:.1}s; \
         {twilio_x} of {all_x} of X's to twilio while moved; SMSC delivering again at {:.1}s, \
         X back after {:.1}s, H after {:.1}s; {} sent in {:.1}s",
        fault.as_secs_f64(),
        (open_x - fault).as_secs_f64(),
        (open_h - fault).as_secs_f64(),
        cleared.as_secs_f64(),
        (back_x - cleared).as_secs_f64(),
        (back_h - cleared).as_secs_f64(),
        sent.len(),
        ended_at.as_secs_f64()
    );
    app.cleanup().await;
}
