//! Twilio Programmable Messaging.

use std::collections::HashMap;

use aws_lc_rs::{constant_time, hmac};
use base64::{Engine, engine::general_purpose::STANDARD};
use serde::Deserialize;

use super::{CallbackUpdate, Lookup, OutgoingSms, ProviderReply, http::HttpApi};
use crate::{config::TwilioConfig, domain::Status};

pub struct Twilio {
    config: TwilioConfig,
    messages_url: String,
    /// `…/Messages`, to which a lookup adds `/{sid}.json`; `None` if the
    /// base URL is not one (sends then fail on it the same way).
    message_base: Option<reqwest::Url>,
}

impl Twilio {
    pub fn new(config: TwilioConfig) -> Self {
        let messages_url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            config.base_url.trim_end_matches('/'),
            config.account_sid
        );
        let message_base = reqwest::Url::parse(messages_url.trim_end_matches(".json")).ok();
        Self {
            config,
            messages_url,
            message_base,
        }
    }
}

impl Twilio {
    /// The API key when there is one, else the account's SID and token.
    fn credentials(&self) -> (&str, &str) {
        match &self.config.api_key {
            Some(key) => (&key.sid, &key.secret),
            None => (&self.config.account_sid, &self.config.auth_token),
        }
    }
}

#[derive(Deserialize)]
struct MessageResource {
    sid: String,
    status: String,
}

/// The part of a fetched Message resource a lookup reads.
#[derive(Deserialize)]
struct FetchedResource {
    sid: String,
    status: String,
    error_code: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ErrorResource {
    code: Option<u32>,
    message: Option<String>,
}

/// Twilio's message statuses in our model.
fn status_of(twilio: &str) -> Option<Status> {
    Some(match twilio {
        "accepted" | "scheduled" | "queued" | "sending" => Status::Queued,
        "sent" => Status::Sent,
        "delivered" | "read" => Status::Delivered,
        "undelivered" => Status::Undelivered,
        "failed" | "canceled" => Status::Failed,
        _ => return None,
    })
}

impl HttpApi for Twilio {
    fn name(&self) -> &'static str {
        "twilio"
    }

    fn build_request(
        &self,
        http: &reqwest::Client,
        sms: &OutgoingSms<'_>,
    ) -> reqwest::RequestBuilder {
        let mut form: Vec<(&str, &str)> = vec![("To", sms.to), ("Body", sms.body)];
        match (&self.config.messaging_service_sid, &self.config.from) {
            (Some(service), _) => form.push(("MessagingServiceSid", service)),
            (None, Some(from)) => form.push(("From", from)),
            (None, None) => {}
        }
        if let Some(url) = &self.config.status_callback_url {
            form.push(("StatusCallback", url));
        }
        let (user, secret) = self.credentials();
        http.post(&self.messages_url)
            .basic_auth(user, Some(secret))
            .form(&form)
    }

    fn parse_response(&self, status: u16, body: &[u8]) -> ProviderReply {
        match status {
            200..=299 => match serde_json::from_slice::<MessageResource>(body) {
                Ok(message) => ProviderReply::Accepted {
                    status: status_of(&message.status).unwrap_or(Status::Queued),
                    provider_status: message.status,
                    sid: message.sid,
                    parts: Vec::new(),
                },
                // Taken (2xx) but unreadable: we cannot track it, and must not resend it.
                Err(_) => ProviderReply::ServerError { status },
            },
            429 => ProviderReply::RateLimited,
            // The server timed out before the whole request arrived (seen
            // when the machine is saturated): it processed nothing.
            408 => ProviderReply::NotReceived,
            400..=499 => {
                let error = serde_json::from_slice::<ErrorResource>(body).ok();
                let code = error.as_ref().and_then(|e| e.code);
                if code == Some(20429) {
                    return ProviderReply::RateLimited;
                }
                // Twilio's messages are worth showing, but some quote the
                // resource path, account SID included (20404).
                ProviderReply::Rejected {
                    code: code.map_or_else(|| format!("http_{status}"), |code| code.to_string()),
                    message: error
                        .and_then(|e| e.message)
                        .map(|message| self.redact(&message))
                        .unwrap_or_else(|| format!("twilio answered {status}")),
                }
            }
            _ => ProviderReply::ServerError { status },
        }
    }

    fn verify_callback(&self, url: &str, params: &[(String, String)], signature: &str) -> bool {
        let Ok(given) = STANDARD.decode(signature.trim()) else {
            return false;
        };
        let expected = sign(&self.config.auth_token, url, params);
        constant_time::verify_slices_are_equal(&given, &expected).is_ok()
    }

