//! A Bot API method's parameters, taken every way Telegram takes them
//! ("Making requests" in its docs): the URL's query string, and a body
//! that is `application/json`, `application/x-www-form-urlencoded` or
//! `multipart/form-data`. Body parameters win over the query's.

use actix_web::{HttpMessage, HttpRequest};
use serde_json::{Map, Value};

pub fn read(req: &HttpRequest, body: &[u8]) -> Result<Map<String, Value>, String> {
    let mut params = Map::new();
    let query: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
        .map_err(|_| "Bad Request: can't parse the query string".to_string())?;
    extend(&mut params, query);
    if body.is_empty() {
        return Ok(params);
    }
    let mime = req
        .mime_type()
        .map_err(|_| "Bad Request: bad Content-Type".to_string())?;
    let essence = mime.as_ref().map(|m| m.essence_str().to_string());
    match essence.as_deref() {
        Some("application/json") => match serde_json::from_slice(body) {
            Ok(Value::Object(fields)) => params.extend(fields),
            _ => return Err("Bad Request: can't parse JSON object".into()),
        },
        Some("application/x-www-form-urlencoded") | None => {
            let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
                .map_err(|_| "Bad Request: can't parse the request body".to_string())?;
            extend(&mut params, form);
        }
        Some("multipart/form-data") => {
            let boundary = mime
                .as_ref()
                .and_then(|m| m.get_param("boundary"))
                .map(|b| b.as_str().to_string())
                .ok_or_else(|| "Bad Request: multipart without a boundary".to_string())?;
            extend(&mut params, multipart(body, &boundary)?);
        }
        Some(other) => return Err(format!("Bad Request: unsupported Content-Type {other}")),
    }
    Ok(params)
}

fn extend(params: &mut Map<String, Value>, pairs: Vec<(String, String)>) {
    for (name, value) in pairs {
        params.insert(name, Value::String(value));
    }
}

/// The text fields of a `multipart/form-data` body (RFC 7578): each part
/// between `--boundary` lines, its name in `Content-Disposition`.
fn multipart(body: &[u8], boundary: &str) -> Result<Vec<(String, String)>, String> {
    let bad = || "Bad Request: can't parse multipart body".to_string();
    let text = std::str::from_utf8(body).map_err(|_| bad())?;
    let delimiter = format!("--{boundary}");
    let mut fields = Vec::new();
    let mut parts = text.split(delimiter.as_str());
    if !parts
        .next()
        .is_some_and(|preamble| preamble.trim().is_empty())
    {
        return Err(bad());
    }
    for part in parts {
        if part.starts_with("--") {
            return Ok(fields);
        }
        let part = part.strip_prefix("\r\n").ok_or_else(bad)?;
        let (head, value) = part.split_once("\r\n\r\n").ok_or_else(bad)?;
        let name = head
            .lines()
            .filter(|line| {
                line.to_ascii_lowercase()
                    .starts_with("content-disposition:")
            })
            .find_map(|line| {
                let (_, rest) = line.split_once("name=\"")?;
                rest.split_once('"').map(|(name, _)| name.to_string())
            })
            .ok_or_else(bad)?;
        fields.push((
            name,
            value.strip_suffix("\r\n").unwrap_or(value).to_string(),
        ));
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::multipart;

    #[test]
    fn multipart_fields_are_read_by_name() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n42\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"text\"\r\n\
                    Content-Type: text/plain; charset=utf-8\r\n\r\nline one\r\nline two\r\n--XyZ--\r\n";
        let fields = multipart(body.as_bytes(), "XyZ").unwrap();
        assert_eq!(
            fields,
            [
                ("chat_id".to_string(), "42".to_string()),
                ("text".to_string(), "line one\r\nline two".to_string())
            ]
        );
        assert!(multipart(b"--XyZ\r\nno head", "XyZ").is_err());
        assert!(multipart(b"garbage", "XyZ").is_err());
    }
}
