//! Twilio's Programmable Messaging API: `POST /2010-04-01/Accounts/{sid}/Messages.json`,
//! then signed status callbacks, as Twilio sends them.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use base64::{Engine, engine::general_purpose::STANDARD};
use serde::Serialize;
use serde_json::json;

use smsops_tests::sandbox::twilio_signature;

use crate::server::{State, random_unit};

mod lookup;

pub use lookup::fetch_message;

#[derive(Debug, Clone, Serialize)]
pub struct TwilioMessage {
    pub sid: String,
    pub to: String,
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub body: String,
    /// What Twilio would bill it as.
    pub num_segments: usize,
    pub status_callback: Option<String>,
    /// Where the message ends: delivered, undelivered or failed.
    pub outcome: String,
    pub error_code: Option<u32>,
    /// How many times this exact (To, Body) was submitted.
    pub submissions: u32,
    pub date_created: String,
    /// When the sandbox took it, in Unix milliseconds: Twilio's own dates
    /// have whole seconds, too coarse to check pacing.
    pub received_at_ms: i64,
    /// When Twilio's own record moves to `sent`, then to the outcome,
    /// whether or not the callbacks saying so are sent.
    pub sent_at_ms: i64,
    pub final_at_ms: i64,
}

impl TwilioMessage {
    /// Twilio's status for it at `now_ms`, as a lookup answers.
    pub fn status_at(&self, now_ms: i64) -> &str {
        if now_ms >= self.final_at_ms {
            &self.outcome
        } else if now_ms >= self.sent_at_ms {
            "sent"
        } else {
            "queued"
        }
    }
}

#[derive(Default)]
pub struct TwilioLog {
    pub messages: Vec<TwilioMessage>,
    index: HashMap<(String, String), usize>,
    /// Every SID handed out, to the message it names.
    pub by_sid: HashMap<String, usize>,
    pub callbacks_sent: u64,
    pub callbacks_dropped: u64,
    pub lookups: u64,
    bucket: crate::bucket::Bucket,
    /// Requests being answered now, and the most there ever were: real
    /// Twilio caps an account's concurrent requests.
    in_flight: usize,
    pub max_in_flight: usize,
}

/// Counts one request from its arrival until its answer is built.
struct InFlight<'a>(&'a Mutex<TwilioLog>);

impl<'a> InFlight<'a> {
    fn enter(log: &'a Mutex<TwilioLog>) -> Self {
        let mut open = log.lock().unwrap();
        open.in_flight += 1;
        open.max_in_flight = open.max_in_flight.max(open.in_flight);
        Self(log)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Ok(mut open) = self.0.lock() {
            open.in_flight = open.in_flight.saturating_sub(1);
        }
    }
}

impl TwilioLog {
    pub fn duplicates(&self) -> u32 {
        self.messages
            .iter()
            .map(|m| m.submissions.saturating_sub(1))
            .sum()
    }

    /// Forgets everything but the requests still being answered.
    pub fn reset(&mut self) {
        *self = Self {
            in_flight: self.in_flight,
            ..Self::default()
        };
    }
}

/// Twilio's error body.
pub fn error(status: u16, code: u32, message: &str) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap()).json(json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    }))
}

