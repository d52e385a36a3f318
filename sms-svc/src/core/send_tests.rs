//! `SmsCore` over in-memory repositories and a scripted provider: the
//! batch logic without MySQL, operator-svc or the network.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::future::BoxFuture;
use smsops_common::auth::{Caller, Quota, Role};

use super::{
    SendRequest, SmsCore, SmsError,
    providers::{Attempt, Connector, Dispatcher, Lookup, OutgoingSms, ProviderReply, codes},
};
use crate::{
    config::DeliveryConfig,
    domain::{
        Message, MessageRepository, Pair, Status,
        memory::{MemoryPairs, MemoryStore},
    },
};

/// Answers each number as its last digit says (or, as a spare account,
/// takes every one), and keeps what it was sent.
#[derive(Default)]
struct Scripted {
    submitted: Mutex<Vec<String>>,
    takes_all: bool,
}

impl Scripted {
    fn answer(&self, to: &str) -> Attempt {
        let last = if self.takes_all {
            None
        } else {
            to.chars().last()
        };
        match last {
            Some('1') => Attempt::Answered(ProviderReply::Rejected {
                code: "21211".into(),
                message: "invalid 'To' number".into(),
            }),
            Some('2') => Attempt::Unreachable,
            Some('3') => Attempt::Lost("provider request timed out".into()),
            Some('4') => Attempt::Answered(ProviderReply::RateLimited),
            _ => Attempt::Answered(ProviderReply::Accepted {
                sid: format!("SM{}", uuid::Uuid::now_v7().simple()),
                status: Status::Queued,
                provider_status: "queued".into(),
                parts: Vec::new(),
            }),
        }
    }

    fn submitted(&self) -> Vec<String> {
        self.submitted.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Connector for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }

    fn submit<'a>(&'a self, sms: &'a OutgoingSms<'a>) -> BoxFuture<'a, Attempt> {
        if let Ok(mut submitted) = self.submitted.lock() {
            submitted.push(sms.to.to_string());
        }
        Box::pin(async move { self.answer(sms.to) })
    }

    fn lookup<'a>(&'a self, _sid: &'a str) -> BoxFuture<'a, Lookup> {
        Box::pin(async { Lookup::Unknown })
    }

    fn redact(&self, text: &str) -> String {
        text.to_string()
    }
}

struct Harness {
    core: SmsCore<MemoryStore, MemoryPairs>,
    store: MemoryStore,
    provider: Arc<Scripted>,
}

fn harness() -> Harness {
    harness_with(None)
}

/// With `spare`, a second account behind the scripted one.
fn harness_with(spare: Option<Arc<Scripted>>) -> Harness {
    let store = MemoryStore::default();
    let provider = Arc::new(Scripted::default());
    let config = DeliveryConfig {
        backoff_base: Duration::from_millis(1),
        max_attempts: 3,
        ..DeliveryConfig::default()
    };
    let dispatcher = Dispatcher::new("scripted", provider.clone(), config);
    let pairs = MemoryPairs(vec![Pair {
        id: "p-gb".into(),
        country: "GB".into(),
        operator: "Vodafone".into(),
        is_high_priority: false,
        route: Vec::new(),
    }]);
    let mut dispatchers = vec![dispatcher];
    if let Some(spare) = spare {
        dispatchers.push(Dispatcher::new("spare", spare, config));
    }
    let core = SmsCore::new(store.clone(), pairs, dispatchers, None);
    Harness {
        core,
        store,
        provider,
    }
}

fn operator(quota: Quota) -> Caller {
    Caller {
        user_id: "u1".into(),
        email: "op@example.com".into(),
        role: Role::Operator,
        jti: "j1".into(),
        exp: i64::MAX,
        ver: 1,
        quota,
        token: String::new(),
    }
}

fn sms(to: &str, key: &str) -> SendRequest {
    SendRequest {
        pair_id: "p-gb".into(),
        to: to.into(),
        body: "hello".into(),
        idempotency_key: key.into(),
        ..SendRequest::default()
    }
}

fn statuses(results: &[Result<Message, SmsError>]) -> Vec<&str> {
    results
        .iter()
        .map(|result| match result {
            Ok(message) => message.status.as_str(),
            Err(err) => err.code().as_str(),
        })
        .collect()
}

