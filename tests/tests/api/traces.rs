//! One trace across every hop: the gateway, sms-svc and its provider call,
//! the outbox relay, and each consumer, exported over OTLP by the services
//! running from their own binaries to a receiver this test starts.

use std::time::{Duration, Instant};

use super::sessions::{new_pair, session_body, start};
use reqwest::StatusCode;
use serde_json::json;
use smsops_tests::{
    Options, TestApp,
    otlp::{self, CONSUMER, PRODUCER, Receiver, SERVER, Span},
    sandbox::Sandbox,
};

/// The services that run apart export to `endpoint`, every trace sampled,
/// batches sent every 100 ms. They log warnings only: the spans, all at
/// info, must come all the same.
async fn traced_app(sandbox: &Sandbox, endpoint: &str, extra: &[(&str, &str)]) -> TestApp {
    let mut child_env = vec![
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_string(),
            endpoint.to_string(),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()),
        ("OTEL_TRACES_SAMPLER".into(), "parentbased_always_on".into()),
        ("SMSOPS_LOG".into(), "warn".into()),
    ];
    child_env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    TestApp::spawn_with(Options {
        twilio_base_url: sandbox.url.clone(),
        telegram_base_url: sandbox.url.clone(),
        sms_apart: true,
        consumers_apart: true,
        gateway_apart: true,
        process_in_process: false,
        child_env,
        ..Options::default()
    })
    .await
}

fn delivering() -> Sandbox {
    Sandbox::start(json!({"default_rule": {"delivered": 1.0, "callback_latency_ms": 10}}))
}

