//! The access log: one line per request, with the client's address as the
//! trusted proxies tell it, and no secret. Browsers can only pass a token to
//! a WebSocket in the query string (`/api/v1/live?token=`), so the values of
//! the parameters that carry credentials are written as `[redacted]`.

use std::borrow::Cow;

use actix_web::{dev::ServiceRequest, middleware::Logger};

use crate::client_ip::{TrustedProxies, client_ip};

/// Query parameters whose values are credentials, compared without case.
const SECRET_PARAMETERS: [&str; 5] = ["token", "access_token", "refresh_token", "key", "api_key"];

const REDACTED: &str = "[redacted]";

/// `<client> "<method> <path>?<query> <version>" <status> <ms>ms`, on the
/// `http` target.
pub fn logger(trusted: TrustedProxies) -> Logger {
    Logger::new("%{client}xi \"%{request}xi\" %s %Dms")
        .log_target("http")
        .custom_request_replace("client", move |req| {
            req.peer_addr().map_or_else(
                || "-".to_string(),
                |peer| client_ip(peer.ip(), req.headers(), &trusted).to_string(),
            )
        })
        .custom_request_replace("request", request_line)
}

/// The request line as Logger's `%r` writes it, its secrets redacted.
fn request_line(req: &ServiceRequest) -> String {
    let query = req.query_string();
    if query.is_empty() {
        format!("{} {} {:?}", req.method(), req.path(), req.version())
    } else {
        format!(
            "{} {}?{} {:?}",
            req.method(),
            req.path(),
            redact_query(query),
            req.version()
        )
    }
}

/// `query` with the value of every secret parameter replaced; the rest is
/// kept byte for byte. Names are compared decoded, as the server reads
/// them: `%74oken=` is a token too.
pub fn redact_query(query: &str) -> Cow<'_, str> {
    if !query.split('&').any(is_secret) {
        return Cow::Borrowed(query);
    }
    let pairs: Vec<Cow<'_, str>> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret(pair) => Cow::Owned(format!("{name}={REDACTED}")),
            _ => Cow::Borrowed(pair),
        })
        .collect();
    Cow::Owned(pairs.join("&"))
}

fn is_secret(pair: &str) -> bool {
    let Some((name, _)) = pair.split_once('=') else {
        return false;
    };
    let name = decode(name);
    SECRET_PARAMETERS
        .iter()
        .any(|secret| name.trim().eq_ignore_ascii_case(secret))
}

/// Form decoding of a parameter name: `+` is a space, `%XX` a byte.
fn decode(name: &str) -> Cow<'_, str> {
    if !name.contains(['%', '+']) {
        return Cow::Borrowed(name);
    }
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = bytes
            .get(at + 1..at + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[at], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                at += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                at += 1;
            }
            (byte, _) => {
                out.push(byte);
                at += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    const JWT: &str = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";

    #[test]
    fn every_secret_parameter_is_redacted_whatever_its_case() {
        for name in [
            "token",
            "TOKEN",
            "Token",
            "access_token",
            "Refresh_Token",
            "key",
            "KEY",
            "api_key",
            "Api_Key",
        ] {
            let query = format!("{name}={JWT}");
            assert_eq!(redact_query(&query), format!("{name}=[redacted]"), "{name}");
        }
    }

    #[test]
    fn other_parameters_are_kept_as_they_were() {
        let query = "page_size=20&token=abc&page_token=next%2Bpage&state=open";
        assert_eq!(
            redact_query(query),
            "page_size=20&token=[redacted]&page_token=next%2Bpage&state=open"
        );
        assert!(matches!(
            redact_query("page_token=x&keys=1&tokenizer=2"),
            Cow::Borrowed(_)
        ));
        assert_eq!(redact_query(""), "");
    }

    #[test]
    fn encoded_and_repeated_names_are_caught() {
        assert_eq!(redact_query("%74oken=s3cret"), "%74oken=[redacted]");
        assert_eq!(redact_query("api%5Fkey=s3cret"), "api%5Fkey=[redacted]");
        assert_eq!(redact_query("+token=s3cret"), "+token=[redacted]");
        assert_eq!(
            redact_query("token=one&token=two&x=1"),
            "token=[redacted]&token=[redacted]&x=1"
        );
        // The whole value goes, `=` and `;` inside it included.
        assert_eq!(redact_query("token=a=b;c&x=1"), "token=[redacted]&x=1");
        assert_eq!(redact_query("token="), "token=[redacted]");
        // A name alone carries no value; a bad escape stays as it is.
        assert_eq!(redact_query("token&x=1"), "token&x=1");
        assert_eq!(redact_query("%zzoken=1&%=2"), "%zzoken=1&%=2");
        assert_eq!(redact_query("%E2%9C%93=1"), "%E2%9C%93=1");
    }

    #[test]
    fn the_request_line_keeps_its_shape_without_the_token() {
        let req = TestRequest::get()
            .uri(&format!("/api/v1/live?token={JWT}"))
            .to_srv_request();
        let line = request_line(&req);
        assert_eq!(line, "GET /api/v1/live?token=[redacted] HTTP/1.1");
        assert!(!line.contains(JWT));
        let req = TestRequest::get().uri("/api/v1/sms").to_srv_request();
        assert_eq!(request_line(&req), "GET /api/v1/sms HTTP/1.1");
    }
}