#[tokio::test]
async fn each_message_is_kept_sent_and_its_answer_recorded() {
    let h = harness();
    let caller = operator(Quota::UNLIMITED);
    let batch = vec![sms("+447700900100", ""), sms("+447700900110", "")];
    let results = h.core.send_batch(&caller, batch).await.expect("batch");
    assert_eq!(statuses(&results), ["queued", "queued"]);
    assert_eq!(h.provider.submitted(), ["+447700900100", "+447700900110"]);
    let state = h.store.state();
    for result in &results {
        let message = result.as_ref().expect("sent");
        let kept = &state.messages[&message.id];
        assert_eq!(kept.status, Status::Queued);
        assert_eq!(kept.provider, "scripted");
        assert!(
            kept.provider_sid
                .as_ref()
                .is_some_and(|sid| sid.starts_with("SM"))
        );
        let history: Vec<Status> = state
            .history
            .iter()
            .filter(|(id, _)| *id == message.id)
            .map(|(_, change)| change.status)
            .collect();
        assert_eq!(history, [Status::Accepted, Status::Queued]);
    }
    let events: Vec<&str> = state.outbox.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(events.iter().filter(|t| **t == "sms.accepted").count(), 2);
    assert_eq!(events.iter().filter(|t| **t == "sms.queued").count(), 2);
}

#[tokio::test]
async fn a_message_not_taken_goes_to_the_next_account_an_uncertain_one_never() {
    let spare = Arc::new(Scripted {
        takes_all: true,
        ..Scripted::default()
    });
    let h = harness_with(Some(spare.clone()));
    let caller = operator(Quota::UNLIMITED);
    // Unreachable at the first account; lost at it; taken by it.
    let batch = vec![
        sms("+447700900102", ""),
        sms("+447700900103", ""),
        sms("+447700900100", ""),
    ];
    let results = h.core.send_batch(&caller, batch).await.expect("batch");
    assert_eq!(statuses(&results), ["queued", "failed", "queued"]);
    let routed: Vec<(&str, Option<&str>)> = results
        .iter()
        .map(|r| {
            let m = r.as_ref().expect("kept");
            (m.provider.as_str(), m.route_reason.map(|why| why.as_str()))
        })
        .collect();
    assert_eq!(
        routed,
        [
            ("spare", Some("failover_not_taken")),
            ("scripted", Some("default")),
            ("scripted", Some("default")),
        ]
    );
    assert_eq!(spare.submitted(), ["+447700900102"]);
    // Its events say where it went, from the first answer on.
    let state = h.store.state();
    let moved = results[0].as_ref().expect("kept");
    let kept = &state.messages[&moved.id];
    assert_eq!(kept.provider, "spare");
    let queued = state
        .outbox
        .iter()
        .find(|e| e.event_type == "sms.queued" && e.payload.contains(&moved.id))
        .expect("queued event");
    assert!(
        queued.payload.contains("\"provider\":\"spare\""),
        "{}",
        queued.payload
    );
}

#[tokio::test]
async fn bad_items_are_refused_in_place_and_the_rest_sent() {
    let h = harness();
    let caller = operator(Quota::UNLIMITED);
    let mut no_pair = sms("+447700900120", "");
    no_pair.pair_id = "p-none".into();
    let mut no_body = sms("+447700900130", "");
    no_body.body = String::new();
    let batch = vec![
        sms("12", ""),
        no_pair,
        no_body,
        sms("+12025550100", ""),
        sms("+447700900140", ""),
    ];
    let results = h.core.send_batch(&caller, batch).await.expect("batch");
    assert_eq!(
        statuses(&results),
        [
            "invalid_phone",
            "pair_not_found",
            "invalid_body",
            "number_not_in_country",
            "queued"
        ]
    );
    assert_eq!(h.provider.submitted(), ["+447700900140"]);
    assert_eq!(h.store.state().messages.len(), 1);
}