    fn parse_callback(&self, params: &[(String, String)]) -> Option<CallbackUpdate> {
        let map: HashMap<&str, &str> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let sid = map.get("MessageSid").or_else(|| map.get("SmsSid"))?;
        let provider_status = map.get("MessageStatus").or_else(|| map.get("SmsStatus"))?;
        Some(CallbackUpdate {
            sid: sid.to_string(),
            status: status_of(provider_status)?,
            provider_status: provider_status.to_string(),
            error_code: map
                .get("ErrorCode")
                .filter(|code| !code.is_empty())
                .map(|c| c.to_string()),
        })
    }

    fn build_lookup(&self, http: &reqwest::Client, sid: &str) -> reqwest::RequestBuilder {
        // A SID is letters and digits; anything else goes percent-encoded,
        // never as a path of its own.
        let url = self.message_base.clone().map(|mut url| {
            if let Ok(mut path) = url.path_segments_mut() {
                path.push(&format!("{sid}.json"));
            }
            url
        });
        let request = match url {
            Some(url) => http.get(url),
            None => http.get(&self.messages_url),
        };
        let (user, secret) = self.credentials();
        request.basic_auth(user, Some(secret))
    }

    fn parse_lookup(&self, sid: &str, status: u16, body: &[u8]) -> Lookup {
        match status {
            200..=299 => {
                let Ok(found) = serde_json::from_slice::<FetchedResource>(body) else {
                    return Lookup::Failed("twilio answered an unreadable message".into());
                };
                let Some(ours) = status_of(&found.status) else {
                    return Lookup::Failed(format!("unknown twilio status {:?}", found.status));
                };
                if found.sid != sid {
                    return Lookup::Failed("twilio answered for another message".into());
                }
                // Twilio sends the code as a number; callbacks carry it as text.
                let error_code = match found.error_code {
                    Some(serde_json::Value::Number(code)) => Some(code.to_string()),
                    Some(serde_json::Value::String(code)) if !code.is_empty() => Some(code),
                    _ => None,
                };
                Lookup::Found(CallbackUpdate {
                    sid: found.sid,
                    status: ours,
                    provider_status: found.status,
                    error_code,
                })
            }
            404 => Lookup::Unknown,
            _ => Lookup::Failed(format!("twilio answered {status}")),
        }
    }

    fn callback_url(&self) -> Option<&str> {
        self.config.status_callback_url.as_deref()
    }

    fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        let key = self.config.api_key.as_ref();
        let key = key.map(|k| [&k.secret, &k.sid]).into_iter().flatten();
        for secret in [&self.config.auth_token, &self.config.account_sid]
            .into_iter()
            .chain(key)
        {
            // A one-letter "secret" would mask half of every message.
            if secret.len() >= 4 {
                text = text.replace(secret.as_str(), "<redacted>");
            }
        }
        text
    }
}

