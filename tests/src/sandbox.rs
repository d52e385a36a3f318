//! Starts the sandbox binary (Twilio and Telegram stand-ins) as a separate
//! process on a free port, and reads what it received.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use serde_json::{Value, json};

pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000000";
pub const AUTH_TOKEN: &str = "sandbox-auth-token";
pub const BOT_TOKEN: &str = "123456:sandbox-bot-token";
/// The sandbox account's API key, as Twilio's libraries may sign in with.
pub const API_KEY_SID: &str = "SK00000000000000000000000000000000";
pub const API_KEY_SECRET: &str = "sandbox-api-key-secret";

/// What the sandbox's SMSC takes in a bind.
pub const SMPP_SYSTEM_ID: &str = "smsops";
pub const SMPP_PASSWORD: &str = "sbx-smpp";

pub struct Sandbox {
    pub url: String,
    /// The SMSC's `host:port`, for SMPP.
    pub smsc_addr: String,
    child: Child,
    config: PathBuf,
    http: reqwest::Client,
}

impl Sandbox {
    /// Starts one with these outcome rules (the sandbox's JSON config).
    pub fn start(config: Value) -> Self {
        let path = std::env::temp_dir().join(format!(
            "smsops-sandbox-{}.json",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&path, config.to_string()).unwrap();
        let binary = crate::built_binary("sandbox");
        let mut child = Command::new(&binary)
            .args(["--addr", "127.0.0.1:0", "--config"])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", binary.display()));
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut addr = || {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            line.split_whitespace().last().unwrap().to_string()
        };
        // "sandbox listening on …", then "smsc listening on …".
        let (addr, smsc_addr) = (addr(), addr());
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        Self {
            url: format!("http://{addr}"),
            smsc_addr,
            child,
            config: path,
            http: reqwest::Client::new(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything delivered, callbacks after `latency_ms`.
    pub fn start_default() -> Self {
        Self::start(json!({"default_rule": {"delivered": 1.0, "callback_latency_ms": 30}}))
    }

    pub async fn twilio_messages(&self) -> Value {
        self.inspect("twilio/messages").await
    }

    /// The Twilio counts alone, without the messages.
    pub async fn twilio_stats(&self) -> Value {
        self.inspect("twilio/stats").await
    }

    pub async fn telegram_messages(&self) -> Value {
        self.inspect("telegram/messages").await
    }

    /// What the sandbox answers at `/_sandbox/{what}`.
    async fn inspect(&self, what: &str) -> Value {
        let url = format!("{}/_sandbox/{what}", self.url);
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Every submit_sm the SMSC took, with its binds and counts.
    pub async fn smsc_messages(&self) -> Value {
        self.inspect("smsc/messages").await
    }

    /// Waits until the SMSC has `bound` sessions, for at most `within`.
    pub async fn wait_smsc_bound(&self, bound: u64, within: std::time::Duration) {
        let started = std::time::Instant::now();
        loop {
            let smsc = self.smsc_messages().await;
            if smsc["bound"].as_u64() == Some(bound) {
                return;
            }
            assert!(
                started.elapsed() < within,
                "not {bound} bound: binds {} refused {} bound {}",
                smsc["binds"],
                smsc["refused_binds"],
                smsc["bound"]
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Has the SMSC unbind every session bound to it.
    pub async fn smsc_unbind(&self) {
        let url = format!("{}/_sandbox/smsc/unbind", self.url);
        let status = self.http.post(url).send().await.unwrap().status();
        assert!(status.is_success());
    }

    /// Forgets every Twilio message taken so far (a warm-up's, say).
    pub async fn reset_twilio(&self) {
        let url = format!("{}/_sandbox/twilio/messages", self.url);
        let status = self.http.delete(url).send().await.unwrap().status();
        assert!(status.is_success());
    }

    pub async fn set_faults(&self, faults: Value) {
        let status = self
            .http
            .post(format!("{}/_sandbox/faults", self.url))
            .json(&faults)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success());
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// Twilio's request signature (`X-Twilio-Signature`): HMAC-SHA1, keyed with
/// the auth token, over the full URL followed by every POST parameter name
/// and value, sorted by name. The sandbox signs its callbacks with it, and
/// tests that forge or replay one use it too.
pub fn twilio_signature<K: AsRef<str>, V: AsRef<str>>(
    token: &str,
    url: &str,
    params: &[(K, V)],
) -> String {
    use aws_lc_rs::hmac;
    use base64::Engine;
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    sorted.sort();
    let mut data = url.to_string();
    for (name, value) in sorted {
        data.push_str(name);
        data.push_str(value);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, token.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(hmac::sign(&key, data.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::twilio_signature;

    #[test]
    fn signature_matches_twilio_documentation() {
        let params = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ];
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            twilio_signature("12345", url, &params),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }
}