fn is_e164(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or("");
    (2..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0')
}

/// Basic auth as the account itself or as its API key.
pub fn authorized_for(req: &HttpRequest, config: &crate::config::TwilioConfig) -> bool {
    authorized(req, &config.account_sid, &config.auth_token)
        || authorized(req, &config.api_key_sid, &config.api_key_secret)
}

fn authorized(req: &HttpRequest, sid: &str, token: &str) -> bool {
    let Some(value) = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = STANDARD.decode(encoded.trim()) else {
        return false;
    };
    decoded == format!("{sid}:{token}").into_bytes()
}

pub async fn create_message(
    state: web::Data<State>,
    account: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let _counted = InFlight::enter(&state.twilio);
    let faults = state.faults.lock().unwrap().clone();
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    {
        let mut current = state.faults.lock().unwrap();
        if current.twilio_404_burst > 0 {
            current.twilio_404_burst -= 1;
            let message = format!("The requested resource {} was not found", req.path());
            return error(404, 20404, &message);
        }
    }
    let config = &state.config.twilio;
    if *account != config.account_sid || !authorized_for(&req, config) {
        return error(401, 20003, "Authenticate");
    }
    {
        let mut current = state.faults.lock().unwrap();
        if current.twilio_429_burst > 0 {
            current.twilio_429_burst -= 1;
            return error(429, 20429, "Too Many Requests");
        }
    }
    if !state
        .twilio
        .lock()
        .unwrap()
        .bucket
        .take(config.rate_per_second)
    {
        return error(429, 20429, "Too Many Requests");
    }
    if random_unit() < faults.error_5xx_share {
        return error(500, 20500, "Internal Server Error");
    }
    let form: HashMap<String, String> = match serde_urlencoded::from_bytes(&body) {
        Ok(form) => form,
        Err(_) => return error(400, 21610, "Unable to parse the request body"),
    };
    let to = form.get("To").cloned().unwrap_or_default();
    let from = form.get("From").cloned();
    let service = form.get("MessagingServiceSid").cloned();
    let text = form.get("Body").cloned().unwrap_or_default();
    if to.is_empty() {
        return error(400, 21604, "A 'To' phone number is required.");
    }
    if !is_e164(&to) {
        return error(
            400,
            21211,
            &format!("The 'To' number {to} is not a valid phone number."),
        );
    }
    if from.is_none() && service.is_none() {
        return error(400, 21603, "A 'From' phone number is required.");
    }
    // A message may be media alone (MediaUrl, repeated) or a template
    // (ContentSid), as the libraries' `media_url` and `content_sid` send.
    let media = || {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
            .unwrap_or_default()
            .iter()
            .any(|(name, _)| name == "MediaUrl" || name == "ContentSid")
    };
    if text.is_empty() && !media() {
        return error(400, 21602, "Message body is required.");
    }
    if text.chars().count() > 1600 {
        return error(
            400,
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        );
    }

    let rule = state.config.rule_for(&to).clone();
    let roll = random_unit();
    let (outcome, error_code) = if roll < rule.delivered {
        ("delivered", None)
    } else if roll < rule.delivered + rule.undelivered {
        ("undelivered", pick(&rule.undelivered_codes))
    } else {
        ("failed", pick(&rule.failed_codes))
    };
    let sid = format!("SM{}", uuid::Uuid::new_v4().simple());
    let now = chrono::Utc::now().to_rfc2822();
    let callback = form.get("StatusCallback").cloned();
    let latency = Duration::from_millis(rule.callback_latency_ms + faults.callback_delay_ms);
    let receipt_delay = Duration::from_millis(faults.receipt_delay_ms(&to));
    let received_at_ms = chrono::Utc::now().timestamp_millis();
    let step_ms = latency.as_millis() as i64;
    {
        let mut log = state.twilio.lock().unwrap();
        let key = (to.clone(), text.clone());
        if let Some(&at) = log.index.get(&key) {
            log.messages[at].submissions += 1;
            log.by_sid.insert(sid.clone(), at);
        } else {
            let at = log.messages.len();
            log.index.insert(key, at);
            log.by_sid.insert(sid.clone(), at);
            log.messages.push(TwilioMessage {
                sid: sid.clone(),
                to: to.clone(),
                from: from.clone(),
                messaging_service_sid: service.clone(),
                body: text.clone(),
                num_segments: segments(&text),
                status_callback: callback.clone(),
                outcome: outcome.into(),
                error_code,
                submissions: 1,
                date_created: now.clone(),
                received_at_ms,
                sent_at_ms: received_at_ms + step_ms,
                final_at_ms: received_at_ms + 2 * step_ms + receipt_delay.as_millis() as i64,
            });
        }
    }
    if let Some(url) = callback {
        let params = CallbackParams {
            sid: sid.clone(),
            account: config.account_sid.clone(),
            from: from.clone().or(service.clone()).unwrap_or_default(),
            to: to.clone(),
        };
        let state = state.clone();
        let mut order = [("sent", None), (outcome, error_code)];
        if faults.callback_out_of_order {
            order.reverse();
        }
        actix_web::rt::spawn(async move {
            for (status, code) in order {
                let wait = if status == "sent" {
                    latency
                } else {
                    latency + receipt_delay
                };
                tokio::time::sleep(wait).await;
                params.send(&state, &url, status, code).await;
            }
        });
    }
    if random_unit() < faults.timeout_share {
        // Taken, but never answered: the client's timeout decides. actix
        // drops this future when the client hangs up.
        std::future::pending::<()>().await;
    }
    let status = if service.is_some() {
        "accepted"
    } else {
        "queued"
    };
    let resource = Resource {
        account: &config.account_sid,
        sid: &sid,
        to: &to,
        from: from.as_deref(),
        service: service.as_deref(),
        body: &text,
        date_created: &now,
        status,
        error_code: None,
    };
    HttpResponse::Created().json(resource.json())
}

/// A Message resource as Twilio's API returns it.
pub struct Resource<'a> {
    pub account: &'a str,
    pub sid: &'a str,
    pub to: &'a str,
    pub from: Option<&'a str>,
    pub service: Option<&'a str>,
    pub body: &'a str,
    pub date_created: &'a str,
    pub status: &'a str,
    pub error_code: Option<u32>,
}

