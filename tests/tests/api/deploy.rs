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

/// A provider account's setting (`SMSOPS_TWILIO_FROM`, `SMSOPS_SMPP_ADDR`,
/// `SMSOPS_PROVIDER_<NAME>_RATE`): sms-svc reads it as its prefix and a
/// setting named by a string of its own in `accounts` (the module's source).
fn is_account_setting(name: &str, accounts: &str) -> bool {
    let setting = if let Some(rest) = name.strip_prefix("SMSOPS_PROVIDER_") {
        // The account's name is one word here: `SMSOPS_PROVIDER_SMSC_RATE`.
        rest.split_once('_').map(|(_, setting)| setting)
    } else {
        name.strip_prefix("SMSOPS_TWILIO_")
            .or_else(|| name.strip_prefix("SMSOPS_SMPP_"))
    };
    setting.is_some_and(|setting| accounts.contains(&format!("\"{setting}\"")))
}

#[test]
fn deployment_files_set_only_variables_the_services_read() {
    let mut code = String::new();
    for dir in SERVICES.iter().copied().chain(["common"]) {
        sources(&root().join(dir).join("src"), &mut code);
    }
    let read_by_code = variables(&code);
    let accounts = read("sms-svc/src/config/accounts.rs");
    let mut files = vec![
        "deploy/compose/compose.yaml".to_string(),
        "deploy/local/up.sh".to_string(),
    ];
    for entry in std::fs::read_dir(root().join("deploy/k8s"))
        .unwrap()
        .flatten()
        .filter(|entry| entry.path().is_file())
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
                        | "SMSOPS_SANDBOX_SMSC_ADDR"
                )
            })
            .filter(|name| !read_by_code.contains(name) || RETIRED.contains(&name.as_str()))
            .filter(|name| !is_account_setting(name, &accounts))
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

/// The gRPC services, each with the `SMSOPS_<NAME>_URL` its callers read.
const GRPC_SERVICES: [(&str, &str); 6] = [
    ("auth-svc", "SMSOPS_AUTH_URL"),
    ("operator-svc", "SMSOPS_OPERATOR_URL"),
    ("sms-svc", "SMSOPS_SMS_URL"),
    ("process-svc", "SMSOPS_PROCESS_URL"),
    ("metrics-svc", "SMSOPS_METRICS_URL"),
    ("notify-svc", "SMSOPS_NOTIFY_URL"),
];

/// The services whose own code reads `url_variable`, that is, builds a
/// client for the service behind it.
fn callers_in_code(url_variable: &str) -> BTreeSet<String> {
    SERVICES
        .iter()
        .filter(|service| {
            let mut code = String::new();
            sources(&root().join(service).join("src"), &mut code);
            code.contains(&format!("\"{url_variable}\""))
        })
        .map(|service| service.to_string())
        .collect()
}

/// The pods of its own namespace that the NetworkPolicy named `service` lets
/// in: the `app.kubernetes.io/name` values under its ingress rules.
fn callers_in_policy(policies: &str, service: &str) -> BTreeSet<String> {
    let policy = policies
        .split("\n---\n")
        .find(|doc| doc.contains(&format!("\n  name: {service}\n")))
        .unwrap_or_else(|| panic!("networkpolicy.yaml has no policy for {service}"));
    let rules = &policy[policy
        .find("\n  ingress:")
        .unwrap_or_else(|| panic!("the policy for {service} lets nothing in"))..];
    let mut names = BTreeSet::new();
    for line in rules.lines().map(str::trim) {
        if let Some(list) = line.strip_prefix("values: [") {
            names.extend(
                list.trim_end_matches(']')
                    .split(',')
                    .map(|name| name.trim().to_string()),
            );
        } else if let Some(name) = line.strip_prefix("app.kubernetes.io/name: ") {
            names.insert(name.to_string());
        }
    }
    names
}

#[test]
fn each_grpc_service_admits_exactly_the_services_that_call_it() {
    let policies = read("deploy/k8s/networkpolicy.yaml");
    assert!(
        read("deploy/k8s/kustomization.yaml").contains("- networkpolicy.yaml"),
        "kustomization.yaml leaves out networkpolicy.yaml"
    );
    assert!(
        policies.contains("  podSelector: {}\n  policyTypes: [Ingress]\n"),
        "no default-deny policy"
    );
    for (service, url_variable) in GRPC_SERVICES {
        let callers = callers_in_code(url_variable);
        assert!(!callers.is_empty(), "nothing reads {url_variable}");
        assert_eq!(
            callers_in_policy(&policies, service),
            callers,
            "{service}'s NetworkPolicy must let in exactly the services whose code reads {url_variable}"
        );
    }
    // Only the ingress controller and Prometheus reach the gateway.
    assert_eq!(callers_in_policy(&policies, "gateway"), BTreeSet::new());
}

