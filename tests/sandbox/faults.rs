//! Runtime fault switches, set with `POST /_sandbox/faults`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added before every Twilio and Telegram answer.
    pub latency_ms: u64,
    /// Share of Twilio requests answered 500 without taking the message.
    pub error_5xx_share: f64,
    /// Share of Twilio requests whose message is taken but whose answer
    /// never comes in time (the client times out): the uncertain case.
    pub timeout_share: f64,
    /// The next N Twilio requests get 429 / 20429 without taking the message.
    pub twilio_429_burst: u32,
    /// The next N Telegram requests get 429 with retry_after.
    pub telegram_429_burst: u32,
    /// The next N Twilio requests get 404 / 20404 naming the requested
    /// resource, account SID included, as Twilio answers for an account or
    /// path it does not know.
    pub twilio_404_burst: u32,
    /// The next N Telegram requests get a 404 whose description echoes the
    /// request path, bot token included, as a misrouting proxy in front of
    /// the Bot API may answer.
    pub telegram_404_burst: u32,
    /// Share of Twilio status callbacks never sent, each decided on its own:
    /// Twilio does not retry one that fails, so a lost callback is a
    /// message whose receipt never comes.
    pub callback_drop_share: f64,
    /// Added before each status callback, on top of its rule's latency.
    pub callback_delay_ms: u64,
    /// Sends the final status callback before `sent`.
    pub callback_out_of_order: bool,
    /// By E.164 prefix (the longest that matches wins): added before the
    /// carrier's receipt (the final callback) of messages to it, and to
    /// when a lookup sees it final, as a slowing route delays them.
    pub receipt_delay_ms_by_prefix: BTreeMap<String, u64>,
    /// Share of message lookups answered 404 / 20404, as Twilio answers for
    /// a message it no longer has.
    pub lookup_unknown_share: f64,
    /// The SMSC refuses binds (ESME_RBINDFAIL), as one that is down for
    /// its clients does; `POST /_sandbox/smsc/unbind` ends the bound ones.
    pub smsc_refuse_binds: bool,
    /// The next N submit_sm get ESME_RTHROTTLED without being taken.
    pub smsc_throttle_burst: u32,
    /// The SMSC takes messages but sends no receipts: bound, and silent.
    pub smsc_silent_receipts: bool,
    /// By E.164 prefix (the longest that matches wins): the share of the
    /// SMSC's messages delivered, the rest undelivered, over the rules'.
    pub smsc_delivered_share_by_prefix: BTreeMap<String, f64>,
}

impl Faults {
    /// The receipt delay of messages to `to`.
    pub fn receipt_delay_ms(&self, to: &str) -> u64 {
        longest(&self.receipt_delay_ms_by_prefix, to)
            .copied()
            .unwrap_or(0)
    }
}

impl Faults {
    /// The delivered share the faults set for messages to `to`, if any.
    pub fn smsc_delivered_share(&self, to: &str) -> Option<f64> {
        longest(&self.smsc_delivered_share_by_prefix, to).copied()
    }
}

fn longest<'a, T>(by_prefix: &'a BTreeMap<String, T>, to: &str) -> Option<&'a T> {
    by_prefix
        .iter()
        .filter(|(prefix, _)| to.starts_with(prefix.as_str()))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::Faults;

    #[test]
    fn the_longest_matching_prefix_sets_the_receipt_delay() {
        let faults = Faults {
            receipt_delay_ms_by_prefix: [("+44".to_string(), 100), ("+447700".to_string(), 3000)]
                .into_iter()
                .collect(),
            ..Faults::default()
        };
        assert_eq!(faults.receipt_delay_ms("+447700900123"), 3000);
        assert_eq!(faults.receipt_delay_ms("+447800900123"), 100);
        assert_eq!(faults.receipt_delay_ms("+15005550006"), 0);
    }
}
