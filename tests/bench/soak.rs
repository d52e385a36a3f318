//! `make soak`: a mix of sessions at a total rate (default 1,000 msg/s) for
//! M minutes (default 10) with the consumers on and a fault every minute:
//! callbacks dropped, RabbitMQ cut (for every service), MariaDB cut off
//! sms-svc, sms-svc, process-svc,
//! metrics-svc or notify-svc killed. Prints per minute the throughput, the
//! backlog, each process's RSS and the rows of each table; at the end the
//! messages lost, sent twice and stuck (the target is 0 / 0 / 0).
//!
//! `soak [--rate MSG_PER_S] [--minutes M] [--horizon SECS]`
//!
//! sms-svc, process-svc, metrics-svc, notify-svc and the sandbox run as
//! child processes from release binaries; auth-svc, operator-svc and the
//! gateway in this process, with the two TCP proxies that cut sms-svc off
//! MySQL and RabbitMQ. Retention runs with horizons of `--horizon` seconds
//! (default 180), so tables must stay flat after the first minutes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use smsops_tests::bench::arg;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sms_svc::core::ReconcileConfig;
use smsops_tests::{
    Options, TestApp, amqp,
    host::{reference, rss_mib},
    proxy::TcpProxy,
    sandbox::Sandbox,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Shares of the total rate: a mix of busy and quiet pairs.
const MIX: [f64; 5] = [0.4, 0.25, 0.15, 0.1, 0.1];
const FAULTS: [&str; 7] = [
    "callbacks dropped (30 %, 30 s)",
    "broker cut (15 s)",
    "mysql cut (15 s)",
    "sms-svc killed",
    "process-svc killed",
    "metrics-svc killed",
    "notify-svc killed",
];
const TABLES: [(&str, &str); 7] = [
    ("sms", "sms_messages"),
    ("sms", "sms_status_history"),
    ("sms", "sms_outbox"),
    ("sms", "sms_receipt_checks"),
    ("metrics", "processed_events"),
    ("metrics", "sms_metrics"),
    ("notify", "processed_events"),
];

struct Soak {
    app: TestApp,
    sandbox: Sandbox,
    mysql: TcpProxy,
    broker: TcpProxy,
    replica: smsops_tests::process::Replica,
    replicas: usize,
    pool: sqlx::MySqlPool,
}

impl Soak {
    async fn fault(&mut self, which: usize) {
        let pause = |secs| tokio::time::sleep(Duration::from_secs(secs));
        match which {
            0 => {
                let faults = json!({"callback_drop_share": 0.3});
                self.sandbox.set_faults(faults).await;
                pause(30).await;
                self.sandbox.set_faults(json!({})).await;
            }
            1 => {
                self.broker.cut();
                pause(15).await;
                self.broker.restore();
            }
            2 => {
                self.mysql.cut();
                pause(15).await;
                self.mysql.restore();
            }
            3 => {
                self.app.kill_sms();
                pause(2).await;
                self.app.start_sms().await;
            }
            4 => {
                self.replica.kill();
                self.replicas += 1;
                let name = format!("soak-{}", self.replicas);
                self.replica = self.app.spawn_process_replica(self.app.process_addr, &name);
                self.replica.ready(self.app.process_addr).await;
            }
            5 => {
                self.app.kill_metrics();
                pause(2).await;
                self.app.start_metrics().await;
            }
            _ => {
                self.app.kill_notify();
                pause(2).await;
                self.app.start_notify().await;
            }
        }
    }

    async fn rows(&self) -> Vec<i64> {
        let mut rows = Vec::new();
        for (db, table) in TABLES {
            let database = match db {
                "sms" => &self.app.sms_db,
                "metrics" => &self.app.metrics_db,
                _ => &self.app.notify_db,
            };
            let sql = format!("SELECT COUNT(*) FROM `{database}`.`{table}`");
            let (n,): (i64,) = sqlx::query_as(&sql)
                .fetch_one(&self.pool)
                .await
                .unwrap_or((-1,));
            rows.push(n);
        }
        rows
    }

    /// RSS in MiB of sms-svc, process-svc, metrics-svc, notify-svc, the
    /// sandbox and this process (auth-svc, operator-svc, the gateway).
    fn rss(&mut self) -> [f64; 6] {
        let pid = |child: Option<&mut smsops_tests::child::ServiceChild>| {
            child.map_or(0.0, |c| rss_mib(c.pid()))
        };
        let sms = self
            .app
            .sms_process
            .as_mut()
            .map_or(0.0, |sms| rss_mib(sms.child().pid()));
        [
            sms,
            rss_mib(self.replica.pid()),
            pid(self.app.metrics_process.as_mut()),
            pid(self.app.notify_process.as_mut()),
            rss_mib(self.sandbox.pid()),
            rss_mib("self"),
        ]
    }

    async fn backlog(&self) -> (i64, u32, u32) {
        let sql = format!("SELECT COUNT(*) FROM `{}`.sms_outbox", self.app.sms_db);
        let (outbox,): (i64,) = sqlx::query_as(&sql)
            .fetch_one(&self.pool)
            .await
            .unwrap_or((-1,));
        (
            outbox,
            amqp::queue_length(&self.app.metrics_queue).await,
            amqp::queue_length(&self.app.notify_queue).await,
        )
    }

    /// Each table's bytes on disk (data and indexes, after ANALYZE) per row.
    async fn bytes_per_row(&self) -> Vec<String> {
        let mut sizes = Vec::new();
        for (db, table) in TABLES {
            let database = match db {
                "sms" => &self.app.sms_db,
                "metrics" => &self.app.metrics_db,
                _ => &self.app.notify_db,
            };
            let _ = sqlx::query(&format!("ANALYZE TABLE `{database}`.`{table}`"))
                .execute(&self.pool)
                .await;
            let size: Option<(u64, u64)> = sqlx::query_as(
                "SELECT CAST(DATA_LENGTH + INDEX_LENGTH AS UNSIGNED), CAST(TABLE_ROWS AS UNSIGNED) \
                 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            )
            .bind(database)
            .bind(table)
            .fetch_optional(&self.pool)
            .await
            .unwrap_or(None);
            let shown = match size {
                Some((bytes, rows)) if rows >= 1000 => format!("{db}.{table} {} B", bytes / rows),
                _ => format!("{db}.{table} (too few rows)"),
            };
            sizes.push(shown);
        }
        sizes
    }

    async fn open_messages(&self) -> i64 {
        let sql = format!(
            "SELECT COUNT(*) FROM `{}`.sms_messages WHERE status IN ('accepted', 'queued', 'sent')",
            self.app.sms_db
        );
        sqlx::query_as::<_, (i64,)>(&sql)
            .fetch_one(&self.pool)
            .await
            .map_or(-1, |(n,)| n)
    }
}

#[tokio::main]
async fn main() {
    let _tracing = smsops_common::telemetry::init("soak");
    let host = reference().unwrap();
    let rate = arg("--rate", 1000.0);
    let minutes = arg("--minutes", 10.0) as usize;
    let horizon = Duration::from_secs(arg("--horizon", 180.0) as u64);
    let sandbox = Sandbox::start(json!({"default_rule": {
        "delivered": 0.9, "undelivered": 0.06, "failed": 0.04, "callback_latency_ms": 50
    }}));
    let mysql = TcpProxy::start("127.0.0.1:3306".parse().unwrap()).await;
    let broker = TcpProxy::start("127.0.0.1:5672".parse().unwrap()).await;
    let app = TestApp::spawn_with(Options {
        twilio_base_url: sandbox.url.clone(),
        telegram_base_url: sandbox.url.clone(),
        amqp_url: format!("amqp://guest:guest@{}/%2f", broker.addr),
        sms_mysql_url: format!("mysql://root@{}", mysql.addr),
        sms_apart: true,
        consumers_apart: true,
        process_in_process: false,
        lease_ttl: Duration::from_secs(5),
        heartbeat: Duration::from_millis(500),
        stale_after: Duration::from_secs(30),
        sweep_every: Duration::from_secs(5),
        reconcile: ReconcileConfig {
            after: Duration::from_secs(20),
            give_up_after: Duration::from_secs(120),
            rate_per_second: 200,
        },
        dedupe_keep: horizon,
        messages_keep: horizon,
        retention_every: Duration::from_secs(10),
        ..Options::default()
    })
    .await;
    let replica = app.spawn_process_replica(app.process_addr, "soak-1");
    replica.ready(app.process_addr).await;
    let admin = app.admin_tokens().await.access;
    let pool = sqlx::MySqlPool::connect("mysql://root@127.0.0.1:3306")
        .await
        .unwrap();
    let mut soak = Soak {
        app,
        sandbox,
        mysql,
        broker,
        replica,
        replicas: 1,
        pool,
    };

    println!("{host}");
    println!(
        "soak: {} sessions, {rate:.0} msg/s in all, {minutes} min, a fault a minute, horizons {} s",
        MIX.len(),
        horizon.as_secs()
    );
    let mut pairs = Vec::new();
    let mut sessions = Vec::new();
    for (i, share) in MIX.iter().enumerate() {
        let body =
            json!({"country": "GB", "operator": format!("Soak{i}"), "is_high_priority": i == 0});
        let pair = soak
            .app
            .post("/api/v1/country-operators", Some(&admin), body)
            .await
            .id();
        let body = json!({
            "country_operator_id": pair,
            "rate_per_minute": rate * share * 60.0,
            "recipients": {"range": {"first": format!("+4478{i:02}000000"), "count": 10_000_000}},
            "template": format!("soak{i} {{n}}"),
        });
        let reply = soak.app.post("/api/v1/sessions", Some(&admin), body).await;
        assert_eq!(reply.status.as_u16(), 201, "{}", reply.body);
        sessions.push(reply.id());
        pairs.push(pair);
    }
    println!(
        "min  msg/s  outbox  q.metrics  q.notify  RSS MiB sms/process/metrics/notify/sandbox/rest  rows {}  fault",
        TABLES
            .iter()
            .map(|(db, t)| format!("{db}.{t}"))
            .collect::<Vec<_>>()
            .join("/")
    );
    let started = Instant::now();
    let mut received = 0;
    for minute in 0..minutes {
        let ends = started + Duration::from_secs(60 * (minute as u64 + 1));
        let fault = (minute > 0).then(|| (minute - 1) % FAULTS.len());
        if let Some(which) = fault {
            soak.fault(which).await;
        }
        tokio::time::sleep_until(ends.into()).await;
        let now = soak.sandbox.twilio_stats().await["count"]
            .as_u64()
            .unwrap_or(0);
        let (outbox, metrics_q, notify_q) = soak.backlog().await;
        let rss = soak.rss();
        let rows = soak.rows().await;
        println!(
            "{:>3}  {:>5.0}  {outbox:>6}  {metrics_q:>9}  {notify_q:>8}  {}  {}  {}",
            minute + 1,
            (now - received) as f64 / 60.0,
            rss.map(|r| format!("{r:.0}")).join("/"),
            rows.iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join("/"),
            fault.map_or("none", |f| FAULTS[f]),
        );
        received = now;
    }

    // Stop, let every receipt and event settle, then count.
    // The first pair is high priority: only an admin stops it, with force.
    let mut submitted = 0;
    let mut next_seqs = Vec::new();
    for id in &sessions {
        let reply = soak
            .app
            .post(
                &format!("/api/v1/sessions/{id}/stop"),
                Some(&admin),
                json!({"force": true}),
            )
            .await;
        assert_eq!(reply.body["state"], "stopped", "{}", reply.body);
        submitted += reply.body["counters"]["submitted"].as_u64().unwrap_or(0);
        next_seqs.push(reply.body["next_seq"].as_u64().unwrap_or(0));
    }
    // Counted before retention can prune what might be stuck.
    let settle = Instant::now();
    let mut finished = 0;
    let mut open = -1;
    let mut uncertain = 0;
    while settle.elapsed() < Duration::from_secs(180) {
        open = soak.open_messages().await;
        let (outbox, metrics_q, notify_q) = soak.backlog().await;
        finished = 0;
        uncertain = 0;
        for pair in &pairs {
            let item = soak.app.pair_summary(&admin, pair).await;
            finished += smsops_tests::metrics::finished(&item);
            uncertain += item["top_errors"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["code"] == "provider_uncertain")
                .filter_map(|e| e["count"].as_u64())
                .sum::<u64>();
        }
        if open == 0 && outbox == 0 && metrics_q == 0 && notify_q == 0 && finished >= submitted {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    println!(
        "disk per row, indexes included: {}",
        soak.bytes_per_row().await.join(", ")
    );
    // Every number below each session's saved position reached the
    // sandbox, or its message is provider_uncertain (never resent).
    let log = soak.sandbox.twilio_messages().await;
    let mut reached: Vec<std::collections::HashSet<u64>> = vec![Default::default(); MIX.len()];
    for message in log["messages"].as_array().into_iter().flatten() {
        let body = message["body"].as_str().unwrap_or_default();
        let Some((session, seq)) = body
            .strip_prefix("soak")
            .and_then(|rest| rest.split_once(' '))
        else {
            continue;
        };
        if let (Ok(session), Ok(seq)) = (session.parse::<usize>(), seq.parse::<u64>()) {
            reached[session].insert(seq);
        }
    }
    let missing: u64 = next_seqs
        .iter()
        .zip(&reached)
        .map(|(next, seen)| (0..*next).filter(|seq| !seen.contains(seq)).count() as u64)
        .sum();
    println!(
        "numbers not at the sandbox {missing}, of which provider_uncertain (in flight at a kill) {uncertain}"
    );
    let stats: Value = soak.sandbox.twilio_stats().await;
    println!(
        "sessions submitted {submitted}; the sandbox received {} (callbacks dropped {}, lookups {}); metrics counted {finished} finished",
        stats["count"], stats["callbacks_dropped"], stats["lookups"]
    );
    let unaccounted =
        (submitted as i64 - finished as i64).max(0) as u64 + missing.saturating_sub(uncertain);
    println!(
        "lost {unaccounted} / duplicated {} / stuck {open}  (settled in {:.0} s)",
        stats["duplicates"],
        settle.elapsed().as_secs_f64()
    );
    soak.app.cleanup().await;
}
