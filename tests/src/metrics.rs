//! Reading metrics-svc's summary through the gateway, as a dashboard does.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::TestApp;

/// delivered + undelivered + failed of a summary item.
pub fn finished(item: &Value) -> u64 {
    ["delivered", "undelivered", "failed"]
        .iter()
        .map(|k| item[k].as_u64().unwrap_or(0))
        .sum()
}

impl TestApp {
    /// The pair's item of the last hour's summary; null before its first event.
    pub async fn pair_summary(&self, admin: &str, pair: &str) -> Value {
        let reply = self.get("/api/v1/metrics/summary?window=1h", admin).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|item| item["country_operator_id"] == pair)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Waits until `expected` of the pair's messages have finished in the summary.
    pub async fn settled_summary(&self, admin: &str, pair: &str, expected: u64) -> Value {
        let started = Instant::now();
        loop {
            let item = self.pair_summary(admin, pair).await;
            if finished(&item) >= expected {
                return item;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "metrics never reached {expected} finished messages: {item}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
