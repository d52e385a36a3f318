//! Routes, shared state and the inspection endpoints under `/_sandbox`.

use std::sync::Mutex;

use actix_web::{App, HttpResponse, HttpServer, web};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use serde_json::json;

use crate::{
    config::Config, faults::Faults, smsc, smsc::SmscLog, telegram, telegram::TelegramLog, twilio,
    twilio::TwilioLog,
};

pub struct State {
    pub config: Config,
    pub faults: Mutex<Faults>,
    pub twilio: Mutex<TwilioLog>,
    pub telegram: Mutex<TelegramLog>,
    pub smsc: Mutex<SmscLog>,
    pub http: reqwest::Client,
}

/// A uniform number in [0, 1).
pub fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    SystemRandom::new().fill(&mut bytes).unwrap();
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// Serves HTTP on `addr` and SMPP on `smsc`.
pub async fn run(addr: &str, smsc_addr: &str, config: Config) -> std::io::Result<()> {
    let state = web::Data::new(State {
        config,
        faults: Mutex::new(Faults::default()),
        twilio: Mutex::new(TwilioLog::default()),
        telegram: Mutex::new(TelegramLog::default()),
        smsc: Mutex::new(SmscLog::default()),
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?,
    });
    let smsc_state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::default().limit(1 << 20))
            .route(
                "/2010-04-01/Accounts/{account}/Messages.json",
                web::post().to(twilio::create_message),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Messages/{sid}.json",
                web::get().to(twilio::fetch_message),
            )
            .route(
                "/{token}/sendMessage",
                web::post().to(telegram::send_message),
            )
            .route(
                "/{token}/sendMessage",
                web::get().to(telegram::send_message),
            )
            .route(
                "/_sandbox/health",
                web::get().to(|| async { HttpResponse::Ok().json(json!({"ok": true})) }),
            )
            .route("/_sandbox/faults", web::get().to(get_faults))
            .route("/_sandbox/faults", web::post().to(set_faults))
            .route("/_sandbox/twilio/messages", web::get().to(twilio_messages))
            .route("/_sandbox/twilio/messages", web::delete().to(reset_twilio))
            .route("/_sandbox/twilio/stats", web::get().to(twilio_stats))
            .route(
                "/_sandbox/telegram/messages",
                web::get().to(telegram_messages),
            )
            .route(
                "/_sandbox/telegram/messages",
                web::delete().to(reset_telegram),
            )
            .route("/_sandbox/smsc/messages", web::get().to(smsc_messages))
            .route("/_sandbox/smsc/messages", web::delete().to(reset_smsc))
            .route("/_sandbox/smsc/unbind", web::post().to(unbind_smsc))
    })
    .workers(2)
    .bind(addr)?;
    for bound in server.addrs() {
        // Tests and scripts read this line to learn the port.
        println!("sandbox listening on {bound}");
    }
    let listener = tokio::net::TcpListener::bind(smsc_addr).await?;
    // And this one, the SMSC's.
    println!("smsc listening on {}", listener.local_addr()?);
    actix_web::rt::spawn(smsc::serve(listener, smsc_state));
    server.run().await
}

async fn get_faults(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().json(state.faults.lock().unwrap().clone())
}

async fn set_faults(state: web::Data<State>, faults: web::Json<Faults>) -> HttpResponse {
    *state.faults.lock().unwrap() = faults.into_inner();
    HttpResponse::Ok().json(state.faults.lock().unwrap().clone())
}

async fn twilio_messages(state: web::Data<State>) -> HttpResponse {
    let log = state.twilio.lock().unwrap();
    let mut body = counts(&log);
    body["messages"] = json!(log.messages);
    HttpResponse::Ok().json(body)
}

/// The counts of `/_sandbox/twilio/messages` without the messages: what a
/// long run polls.
async fn twilio_stats(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().json(counts(&state.twilio.lock().unwrap()))
}

fn counts(log: &TwilioLog) -> serde_json::Value {
    json!({
        "count": log.messages.len(),
        "duplicates": log.duplicates(),
        "max_in_flight": log.max_in_flight,
        "callbacks_sent": log.callbacks_sent,
        "callbacks_dropped": log.callbacks_dropped,
        "lookups": log.lookups,
    })
}

async fn reset_twilio(state: web::Data<State>) -> HttpResponse {
    state.twilio.lock().unwrap().reset();
    HttpResponse::NoContent().finish()
}

async fn telegram_messages(state: web::Data<State>) -> HttpResponse {
    let log = state.telegram.lock().unwrap();
    HttpResponse::Ok().json(json!({
        "count": log.messages.len(),
        "duplicates": log.duplicates(),
        "messages": log.messages,
    }))
}

async fn reset_telegram(state: web::Data<State>) -> HttpResponse {
    state.telegram.lock().unwrap().reset();
    HttpResponse::NoContent().finish()
}

async fn smsc_messages(state: web::Data<State>) -> HttpResponse {
    let log = state.smsc.lock().unwrap();
    HttpResponse::Ok().json(json!({
        "count": log.parts.len(),
        "binds": log.binds,
        "refused_binds": log.refused_binds,
        "bound": log.bound(),
        "throttled": log.throttled,
        "receipts_sent": log.receipts_sent,
        "parts": log.parts,
    }))
}

async fn reset_smsc(state: web::Data<State>) -> HttpResponse {
    state.smsc.lock().unwrap().reset();
    HttpResponse::NoContent().finish()
}

/// Ends every bound session with an unbind, as an SMSC going down does.
async fn unbind_smsc(state: web::Data<State>) -> HttpResponse {
    state.smsc.lock().unwrap().unbind_all();
    HttpResponse::NoContent().finish()
}
