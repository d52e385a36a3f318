//! The OpenAPI document, generated from the handlers and their types.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::{error::ErrorBody, routes};

#[derive(OpenApi)]
#[openapi(
    info(title = "smsops API", description = "SMS management and monitoring."),
    paths(
        routes::health::healthz,
        routes::health::readyz,
        routes::prometheus::metrics,
        routes::auth::sign_up,
        routes::auth::sign_in,
        routes::auth::refresh,
        routes::auth::sign_out,
        routes::auth::me,
        routes::users::list,
        routes::users::update_role,
        routes::users::delete,
        routes::pairs::list,
        routes::pairs::create,
        routes::pairs::get,
        routes::pairs::update,
        routes::pairs::delete,
        routes::sms::send,
        routes::sms::get,
        routes::sms::list,
        routes::metrics::summary,
        routes::metrics::series,
        routes::live::live,
        routes::api_keys::create,
        routes::api_keys::list,
        routes::api_keys::revoke,
        routes::ingest::sms_events,
        routes::alerts::list,
        routes::alerts::trigger,
        routes::alerts::get_rules,
        routes::alerts::update_rules,
        routes::sessions::create,
        routes::sessions::list,
        routes::sessions::get,
        routes::sessions::stop,
        routes::sessions::restart,
        routes::sessions::audit,
        routes::webhooks::twilio_status,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
