//! `GET /2010-04-01/Accounts/{sid}/Messages/{MessageSid}.json`: a message's
//! status as Twilio holds it now, whatever its callbacks did.

use actix_web::{HttpRequest, HttpResponse, web};

use super::{Resource, authorized_for, error};
use crate::server::{State, random_unit};

pub async fn fetch_message(
    state: web::Data<State>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> HttpResponse {
    let (account, sid) = path.into_inner();
    let config = &state.config.twilio;
    if account != config.account_sid || !authorized_for(&req, config) {
        return error(401, 20003, "Authenticate");
    }
    let unknown_share = state.faults.lock().unwrap().lookup_unknown_share;
    let mut log = state.twilio.lock().unwrap();
    log.lookups += 1;
    let found = log.by_sid.get(&sid).and_then(|&at| log.messages.get(at));
    let Some(message) = found.filter(|_| random_unit() >= unknown_share) else {
        let message = format!("The requested resource {} was not found", req.path());
        return error(404, 20404, &message);
    };
    let status = message.status_at(chrono::Utc::now().timestamp_millis());
    let resource = Resource {
        account: &config.account_sid,
        sid: &sid,
        to: &message.to,
        from: message.from.as_deref(),
        service: message.messaging_service_sid.as_deref(),
        body: &message.body,
        date_created: &message.date_created,
        status,
        error_code: (status == message.outcome)
            .then_some(message.error_code)
            .flatten(),
    };
    HttpResponse::Ok().json(resource.json())
}
