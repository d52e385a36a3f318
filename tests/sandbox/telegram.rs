//! The Telegram Bot API's `sendMessage` (GET or POST, its parameters in
//! any of the four ways the API takes them), with its 1 message per second
//! per chat limit answered the way Telegram does: 429 and `retry_after`.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use serde::Serialize;
use serde_json::{Value, json};

use crate::server::State;

mod params;

#[derive(Debug, Clone, Serialize)]
pub struct TelegramMessage {
    pub message_id: u64,
    pub chat_id: String,
    pub text: String,
    pub parse_mode: Option<String>,
    /// How many times this exact (chat, text) was sent.
    pub submissions: u32,
}

#[derive(Default)]
pub struct TelegramLog {
    pub messages: Vec<TelegramMessage>,
    last_per_chat: HashMap<String, Instant>,
}

impl TelegramLog {
    pub fn duplicates(&self) -> u32 {
        self.messages
            .iter()
            .map(|m| m.submissions.saturating_sub(1))
            .sum()
    }

    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

fn error(status: u16, description: &str, retry_after: Option<u64>) -> HttpResponse {
    let mut body = json!({"ok": false, "error_code": status, "description": description});
    if let Some(secs) = retry_after {
        body["parameters"] = json!({ "retry_after": secs });
    }
    HttpResponse::build(StatusCode::from_u16(status).unwrap()).json(body)
}

pub async fn send_message(
    state: web::Data<State>,
    token: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let latency = state.faults.lock().unwrap().latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    {
        let mut faults = state.faults.lock().unwrap();
        if faults.telegram_404_burst > 0 {
            faults.telegram_404_burst -= 1;
            return error(404, &format!("Not Found: {}", req.path()), None);
        }
    }
    if token.strip_prefix("bot") != Some(state.config.telegram.bot_token.as_str()) {
        return error(401, "Unauthorized", None);
    }
    let params = match params::read(&req, &body) {
        Ok(params) => params,
        Err(why) => return error(400, &why, None),
    };
    let chat_id = match params.get("chat_id") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return error(400, "Bad Request: chat_id is empty", None),
    };
    let Some(text) = params
        .get("text")
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
    else {
        return error(400, "Bad Request: message text is empty", None);
    };
    let parse_mode = params
        .get("parse_mode")
        .and_then(Value::as_str)
        .map(str::to_string);
    {
        let mut faults = state.faults.lock().unwrap();
        if faults.telegram_429_burst > 0 {
            faults.telegram_429_burst -= 1;
            return error(429, "Too Many Requests: retry after 1", Some(1));
        }
    }
    let mut log = state.telegram.lock().unwrap();
    if let Some(last) = log.last_per_chat.get(&chat_id)
        && last.elapsed() < Duration::from_secs(1)
    {
        return error(429, "Too Many Requests: retry after 1", Some(1));
    }
    log.last_per_chat.insert(chat_id.clone(), Instant::now());
    let message_id = log.messages.len() as u64 + 1;
    if let Some(seen) = log
        .messages
        .iter_mut()
        .find(|m| m.chat_id == chat_id && m.text == text)
    {
        seen.submissions += 1;
    } else {
        log.messages.push(TelegramMessage {
            message_id,
            chat_id: chat_id.clone(),
            text: text.to_string(),
            parse_mode,
            submissions: 1,
        });
    }
    let chat: Value = chat_id
        .parse::<i64>()
        .map(Value::from)
        .unwrap_or(Value::String(chat_id));
    HttpResponse::Ok().json(json!({
        "ok": true,
        "result": {
            "message_id": message_id,
            "from": {"id": 123456, "is_bot": true, "first_name": "smsops sandbox", "username": "smsops_sandbox_bot"},
            "chat": {"id": chat, "type": "private"},
            "date": chrono::Utc::now().timestamp(),
            "text": text,
        }
    }))
}