#[tokio::test]
async fn a_repeated_key_names_one_message_sent_once() {
    let h = harness();
    let caller = operator(Quota::UNLIMITED);
    let twice = vec![sms("+447700900150", "k1"), sms("+447700900150", "k1")];
    let first = h.core.send_batch(&caller, twice).await.expect("batch");
    let ids: Vec<&str> = first.iter().flatten().map(|m| m.id.as_str()).collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
    let again = h
        .core
        .send_batch(&caller, vec![sms("+447700900150", "k1")])
        .await
        .expect("batch");
    assert_eq!(again[0].as_ref().map(|m| m.id.as_str()).ok(), Some(ids[0]));
    let mut other = sms("+447700900150", "k1");
    other.body = "another body".into();
    let reused = h
        .core
        .send_batch(&caller, vec![other])
        .await
        .expect("batch");
    assert_eq!(statuses(&reused), ["idempotency_mismatch"]);
    assert_eq!(h.provider.submitted().len(), 1);
    // Another user's same key is another message.
    let mut someone = operator(Quota::UNLIMITED);
    someone.user_id = "u2".into();
    let theirs = h
        .core
        .send_batch(&someone, vec![sms("+447700900150", "k1")])
        .await
        .expect("batch");
    assert!(theirs[0].as_ref().is_ok_and(|m| m.id != ids[0]));
}

#[tokio::test]
async fn only_what_the_provider_provably_did_not_take_is_tried_again() {
    let h = harness();
    let caller = operator(Quota::UNLIMITED);
    let batch = vec![
        sms("+447700900161", ""),
        sms("+447700900162", ""),
        sms("+447700900163", ""),
        sms("+447700900164", ""),
    ];
    let results = h.core.send_batch(&caller, batch).await.expect("batch");
    let codes: Vec<Option<&str>> = results
        .iter()
        .map(|r| r.as_ref().ok().and_then(|m| m.error_code.as_deref()))
        .collect();
    assert_eq!(
        codes,
        [
            Some("21211"),
            Some(codes::UNREACHABLE),
            Some(codes::UNCERTAIN),
            Some(codes::RATE_LIMITED)
        ]
    );
    assert!(results.iter().flatten().all(|m| m.status == Status::Failed));
    let submitted = h.provider.submitted();
    let tries = |to: &str| submitted.iter().filter(|s| *s == to).count();
    // Refused and maybe-taken: once. Never reached and over the rate: every attempt.
    assert_eq!(tries("+447700900161"), 1);
    assert_eq!(tries("+447700900163"), 1);
    assert_eq!(tries("+447700900162"), 3);
    assert_eq!(tries("+447700900164"), 3);
}

#[tokio::test]
async fn sends_past_the_quota_are_refused_and_never_kept() {
    let h = harness();
    let caller = operator(Quota {
        per_minute: Some(2),
        per_day: None,
    });
    let batch = (5..8)
        .map(|i| sms(&format!("+44770090017{i}"), ""))
        .collect();
    let results = h.core.send_batch(&caller, batch).await.expect("batch");
    assert_eq!(statuses(&results), ["queued", "queued", "quota_exceeded"]);
    assert_eq!(h.store.state().messages.len(), 2);
    assert_eq!(h.provider.submitted().len(), 2);
}

#[tokio::test]
async fn nothing_is_sent_when_nothing_could_be_kept() {
    let h = harness();
    h.store.state().down = true;
    let caller = operator(Quota::UNLIMITED);
    let batch = vec![sms("+447700900180", "")];
    let err = h.core.send_batch(&caller, batch).await.err();
    assert!(matches!(err, Some(SmsError::Store(_))));
    assert!(h.provider.submitted().is_empty());
}

#[tokio::test]
async fn a_message_left_accepted_is_failed_as_uncertain_not_resent() {
    let h = harness();
    let caller = operator(Quota::UNLIMITED);
    let results = h
        .core
        .send_batch(&caller, vec![sms("+447700900190", "")])
        .await
        .expect("batch");
    let id = results[0].as_ref().map(|m| m.id.clone()).expect("sent");
    {
        // As if its sender had died before the provider answered.
        let mut state = h.store.state();
        let message = state.messages.get_mut(&id).expect("kept");
        message.status = Status::Accepted;
        message.created_at -= chrono::TimeDelta::minutes(10);
        message.updated_at -= chrono::TimeDelta::minutes(10);
    }
    let swept = h.core.sweep_stale(Duration::from_secs(60)).await;
    assert_eq!(swept.ok(), Some(1));
    let message = h.store.get(&id).await.ok().flatten().expect("kept");
    assert_eq!(message.status, Status::Failed);
    assert_eq!(message.error_code.as_deref(), Some(codes::UNCERTAIN));
    assert_eq!(h.provider.submitted().len(), 1);
}

