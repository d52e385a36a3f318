//! The MongoDB-wire server the tests use.
//!
//! `SMSOPS_TEST_MONGO_URL` points at one that is already running; otherwise
//! one `secantusd-rs` is started per test process on a free port with a
//! throw-away data dir. It is started under a small shell guard that kills it
//! and removes the data dir once this process is gone (its stdin closes), so
//! nothing is left running even when a test panics.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Mutex, OnceLock},
};

static SERVER: OnceLock<(String, Mutex<Child>)> = OnceLock::new();

const GUARD: &str = r#"
"$0" --host 127.0.0.1 --port 0 --storage-path "$1" &
pid=$!
cat >/dev/null
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
rm -rf "$1"
"#;

pub fn url() -> String {
    if let Ok(url) = std::env::var("SMSOPS_TEST_MONGO_URL") {
        return url;
    }
    SERVER.get_or_init(start).0.clone()
}

fn start() -> (String, Mutex<Child>) {
    let binary = std::env::var("SMSOPS_SECANTUS_BIN").unwrap_or_else(|_| "secantusd-rs".into());
    let dir = std::env::temp_dir().join(format!(
        "smsops-test-mongo-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("create the test database dir");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(GUARD)
        .arg(&binary)
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {binary} (install it: see README): {err}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .expect("read the server's first line");
    // Keep draining its output: a closed pipe would kill the server on its next log line.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    // "secantusd-rs listening on 127.0.0.1:PORT"
    let addr = line
        .split_whitespace()
        .last()
        .filter(|addr| addr.contains(':'))
        .unwrap_or_else(|| panic!("{binary} did not report its address: {line:?}"));
    (
        format!("mongodb://{addr}/?directConnection=true"),
        Mutex::new(child),
    )
}