impl Resource<'_> {
    pub fn json(&self) -> serde_json::Value {
        let (account, sid) = (self.account, self.sid);
        let error_message = self.error_code.map(|_| "Unknown error");
        json!({
            "account_sid": account,
            "api_version": "2010-04-01",
            "body": self.body,
            "date_created": self.date_created,
            "date_sent": null,
            "date_updated": chrono::Utc::now().to_rfc2822(),
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": error_message,
            "from": self.from,
            "messaging_service_sid": self.service,
            "num_media": "0",
            "num_segments": segments(self.body).to_string(),
            "price": null,
            "price_unit": "USD",
            "sid": sid,
            "status": self.status,
            "subresource_uris": {"media": format!("/2010-04-01/Accounts/{account}/Messages/{sid}/Media.json")},
            "to": self.to,
            "uri": format!("/2010-04-01/Accounts/{account}/Messages/{sid}.json"),
        })
    }
}

pub fn pick(codes: &[u32]) -> Option<u32> {
    if codes.is_empty() {
        return None;
    }
    let at = (random_unit() * codes.len() as f64) as usize;
    codes.get(at.min(codes.len() - 1)).copied()
}

/// The GSM 03.38 basic table, position by position (0x1B, the escape to
/// the extension table, is no character of its own).
pub const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{1b}ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
    ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table's characters: each is the escape septet and its own.
const GSM_EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// As Twilio counts `num_segments`: the body encoded in GSM 7-bit when it
/// can be, else UCS-2 (UTF-16 units); one segment of 160 septets or 70
/// units, else segments of 153 or 67 that split no escape or surrogate pair.
fn segments(text: &str) -> usize {
    let septets: Option<Vec<usize>> = text
        .chars()
        .map(|c| match c {
            '\u{1b}' => None,
            c if GSM_BASIC.contains(c) => Some(1),
            c if GSM_EXTENSION.contains(c) => Some(2),
            _ => None,
        })
        .collect();
    let (units, single, multi) = match septets {
        Some(septets) => (septets, 160, 153),
        None => (text.chars().map(char::len_utf16).collect(), 70, 67),
    };
    if units.iter().sum::<usize>() <= single {
        return 1;
    }
    let mut segments = vec![0usize];
    for unit in units {
        let last = segments.len() - 1;
        if segments[last] + unit > multi {
            segments.push(unit);
        } else {
            segments[last] += unit;
        }
    }
    segments.len()
}

struct CallbackParams {
    sid: String,
    account: String,
    from: String,
    to: String,
}

impl CallbackParams {
    async fn send(&self, state: &State, url: &str, status: &str, code: Option<u32>) {
        // Read at send time: a test switches drops on and off mid-run.
        let drop_share = state.faults.lock().unwrap().callback_drop_share;
        if random_unit() < drop_share {
            state.twilio.lock().unwrap().callbacks_dropped += 1;
            return;
        }
        let mut params: Vec<(String, String)> = vec![
            ("AccountSid".into(), self.account.clone()),
            ("ApiVersion".into(), "2010-04-01".into()),
            ("From".into(), self.from.clone()),
            ("MessageSid".into(), self.sid.clone()),
            ("MessageStatus".into(), status.into()),
            ("SmsSid".into(), self.sid.clone()),
            ("SmsStatus".into(), status.into()),
            ("To".into(), self.to.clone()),
        ];
        if let Some(code) = code {
            params.push(("ErrorCode".into(), code.to_string()));
        }
        let signature = twilio_signature(&state.config.twilio.auth_token, url, &params);
        state.twilio.lock().unwrap().callbacks_sent += 1;
        // Twilio does not retry a failed status callback, and neither do we.
        let _ = state
            .http
            .post(url)
            .header("X-Twilio-Signature", signature)
            .form(&params)
            .send()
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164() {
        assert!(is_e164("+447700900123"));
        assert!(!is_e164("447700900123"));
        assert!(!is_e164("+0123"));
        assert!(!is_e164("+1234567890123456"));
    }
}