/// Waits until `found` holds of the spans received.
async fn spans_until(
    receiver: &Receiver,
    what: &str,
    found: impl Fn(&[Span]) -> bool,
) -> Vec<Span> {
    let started = Instant::now();
    loop {
        let spans = receiver.spans();
        if found(&spans) {
            return spans;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let names: Vec<String> = spans
                .iter()
                .map(|s| format!("{}: {} ({})", s.service, s.name, s.trace_id))
                .collect();
            panic!("no {what} in 30 s; received {names:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn one<'a>(spans: &'a [Span], service: &str, name: &str, kind: i32) -> &'a Span {
    let found: Vec<&Span> = spans
        .iter()
        .filter(|s| s.service == service && s.name == name && s.kind == kind)
        .collect();
    assert_eq!(found.len(), 1, "{service}: {name}: {found:#?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sms_is_one_trace_from_the_gateway_through_every_consumer() {
    let receiver = Receiver::start().await;
    let sandbox = delivering();
    let app = traced_app(&sandbox, &receiver.endpoint(), &[]).await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin, "GB", false).await;

    // The caller's own context: everything below continues it.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let reply = app
        .http
        .post(app.url("/api/v1/sms"))
        .bearer_auth(&admin)
        .header("traceparent", format!("00-{trace}-{caller_span}-01"))
        .json(&json!({"country_operator_id": pair, "to": "+447700900123", "body": "traced"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::ACCEPTED);

    // Each service exports on its own schedule, and a producer span ends
    // only at the broker's confirm: wait for every one expected.
    let expected = [
        ("gateway", "POST /api/v1/sms"),
        ("gateway", "smsops.sms.v1.SmsService/SendSms"),
        ("sms-svc", "smsops.sms.v1.SmsService/SendSms"),
        ("sms-svc", "POST twilio"),
        ("sms-svc", "sms.accepted publish"),
        ("sms-svc", "sms.delivered publish"),
        ("metrics-svc", "sms.accepted process"),
        ("metrics-svc", "sms.delivered process"),
        ("notify-svc", "sms.delivered process"),
    ];
    let spans = spans_until(&receiver, "every span of the message", |spans| {
        let linked = spans.iter().any(|s| {
            s.service == "metrics-svc"
                && s.name.ends_with("process batch")
                && s.links.iter().any(|(linked, _)| linked == trace)
        });
        linked
            && expected.iter().all(|(service, name)| {
                spans
                    .iter()
                    .any(|s| s.trace_id == trace && s.service == *service && s.name == *name)
            })
    })
    .await;
    let ours: Vec<Span> = spans
        .iter()
        .filter(|s| s.trace_id == trace)
        .cloned()
        .collect();

    let request = one(&ours, "gateway", "POST /api/v1/sms", SERVER);
    assert_eq!(request.parent_span_id, caller_span);
    assert_eq!(request.attribute("http.response.status_code"), Some("202"));
    let call = one(
        &ours,
        "gateway",
        "smsops.sms.v1.SmsService/SendSms",
        otlp::CLIENT,
    );
    assert_eq!(call.parent_span_id, request.span_id);
    let served = one(&ours, "sms-svc", "smsops.sms.v1.SmsService/SendSms", SERVER);
    assert_eq!(served.parent_span_id, call.span_id);
    let provider = one(&ours, "sms-svc", "POST twilio", otlp::CLIENT);
    assert_eq!(provider.parent_span_id, served.span_id);
    assert_eq!(provider.attribute("http.response.status_code"), Some("201"));

    // Each event is published in the request's trace, the receipt's too:
    // its callback came on a request of its own, long after.
    for event in ["sms.accepted", "sms.delivered"] {
        let published = one(&ours, "sms-svc", &format!("{event} publish"), PRODUCER);
        assert_eq!(published.parent_span_id, served.span_id, "{event}");
    }
    let delivered = one(&ours, "sms-svc", "sms.delivered publish", PRODUCER);
    for consumer in ["metrics-svc", "notify-svc"] {
        let processed = one(&ours, consumer, "sms.delivered process", CONSUMER);
        assert_eq!(processed.parent_span_id, delivered.span_id, "{consumer}");
    }
    // metrics-svc takes every status; its batches link to their events.
    let accepted = one(&ours, "sms-svc", "sms.accepted publish", PRODUCER);
    let _ = one(&ours, "metrics-svc", "sms.accepted process", CONSUMER);
    let batches: Vec<&Span> = spans
        .iter()
        .filter(|s| s.service == "metrics-svc" && s.name.ends_with("process batch"))
        .collect();
    assert!(
        batches.iter().any(|b| b
            .links
            .contains(&(trace.to_string(), accepted.span_id.clone()))),
        "{batches:#?}"
    );
    app.cleanup().await;
}

/// Single sends the gateway hands to sms-svc together: whichever call a
/// message went in, its events continue its own request's trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_sends_batched_together_keep_each_its_own_trace() {
    let receiver = Receiver::start().await;
    let sandbox = delivering();
    let app = traced_app(&sandbox, &receiver.endpoint(), &[]).await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin, "GB", false).await;

    let traces: Vec<String> = (0..20u64)
        .map(|n| format!("{:032x}", 0xabc0_0000_u64 + n))
        .collect();
    let sends = traces.iter().enumerate().map(|(n, trace)| {
        let request = app
            .http
            .post(app.url("/api/v1/sms"))
            .bearer_auth(&admin)
            .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
            .json(&json!({"country_operator_id": pair, "to": format!("+4477009{n:05}"), "body": "traced together"}));
        async move { request.send().await.unwrap().status() }
    });
    let statuses = futures::future::join_all(sends).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::ACCEPTED),
        "{statuses:?}"
    );

    let published = |spans: &[Span], trace: &str, event: &str| {
        spans.iter().any(|s| {
            s.trace_id == trace && s.service == "sms-svc" && s.name == format!("{event} publish")
        })
    };
    spans_until(&receiver, "each send's events in its own trace", |spans| {
        traces.iter().all(|trace| {
            published(spans, trace, "sms.accepted") && published(spans, trace, "sms.delivered")
        })
    })
    .await;
    let batched = receiver
        .spans()
        .iter()
        .any(|s| s.service == "sms-svc" && s.name == "smsops.sms.v1.SmsService/SendSmsBatch");
    assert!(batched, "no send went in a batch");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_batch_of_a_session_is_a_trace_linked_to_its_start() {
    let receiver = Receiver::start().await;
    let sandbox = delivering();
    let app = traced_app(&sandbox, &receiver.endpoint(), &[]).await;
    let replica = app.spawn_process_replica(app.process_addr, "traced-1");
    replica.ready(app.process_addr).await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin, "GB", false).await;
    let mut body = session_body(&pair, 600.0, "traced");
    body["limit"] = json!(3);
    start(&app, &admin, body).await;

    let spans = spans_until(&receiver, "session batches and their sends", |spans| {
        let batches = spans.iter().filter(|s| s.name == "session send").count();
        let sent = spans
            .iter()
            .filter(|s| s.service == "sms-svc" && s.name == "smsops.sms.v1.SmsService/SendSmsBatch")
            .count();
        let start = spans.iter().any(|s| {
            s.name == "smsops.process.v1.ProcessService/CreateSession" && s.kind == SERVER
        });
        start && batches >= 1 && sent >= batches
    })
    .await;
    let start = one(
        &spans,
        "process-svc",
        "smsops.process.v1.ProcessService/CreateSession",
        SERVER,
    );
    let gateway = one(&spans, "gateway", "POST /api/v1/sessions", SERVER);
    assert_eq!(start.trace_id, gateway.trace_id);
    for batch in spans.iter().filter(|s| s.name == "session send") {
        assert_eq!(batch.service, "process-svc");
        assert!(batch.parent_span_id.is_empty(), "a root: {batch:#?}");
        assert_ne!(batch.trace_id, start.trace_id);
        assert_eq!(
            batch.links,
            [(start.trace_id.clone(), start.span_id.clone())],
            "{batch:#?}"
        );
        // Its sends reach sms-svc in its trace.
        let call = spans
            .iter()
            .find(|s| s.trace_id == batch.trace_id && s.parent_span_id == batch.span_id)
            .unwrap_or_else(|| panic!("no call under {batch:#?}"));
        assert!(spans.iter().any(|s| s.service == "sms-svc"
            && s.kind == SERVER
            && s.parent_span_id == call.span_id));
    }
    drop(replica);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tracing_switched_off_nothing_is_exported() {
    let receiver = Receiver::start().await;
    let sandbox = delivering();
    let app = traced_app(
        &sandbox,
        &receiver.endpoint(),
        &[("OTEL_SDK_DISABLED", "true")],
    )
    .await;
    let admin = app.admin_tokens().await.access;
    let pair = new_pair(&app, &admin, "GB", false).await;
    let reply = app
        .post(
            "/api/v1/sms",
            Some(&admin),
            json!({"country_operator_id": pair, "to": "+447700900124", "body": "untraced"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    // Long enough for the message's events to reach both consumers and
    // for several export rounds, had any been due.
    let counted = "smsops_notify_events_total";
    let started = Instant::now();
    while app.prometheus_sum("notify-svc", counted).await < 1.0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "notify-svc took nothing in"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.count(), 0);
    app.cleanup().await;
}