#[test]
fn the_ingress_routes_no_internal_endpoint() {
    let gateway = read("deploy/k8s/gateway.yaml");
    let ingress = &gateway[gateway
        .find("kind: Ingress")
        .expect("gateway.yaml has no Ingress")..];
    let lines: Vec<&str> = ingress.lines().map(str::trim).collect();
    let mut paths = 0;
    for (at, line) in lines.iter().enumerate() {
        let Some(path) = line.strip_prefix("- path: ") else {
            continue;
        };
        paths += 1;
        let kind = lines
            .get(at + 1)
            .and_then(|next| next.strip_prefix("pathType: "))
            .unwrap_or_else(|| panic!("{path}: pathType must follow path"));
        for internal in ["/metrics", "/readyz", "/healthz"] {
            let routed = match kind {
                "Exact" => path == internal,
                // Prefix matching goes by whole path segments.
                _ => {
                    let prefix = path.trim_end_matches('/');
                    internal == prefix || internal.starts_with(&format!("{prefix}/"))
                }
            };
            assert!(
                !routed,
                "the Ingress routes {internal} (path {path}, {kind})"
            );
        }
    }
    assert!(paths > 0, "the Ingress routes nothing");
}

/// Defect 10: compose started with a known admin password and published the
/// gateway on every address. Every password must now be given (`:?`), and
/// every published port bound to loopback.
#[test]
fn compose_needs_every_password_and_publishes_on_loopback_only() {
    let compose = read("deploy/compose/compose.yaml");
    for line in compose.lines().map(str::trim) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.starts_with('#') && (name.contains("PASS") || value.contains("PASSWORD")) {
            assert!(
                value.contains(":?") && !value.contains(":-"),
                "{line}: a password must be required, never defaulted"
            );
        }
        if let Some(ports) = line.strip_prefix("ports:") {
            for port in ports.trim().trim_matches(['[', ']']).split(',') {
                let port = port.trim().trim_matches('"');
                assert!(
                    port.starts_with("127.0.0.1:"),
                    "{line}: published beyond loopback"
                );
            }
        }
    }
}

/// Every file and folder under `dir` whose mode lets anyone but its owner in.
fn open_to_others(dir: &Path, found: &mut Vec<String>) {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let mode = std::fs::symlink_metadata(&path)
            .unwrap()
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            found.push(format!("{} {:o}", path.display(), mode & 0o777));
        }
        if path.is_dir() {
            open_to_others(&path, found);
        }
    }
}

#[test]
fn make_up_keeps_its_data_dir_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let data = std::env::temp_dir().join(format!("smsops-data-{}", uuid::Uuid::new_v4().simple()));
    // What an earlier `make up` (before the fix) left: readable by anyone.
    let mode = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    std::fs::create_dir_all(data.join("logs")).unwrap();
    std::fs::create_dir_all(data.join("mongo")).unwrap();
    std::fs::write(data.join("logs/gateway.log"), "old\n").unwrap();
    std::fs::write(data.join("mongo/collection.wt"), "old\n").unwrap();
    for (path, bits) in [("", 0o755), ("logs", 0o755), ("mongo", 0o755)] {
        mode(&data.join(path), bits);
    }
    for path in ["logs/gateway.log", "mongo/collection.wt"] {
        mode(&data.join(path), 0o644);
    }

    // The lines up.sh runs first, then what it and the services it starts
    // write: a password file, a log by redirection, a database folder.
    let status = std::process::Command::new("bash")
        .current_dir(root())
        .arg("-c")
        .arg(
            "umask 022; source deploy/local/data-dir.sh && private_data_dir \"$0\" \
             && echo secret > \"$0/admin-password\" \
             && sh -c 'echo started >> \"$0/logs/auth-svc.log\"; mkdir -p \"$0/mongo/journal\"' \"$0\"",
        )
        .arg(&data)
        .status()
        .unwrap();
    assert!(status.success());
    let mut found = Vec::new();
    open_to_others(&data, &mut found);
    let _ = std::fs::remove_dir_all(&data);
    assert!(found.is_empty(), "readable by others: {found:?}");

    let up = read("deploy/local/up.sh");
    let private = up
        .find("private_data_dir \"$DATA_DIR\"")
        .expect("up.sh makes its data dir private");
    let first_write = up.find("> \"$DATA_DIR").expect("up.sh writes its data dir");
    assert!(
        private < first_write,
        "up.sh writes before it makes data/ private"
    );
}

