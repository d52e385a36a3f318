//! The deployment files in deploy/ against the code: a renamed variable or a
//! new service must not leave them behind.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

/// Names the code mentions only to refuse them at start-up: a deployment
/// file still setting one would stop its service.
const RETIRED: [&str; 1] = ["SMSOPS_GATEWAY_TRUST_FORWARDED_FOR"];

const SERVICES: [&str; 7] = [
    "auth-svc",
    "operator-svc",
    "sms-svc",
    "process-svc",
    "metrics-svc",
    "notify-svc",
    "gateway",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// Every `SMSOPS_…` name in `text`; not prefixes (`SMSOPS_TWILIO_*` in prose).
fn variables(text: &str) -> BTreeSet<String> {
    text.match_indices("SMSOPS_")
        .map(|(at, _)| {
            text[at..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.ends_with('_'))
        .collect()
}

/// The Rust sources under `dir`, concatenated.
fn sources(dir: &Path, into: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, into);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            into.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn deployment_files_set_only_variables_the_services_read() {
    let mut code = String::new();
    for dir in SERVICES.iter().copied().chain(["common"]) {
        sources(&root().join(dir).join("src"), &mut code);
    }
    let read_by_code = variables(&code);
    let mut files = vec![
        "deploy/compose/compose.yaml".to_string(),
        "deploy/local/up.sh".to_string(),
    ];
    for entry in std::fs::read_dir(root().join("deploy/k8s"))
        .unwrap()
        .flatten()
    {
        files.push(format!(
            "deploy/k8s/{}",
            entry.file_name().to_string_lossy()
        ));
    }
    for file in files {
        let unknown: Vec<String> = variables(&read(&file))
            .into_iter()
            // Read by the compose file and up.sh themselves, not by a service.
            .filter(|name| {
                !matches!(
                    name.as_str(),
                    "SMSOPS_PORT"
                        | "SMSOPS_MYSQL_PASSWORD"
                        | "SMSOPS_AMQP_PASSWORD"
                        | "SMSOPS_DATA_DIR"
                        | "SMSOPS_SANDBOX_ADDR"
                )
            })
            .filter(|name| !read_by_code.contains(name) || RETIRED.contains(&name.as_str()))
            .collect();
        assert!(
            unknown.is_empty(),
            "{file} sets {unknown:?}, which no service reads"
        );
    }
}

#[test]
fn every_service_runs_in_compose_and_kubernetes() {
    let compose = read("deploy/compose/compose.yaml");
    let kustomization = read("deploy/k8s/kustomization.yaml");
    for service in SERVICES {
        let command = format!("command: [\"{service}\"]");
        assert!(compose.contains(&command), "compose does not run {service}");
        let manifest = read(&format!("deploy/k8s/{service}.yaml"));
        assert!(
            manifest.contains(&command),
            "{service}.yaml runs something else"
        );
        assert!(
            kustomization.contains(&format!("- {service}.yaml")),
            "kustomization.yaml leaves out {service}"
        );
    }
}
