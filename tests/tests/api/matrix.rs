//! The role matrix: every operation of the OpenAPI document, called as
//! every kind of caller, answers as its `x-roles` say. A route added
//! without roles fails here.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use smsops_tests::{Reply, TestApp};

/// Who calls: a name and the bearer token it sends, if any.
struct Callers {
    list: Vec<(&'static str, Option<String>)>,
}

const PEOPLE: [&str; 3] = ["viewer", "operator", "admin"];

impl Callers {
    async fn new(app: &TestApp) -> Self {
        let (viewer_id, viewer) = app.new_user_as("viewer").await;
        let (_, operator) = app.new_user_as("operator").await;
        let admin = app.admin_tokens().await;
        Self {
            list: vec![
                ("anonymous", None),
                ("viewer", Some(viewer.access)),
                ("operator", Some(operator.access)),
                ("admin", Some(admin.access)),
                ("ingest", Some(app.ingest_token().await)),
                ("expired", Some(app.expired_token(&viewer_id))),
            ],
        }
    }
}

/// What the document says of one operation.
struct Operation {
    method: Method,
    path: String,
    roles: Vec<String>,
    has_body: bool,
    documents_403: bool,
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let roles: Vec<String> = operation["x-roles"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path} states no x-roles"))
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
                .collect();
            assert!(!roles.is_empty(), "{method} {path}: empty x-roles");
            let description = operation["description"].as_str().unwrap_or_default();
            assert!(
                description.contains(&format!("Roles: {}.", roles.join(", "))),
                "{method} {path}: its description must state its roles"
            );
            found.push(Operation {
                method: method.to_uppercase().parse().unwrap(),
                path: path.clone(),
                roles,
                has_body: !operation["requestBody"].is_null(),
                documents_403: !operation["responses"]["403"].is_null(),
            });
        }
    }
    found
}

/// A real path for a templated one: ids that name nothing.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').unwrap() + open;
        out.push_str(&rest[..open]);
        out.push_str(&uuid::Uuid::new_v4().to_string());
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

async fn call(app: &TestApp, op: &Operation, token: Option<&str>) -> Reply {
    let body = op.has_body.then(|| json!({}));
    app.call(op.method.clone(), &concrete(&op.path), token, body)
        .await
}

/// The refusal a caller of the wrong kind gets, if any.
fn refusal(op: &Operation, caller: &str) -> Option<(u16, &'static str)> {
    let public = op.roles.iter().any(|r| r == "anyone");
    let api_key = op.roles.iter().any(|r| r == "api_key");
    match caller {
        _ if public => None,
        // Bearer tokens are no API key, whoever holds them.
        _ if api_key => Some((401, "unauthorized")),
        "anonymous" => Some((401, "unauthorized")),
        "expired" => Some((401, "unauthorized")),
        "ingest" => Some((403, "forbidden")),
        role if op.roles.iter().any(|r| r == role) => None,
        _ => Some((403, "forbidden")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_every_caller_as_its_roles_say() {
    let app = TestApp::spawn().await;
    let doc = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .body;
    let callers = Callers::new(&app).await;
    let operations = operations(&doc);
    assert!(operations.len() >= 40, "{} operations", operations.len());

    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut wrong = Vec::new();
    for op in &operations {
        let restricted = op.roles.iter().all(|r| PEOPLE.contains(&r.as_str()));
        if restricted && op.roles.len() < PEOPLE.len() {
            assert!(
                op.documents_403,
                "{} {}: refuses some roles but documents no 403",
                op.method, op.path
            );
        }
        for (caller, token) in &callers.list {
            let reply = call(&app, op, token.as_deref()).await;
            let status = reply.status.as_u16();
            let line = format!(
                "{} {} as {caller}: {status} {}",
                op.method,
                op.path,
                reply.code()
            );
            seen.entry(op.path.clone()).or_default().push(line.clone());
            assert_ne!(status, 500, "{line}: {}", reply.body);
            let ok = match refusal(op, caller) {
                Some((want, code)) => status == want && reply.code() == code,
                // Let in: anything but the refusals (a 404 for an id that
                // names nothing, a 400 for an empty body, is the handler's).
                None => status != 401 && !(status == 403 && reply.code() == "forbidden"),
            };
            if !ok {
                wrong.push(format!("{line}: {}", reply.body));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // A real API key passes the ingest route's gate.
    let key = app.api_key().await;
    let reply = Reply::from_response(
        app.http
            .post(app.url("/api/v1/ingest/sms-events"))
            .header("x-api-key", key)
            .json(&json!({"events": []}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    app.cleanup().await;
}