/// HMAC-SHA1 keyed with the auth token over the URL and the sorted
/// name+value pairs: Twilio's `X-Twilio-Signature`.
fn sign(token: &str, url: &str, params: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_string();
    for (name, value) in sorted {
        data.push_str(name);
        data.push_str(value);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, token.as_bytes());
    hmac::sign(&key, data.as_bytes()).as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn twilio(token: &str) -> Twilio {
        Twilio::new(TwilioConfig {
            base_url: "http://127.0.0.1:1".into(),
            account_sid: "AC1".into(),
            auth_token: token.into(),
            api_key: None,
            from: Some("+15005550006".into()),
            messaging_service_sid: None,
            status_callback_url: None,
        })
    }

    #[test]
    fn requests_sign_in_with_the_api_key_when_there_is_one() {
        let http = reqwest::Client::new();
        let sms = OutgoingSms {
            to: "+447700900123",
            body: "hi",
        };
        let auth = |t: &Twilio| {
            let request = t.build_request(&http, &sms).build().unwrap();
            let value = request.headers()["authorization"]
                .to_str()
                .unwrap()
                .to_string();
            let lookup = t.build_lookup(&http, "SM1").build().unwrap();
            assert_eq!(lookup.headers()["authorization"].to_str().unwrap(), value);
            let decoded = STANDARD.decode(value.trim_start_matches("Basic ")).unwrap();
            String::from_utf8(decoded).unwrap()
        };
        let mut t = twilio("token-1");
        assert_eq!(auth(&t), "AC1:token-1");
        t.config.api_key = Some(crate::config::TwilioApiKey {
            sid: "SK1".into(),
            secret: "key-secret-1".into(),
        });
        assert_eq!(auth(&t), "SK1:key-secret-1");
        // Its secret is redacted like the token.
        assert_eq!(
            t.redact("key-secret-1 and token-1"),
            "<redacted> and <redacted>"
        );
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn verifies_twilio_documented_signature() {
        let params = params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert!(twilio("12345").verify_callback(url, &params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(!twilio("12345").verify_callback(url, &params, "1/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(!twilio("54321").verify_callback(url, &params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(!twilio("12345").verify_callback(url, &params, "not base64!"));
    }

    #[test]
    fn reads_answers() {
        let t = twilio("x");
        let ok = br#"{"sid":"SM1","status":"queued"}"#;
        assert_eq!(
            t.parse_response(201, ok),
            ProviderReply::Accepted {
                sid: "SM1".into(),
                status: Status::Queued,
                provider_status: "queued".into(),
                parts: Vec::new(),
            }
        );
        let bad = br#"{"code":21211,"message":"The 'To' number is not a valid phone number.","status":400}"#;
        assert!(
            matches!(t.parse_response(400, bad), ProviderReply::Rejected { code, .. } if code == "21211")
        );
        assert_eq!(
            t.parse_response(429, br#"{"code":20429}"#),
            ProviderReply::RateLimited
        );
        assert_eq!(t.parse_response(408, b""), ProviderReply::NotReceived);
        assert_eq!(
            t.parse_response(503, b"oops"),
            ProviderReply::ServerError { status: 503 }
        );
        assert_eq!(
            t.parse_response(201, b"not json"),
            ProviderReply::ServerError { status: 201 }
        );
    }

    #[test]
    fn answers_never_carry_the_account_sid_or_token() {
        let sid = "AC0123456789abcdef0123456789abcdef";
        let t = Twilio::new(TwilioConfig {
            account_sid: sid.into(),
            ..twilio("the-auth-token").config
        });
        let not_found = format!(
            r#"{{"code":20404,"message":"The requested resource /2010-04-01/Accounts/{sid}/Messages.json was not found","status":404}}"#
        );
        let ProviderReply::Rejected { code, message } = t.parse_response(404, not_found.as_bytes())
        else {
            panic!("a 404 is a refusal");
        };
        assert_eq!(code, "20404");
        assert_eq!(
            message,
            "The requested resource /2010-04-01/Accounts/<redacted>/Messages.json was not found"
        );
        assert_eq!(
            t.redact(&format!("{sid}:the-auth-token")),
            "<redacted>:<redacted>"
        );
    }

    #[test]
    fn reads_lookups() {
        let t = twilio("x");
        let found = br#"{"sid":"SM1","status":"undelivered","error_code":30003,"error_message":"Unreachable"}"#;
        assert_eq!(
            t.parse_lookup("SM1", 200, found),
            Lookup::Found(CallbackUpdate {
                sid: "SM1".into(),
                status: Status::Undelivered,
                provider_status: "undelivered".into(),
                error_code: Some("30003".into()),
            })
        );
        let sent = br#"{"sid":"SM1","status":"sent","error_code":null}"#;
        assert!(matches!(
            t.parse_lookup("SM1", 200, sent),
            Lookup::Found(CallbackUpdate {
                status: Status::Sent,
                error_code: None,
                ..
            })
        ));
        assert_eq!(
            t.parse_lookup("SM1", 404, br#"{"code":20404}"#),
            Lookup::Unknown
        );
        assert!(matches!(t.parse_lookup("SM1", 429, b""), Lookup::Failed(_)));
        assert!(matches!(
            t.parse_lookup("SM2", 200, sent),
            Lookup::Failed(_)
        ));
        assert!(matches!(
            t.parse_lookup("SM1", 200, b"<html>"),
            Lookup::Failed(_)
        ));
    }

    #[test]
    fn looks_messages_up_under_the_account() {
        let http = reqwest::Client::new();
        let request = twilio("x").build_lookup(&http, "SM1/../x").build().unwrap();
        assert_eq!(
            request.url().as_str(),
            "http://127.0.0.1:1/2010-04-01/Accounts/AC1/Messages/SM1%2F..%2Fx.json"
        );
        assert_eq!(request.method(), reqwest::Method::GET);
    }

    #[test]
    fn reads_callbacks() {
        let t = twilio("x");
        let update = t
            .parse_callback(&params(&[
                ("MessageSid", "SM1"),
                ("MessageStatus", "undelivered"),
                ("ErrorCode", "30003"),
            ]))
            .unwrap();
        assert_eq!(
            (update.status, update.error_code.as_deref()),
            (Status::Undelivered, Some("30003"))
        );
        assert!(
            t.parse_callback(&params(&[("MessageStatus", "sent")]))
                .is_none()
        );
        assert!(
            t.parse_callback(&params(&[
                ("MessageSid", "SM1"),
                ("MessageStatus", "bogus")
            ]))
            .is_none()
        );
    }
}