#[tokio::test]
async fn a_batch_kept_though_its_commit_went_unanswered_is_still_sent() {
    let h = harness();
    h.store.state().lose_insert_answers = true;
    let caller = operator(Quota::UNLIMITED);
    let batch = vec![sms("+447700900195", "k-lost")];
    let results = h.core.send_batch(&caller, batch).await.expect("batch");
    assert_eq!(statuses(&results), ["queued"]);
    // The caller's retry finds the same message, sent once.
    h.store.state().lose_insert_answers = false;
    let again = h
        .core
        .send_batch(&caller, vec![sms("+447700900195", "k-lost")])
        .await
        .expect("batch");
    assert_eq!(
        again[0].as_ref().ok().map(|m| &m.id),
        results[0].as_ref().ok().map(|m| &m.id)
    );
    assert_eq!(h.provider.submitted(), ["+447700900195"]);
}

#[tokio::test]
async fn a_batch_kept_across_an_outage_is_claimed_and_sent_when_the_store_returns() {
    let h = harness();
    {
        let mut state = h.store.state();
        state.lose_insert_answers = true;
        state.cut_after_lost_answer = true;
    }
    let store = h.store.clone();
    let restore = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut state = store.state();
        state.lose_insert_answers = false;
        state.down = false;
    });
    let caller = operator(Quota::UNLIMITED);
    let batch = vec![sms("+447700900196", "k-out")];
    let results = h.core.send_batch(&caller, batch).await.expect("batch");
    restore.await.expect("restored");
    assert_eq!(statuses(&results), ["queued"]);
    assert_eq!(h.provider.submitted(), ["+447700900196"]);
    // Cut off a moment ago, the sweep leaves senders time to claim.
    assert_eq!(
        h.core.sweep_stale(Duration::from_secs(60)).await.ok(),
        Some(0)
    );
}

#[tokio::test]
async fn a_kept_batch_the_sweep_failed_first_is_not_sent() {
    let h = harness();
    {
        let mut state = h.store.state();
        state.lose_insert_answers = true;
        state.cut_after_lost_answer = true;
    }
    let store = h.store.clone();
    // Another replica's sweep takes the message while this one is cut off.
    let swept = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut state = store.state();
        for message in state.messages.values_mut() {
            message.status = Status::Failed;
            message.error_code = Some(codes::UNCERTAIN.into());
        }
        state.lose_insert_answers = false;
        state.down = false;
    });
    let caller = operator(Quota::UNLIMITED);
    let batch = vec![sms("+447700900197", "k-swept")];
    let results = h.core.send_batch(&caller, batch).await.expect("batch");
    swept.await.expect("swept");
    assert_eq!(statuses(&results), ["failed"]);
    assert!(h.provider.submitted().is_empty());
}

#[tokio::test]
async fn the_sweep_skips_a_message_its_sender_claimed() {
    let h = harness();
    let caller = operator(Quota::UNLIMITED);
    let results = h
        .core
        .send_batch(&caller, vec![sms("+447700900198", "")])
        .await
        .expect("batch");
    let id = results[0].as_ref().map(|m| m.id.clone()).expect("sent");
    {
        let mut state = h.store.state();
        let message = state.messages.get_mut(&id).expect("kept");
        message.status = Status::Accepted;
        message.created_at -= chrono::TimeDelta::minutes(10);
        message.updated_at -= chrono::TimeDelta::minutes(10);
    }
    let claimed = h.store.claim_accepted(std::slice::from_ref(&id)).await;
    assert_eq!(claimed.ok(), Some(vec![id.clone()]));
    assert_eq!(
        h.core.sweep_stale(Duration::from_secs(60)).await.ok(),
        Some(0)
    );
    let message = h.store.get(&id).await.ok().flatten().expect("kept");
    assert_eq!(message.status, Status::Accepted);
}
