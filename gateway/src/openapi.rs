//! The OpenAPI document, generated from the handlers and their types.

use std::{collections::HashMap, sync::LazyLock};

use utoipa::{
    Modify, OpenApi,
    openapi::{
        ContentBuilder, PathItem, Ref, ResponseBuilder,
        path::Operation,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
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
        routes::users::set_quota,
        routes::invitations::create,
        routes::invitations::list,
        routes::invitations::revoke,
        routes::audit::list,
        routes::pairs::list,
        routes::pairs::create,
        routes::pairs::get,
        routes::pairs::update,
        routes::pairs::delete,
        routes::sms::send,
        routes::sms_batch::send_batch,
        routes::sms::get,
        routes::sms::list,
        routes::sms::preview,
        routes::providers::list,
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
    modifiers(&BearerAuth, &CommonResponses, &RolesStated, &UniqueOperationIds),
)]
pub struct ApiDoc;

/// Who may call an operation: each one's `x-roles` extension names one of
/// these lists, and the role matrix test calls every operation as every
/// kind of caller against it. `anyone` needs no credential; `api_key` is
/// an `X-Api-Key`; the rest are the roles of a bearer token.
pub const ANYONE: [&str; 1] = ["anyone"];
pub const API_KEY: [&str; 1] = ["api_key"];
pub const READERS: [&str; 3] = ["viewer", "operator", "admin"];
pub const SENDERS: [&str; 2] = ["operator", "admin"];
pub const ADMINS: [&str; 1] = ["admin"];

/// The extension that carries an operation's roles.
pub const ROLES_EXTENSION: &str = "x-roles";

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

/// Answers any operation can give that its handler does not list: 401
/// where a token is needed, 400 where a query string or JSON body is read
/// (an unknown or malformed field), 415 for a body that is not JSON.
/// Callers generating clients from the document meet them like any other.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for (_, operation) in operations_mut(item) {
                if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    document(
                        operation,
                        "401",
                        "unauthorized: the bearer token is missing, invalid or expired",
                    );
                }
                let queried =
                    operation.parameters.iter().flatten().any(|p| {
                        matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query)
                    });
                if queried {
                    document(
                        operation,
                        "400",
                        "invalid_argument: a query parameter is unknown or malformed",
                    );
                }
                if operation.request_body.is_some() {
                    document(
                        operation,
                        "400",
                        "invalid_argument: the body is not the JSON this operation takes",
                    );
                    document(
                        operation,
                        "415",
                        "unsupported_media_type: the body is not application/json",
                    );
                }
            }
        }
    }
}

/// Operation ids are the handlers' names (`list`, `create`), the same in
/// several modules; OpenAPI wants each unique, and clients generated from
/// the document (the dashboard's types) key operations by it. Each is
/// prefixed with its path's first segment: `sessions_list`, `users_list`,
/// `invitations_list`.
struct UniqueOperationIds;

impl Modify for UniqueOperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let resource = path
                .trim_start_matches("/api/v1/")
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or_default()
                .replace('-', "_");
            for (_, operation) in operations_mut(item) {
                if let Some(id) = operation.operation_id.as_mut()
                    && !id.starts_with(&resource)
                {
                    *id = format!("{resource}_{id}");
                }
            }
        }
    }
}

/// Says each operation's roles in its description too, where people read
/// them, and documents the 403 that callers of other roles get.
struct RolesStated;

impl Modify for RolesStated {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for (_, operation) in operations_mut(item) {
                let roles: Vec<String> = operation
                    .extensions
                    .as_ref()
                    .and_then(|ext| ext.get(ROLES_EXTENSION))
                    .and_then(|value| value.as_array())
                    .map(|roles| {
                        roles
                            .iter()
                            .filter_map(|r| r.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                if roles.is_empty() {
                    continue;
                }
                let line = format!("Roles: {}.", roles.join(", "));
                operation.description = Some(match operation.description.take() {
                    Some(text) if !text.is_empty() => format!("{text}\n\n{line}"),
                    _ => line,
                });
                if !roles.iter().any(|r| r == "anyone" || r == "api_key") {
                    document(
                        operation,
                        "403",
                        "forbidden: the caller's role may not do this (an api key's token may only report results)",
                    );
                }
            }
        }
    }
}

fn document(operation: &mut Operation, status: &str, description: &str) {
    operation
        .responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build();
            ResponseBuilder::new()
                .description(description)
                .content("application/json", content)
                .build()
                .into()
        });
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("GET", item.get.as_mut()),
        ("PUT", item.put.as_mut()),
        ("POST", item.post.as_mut()),
        ("DELETE", item.delete.as_mut()),
        ("OPTIONS", item.options.as_mut()),
        ("HEAD", item.head.as_mut()),
        ("PATCH", item.patch.as_mut()),
        ("TRACE", item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| Some((method, operation?)))
}

/// The methods a route answers, by its path as the document writes it
/// (`/api/v1/sms/{id}`): what a 405's `Allow` header lists.
pub fn allowed_methods(path: &str) -> Option<&'static str> {
    static ALLOWED: LazyLock<HashMap<String, String>> = LazyLock::new(|| {
        let mut openapi = ApiDoc::openapi();
        openapi
            .paths
            .paths
            .iter_mut()
            .map(|(path, item)| {
                let methods: Vec<&str> = operations_mut(item).map(|(method, _)| method).collect();
                (path.clone(), methods.join(", "))
            })
            .collect()
    });
    ALLOWED.get(path).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// The committed copy the dashboard generates its TypeScript types from.
    fn committed() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dashboard/openapi.json")
    }

    fn render() -> String {
        let mut text = ApiDoc::openapi()
            .to_pretty_json()
            .expect("the document renders");
        text.push('\n');
        text
    }

    #[test]
    fn every_operation_id_is_unique() {
        let doc = ApiDoc::openapi();
        let mut seen = std::collections::HashMap::new();
        for (path, item) in &doc.paths.paths {
            for (method, operation) in [
                ("get", &item.get),
                ("put", &item.put),
                ("post", &item.post),
                ("delete", &item.delete),
                ("patch", &item.patch),
            ] {
                let Some(operation) = operation else { continue };
                let id = operation.operation_id.clone().expect("an operation id");
                let here = format!("{method} {path}");
                if let Some(before) = seen.insert(id.clone(), here.clone()) {
                    panic!("{id} names both {before} and {here}");
                }
            }
        }
        assert!(seen.len() > 30, "{seen:?}");
    }

    #[test]
    fn the_dashboards_copy_of_the_openapi_document_is_current() {
        let text = render();
        // Maps with a random order (utoipa keeps extensions in a HashMap)
        // would make the copy differ from run to run.
        assert_eq!(
            text,
            render(),
            "the OpenAPI document renders differently each time"
        );
        let path = committed();
        if std::env::var_os("SMSOPS_BLESS").is_some_and(|v| v == "1") {
            std::fs::write(&path, &text).expect("write dashboard/openapi.json");
            return;
        }
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current != text {
            let line = current
                .lines()
                .zip(text.lines())
                .position(|(old, new)| old != new)
                .unwrap_or_else(|| current.lines().count().min(text.lines().count()));
            panic!(
                "the API changed: dashboard/openapi.json is not the OpenAPI document the gateway \
                 serves (first difference at line {}). Run `SMSOPS_BLESS=1 cargo test -p gateway \
                 openapi` to update it, and rebuild the dashboard (`cd dashboard && npm run build`) \
                 so its types follow.",
                line + 1
            );
        }
    }
}