/// The YAML documents of a file, each as its text.
fn documents(text: &str) -> Vec<&str> {
    text.split("\n---\n").collect()
}

/// The value of the first `key: value` line at or below `after` in `doc`.
fn value_after<'a>(doc: &'a str, after: &str, key: &str) -> Option<&'a str> {
    let from = doc.find(after)?;
    doc[from..]
        .lines()
        .find_map(|line| line.trim().strip_prefix(&format!("{key}: ")))
        .map(|v| v.trim().trim_matches('"'))
}

/// A service's default queue, as its config reads it.
fn default_queue(service: &str, variable: &str) -> String {
    let config = read(&format!("{service}/src/config.rs"));
    let call = format!("\"{variable}\", \"");
    let at = config
        .find(&call)
        .unwrap_or_else(|| panic!("{service} reads no {variable}"));
    config[at + call.len()..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Each Deployment is scaled by exactly one thing: an HPA on CPU in its own
/// file, or, for the two consumers, KEDA on their queue's depth (an HPA
/// beside KEDA's own would fight it). The KEDA kinds have no schema in
/// kubernetes-validate, so their shape is checked here.
#[test]
fn each_service_scales_on_its_own_signal() {
    let component = read("deploy/k8s/components/keda/kustomization.yaml");
    assert!(
        component.contains("kind: Component") && component.contains("- scaledobjects.yaml"),
        "{component}"
    );
    let keda = read("deploy/k8s/components/keda/scaledobjects.yaml");
    let keda_docs = documents(&keda);
    let authentications: Vec<&str> = keda_docs
        .iter()
        .filter(|d| d.contains("kind: TriggerAuthentication"))
        .filter_map(|d| value_after(d, "metadata:", "name"))
        .collect();
    let secrets = read("deploy/k8s/secrets.example.yaml");
    for doc in keda_docs
        .iter()
        .filter(|d| d.contains("kind: TriggerAuthentication"))
    {
        let key = value_after(doc, "secretTargetRef:", "key").unwrap_or_default();
        assert!(
            secrets.contains(&format!("  {key}: ")),
            "KEDA reads {key}, which no secret holds"
        );
    }
    for service in SERVICES {
        let own = read(&format!("deploy/k8s/{service}.yaml"));
        let hpas: Vec<&str> = documents(&own)
            .into_iter()
            .filter(|d| d.contains("kind: HorizontalPodAutoscaler"))
            .collect();
        let scaled: Vec<&&str> = keda_docs
            .iter()
            .filter(|d| d.contains("kind: ScaledObject"))
            .filter(|d| value_after(d, "scaleTargetRef:", "name") == Some(service))
            .collect();
        match service {
            "metrics-svc" | "notify-svc" => {
                assert!(hpas.is_empty(), "{service} has an HPA beside KEDA's");
                assert_eq!(scaled.len(), 1, "{service} has no ScaledObject");
                let doc = scaled[0];
                let least: u32 = value_after(doc, "spec:", "minReplicaCount")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_default();
                assert!(least >= 1, "{service} may scale to zero");
                let variable = if service == "metrics-svc" {
                    "SMSOPS_METRICS_QUEUE"
                } else {
                    "SMSOPS_NOTIFY_QUEUE"
                };
                assert_eq!(
                    value_after(doc, "triggers:", "queueName"),
                    Some(default_queue(service, variable).as_str()),
                    "{service} is scaled on another queue than it reads"
                );
                let auth = value_after(doc, "authenticationRef:", "name").unwrap_or_default();
                assert!(authentications.contains(&auth), "{service}: no {auth}");
            }
            _ => {
                assert_eq!(hpas.len(), 1, "{service} has no HPA");
                let hpa = hpas[0];
                assert_eq!(value_after(hpa, "scaleTargetRef:", "name"), Some(service));
                assert_eq!(value_after(hpa, "resource:", "name"), Some("cpu"));
                assert!(scaled.is_empty(), "{service} is scaled on a queue");
            }
        }
    }
}
