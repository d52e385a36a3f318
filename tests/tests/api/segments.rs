//! Parts counted as a carrier counts them: sms-svc's count of each message
//! is the sandbox's own (Twilio's `num_segments`), for the cases the old
//! count got wrong and for 1,000 random bodies.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Value, json};
use smsops_proto::sms::v1::{SendSmsRequest, send_sms_result};
use smsops_tests::{Options, TestApp, sandbox::Sandbox};

/// Characters from every class the count tells apart: GSM basic (ASCII and
/// beyond), GSM extension, a backtick (in neither table), Cyrillic, emoji.
/// The first four are the main classes a body is mostly made of.
const ALPHABET: [&str; 14] = [
    "a", "я", "{", "😀", "Z", "7", " ", "@", "¡", "é", "Δ", "€", "`", "\n",
];

/// A small xorshift: the same bodies on every run, no dependency.
fn bodies(count: usize) -> Vec<String> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let length = 1 + (next() % 400) as usize;
            // Mostly one class with a few others mixed in, as real texts are.
            let main = ALPHABET[(next() % 4) as usize];
            (0..length)
                .map(|_| match next() % 20 {
                    0 => ALPHABET[(next() % ALPHABET.len() as u64) as usize],
                    _ => main,
                })
                .collect::<String>()
                .replace('\n', " ")
        })
        .chain([
            "{".repeat(160),
            "😀".repeat(36),
            format!("{}`", "a".repeat(150)),
            format!("¡{}", "a".repeat(179)),
            "я".repeat(300),
        ])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_count_is_the_providers_own() {
    let sandbox = Sandbox::start(json!({"default_rule": {"delivered": 1.0}}));
    let app = TestApp::spawn_with(Options {
        twilio_base_url: sandbox.url.clone(),
        ..Options::default()
    })
    .await;
    let admin = app.admin_tokens().await.access;
    let pair = super::sessions::new_pair(&app, &admin, "GB", false).await;
    let bodies = bodies(1_000);
    let mut ours: HashMap<String, (u32, String)> = HashMap::new();
    for (chunk, texts) in bodies.chunks(100).enumerate() {
        let messages = texts
            .iter()
            .enumerate()
            .map(|(n, body)| SendSmsRequest {
                country_operator_id: pair.clone(),
                to: format!("+4477009{:02}{n:03}", chunk),
                body: body.clone(),
                ..Default::default()
            })
            .collect();
        let reply = super::alerts::send_batch(&app, &admin, messages).await;
        for (n, result) in reply.results.into_iter().enumerate() {
            let Some(send_sms_result::Result::Sms(sms)) = result.result else {
                panic!("message {chunk}/{n} refused: {result:?}");
            };
            ours.insert(sms.to.clone(), (sms.segments, texts[n].clone()));
        }
    }
    let sent = sandbox.twilio_messages().await;
    let theirs: HashMap<String, u64> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["to"].as_str().unwrap().to_string(),
                m["num_segments"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(theirs.len(), bodies.len());
    let mut by_parts: std::collections::BTreeMap<u64, usize> = Default::default();
    for (to, (parts, body)) in &ours {
        assert_eq!(
            Some(&u64::from(*parts)),
            theirs.get(to),
            "{to}: {body:?} ({} characters)",
            body.chars().count()
        );
        *by_parts.entry(u64::from(*parts)).or_default() += 1;
    }
    println!("messages by parts: {by_parts:?}");
    assert!(by_parts.len() >= 5, "too little variety: {by_parts:?}");
    // The preview a viewer asks for says what sending would cost.
    let (_, viewer) = app.new_user_as("viewer").await;
    for (to, (parts, body)) in &ours {
        let preview = preview(&app, &viewer.access, body).await;
        assert_eq!(preview["parts"], json!(parts), "{to}: {body:?}");
        assert_eq!(preview["characters"], json!(body.chars().count()));
    }
    app.cleanup().await;
}

async fn preview(app: &TestApp, token: &str, body: &str) -> Value {
    let reply = app
        .call(
            Method::POST,
            "/api/v1/sms/preview",
            Some(token),
            Some(json!({ "body": body })),
        )
        .await;
    assert_eq!(reply.status, 200, "{body:?}: {:?}", reply.body);
    reply.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_names_encoding_parts_and_what_forced_ucs2() {
    let app = TestApp::spawn().await;
    let (_, viewer) = app.new_user_as("viewer").await;
    let token = viewer.access.as_str();
    // The four cases the old count got wrong, and what each costs.
    let cases = [
        ("{".repeat(160), "GSM-7", 320, 3, 153, vec![]),
        ("😀".repeat(36), "UCS-2", 72, 2, 67, vec!["😀"]),
        (
            format!("{}`", "a".repeat(150)),
            "UCS-2",
            151,
            3,
            67,
            vec!["`"],
        ),
        (
            format!("¡{}", "a".repeat(179)),
            "GSM-7",
            180,
            2,
            153,
            vec![],
        ),
        ("Hello €".into(), "GSM-7", 8, 1, 160, vec![]),
    ];
    for (body, encoding, units, parts, per_part, forced) in cases {
        let preview = preview(&app, token, &body).await;
        assert_eq!(
            preview,
            json!({
                "encoding": encoding,
                "characters": body.chars().count(),
                "units": units,
                "parts": parts,
                "per_part": per_part,
                "ucs2_characters": forced,
            }),
            "{body:?}"
        );
    }
    for bad in [json!({"body": ""}), json!({"body": "x".repeat(1601)})] {
        let reply = app
            .call(Method::POST, "/api/v1/sms/preview", Some(token), Some(bad))
            .await;
        assert_eq!((reply.status.as_u16(), reply.code()), (400, "invalid_body"));
    }
    app.cleanup().await;
}
