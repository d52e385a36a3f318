//! Input rules for a message.

use smsops_common::phone;

use super::SmsError;
use crate::domain::Pair;

pub const MAX_BODY_CHARS: usize = 1600;
pub const MAX_IDEMPOTENCY_KEY: usize = 128;

/// A valid E.164 number: '+', a non-zero digit, 1 to 14 more digits.
pub fn phone(raw: &str) -> Result<String, SmsError> {
    let number = raw.trim();
    let digits = number.strip_prefix('+').unwrap_or("");
    let valid = (2..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0');
    if !valid {
        return Err(SmsError::InvalidPhone(format!(
            "to must be an E.164 number like +447700900123, got {:?}",
            number.chars().take(20).collect::<String>()
        )));
    }
    Ok(number.to_string())
}

/// The pair, if the number is dialled under its country's calling code.
pub fn in_country(to: &str, pair: Pair) -> Result<Pair, SmsError> {
    if phone::in_country(&pair.country, to) {
        return Ok(pair);
    }
    let theirs = phone::calling_code_of(to).map_or("no known".into(), |code| format!("+{code}"));
    Err(SmsError::NumberNotInCountry(
        match phone::calling_code(&pair.country) {
            Some(code) => format!(
                "to has calling code {theirs}, not +{code} of the pair's country {}",
                pair.country
            ),
            None => format!("the pair's country {} has no calling code", pair.country),
        },
    ))
}

/// The body's length in characters and its number of SMS segments.
pub fn body(body: &str) -> Result<(u32, u32), SmsError> {
    checked(body)?;
    Ok((
        body.chars().count() as u32,
        super::segments::count(body).parts,
    ))
}

/// A body one could send: not empty nor all white space, at most
/// [`MAX_BODY_CHARS`] characters.
pub fn checked(body: &str) -> Result<(), SmsError> {
    let chars = body.chars().count();
    if chars == 0 || body.trim().is_empty() {
        return Err(SmsError::InvalidBody("body must not be empty".into()));
    }
    if chars > MAX_BODY_CHARS {
        return Err(SmsError::InvalidBody(format!(
            "body must be at most {MAX_BODY_CHARS} characters, got {chars}"
        )));
    }
    Ok(())
}

pub fn idempotency_key(raw: &str) -> Result<Option<String>, SmsError> {
    let key = raw.trim();
    if key.is_empty() {
        return Ok(None);
    }
    if key.len() > MAX_IDEMPOTENCY_KEY || key.chars().any(char::is_control) {
        return Err(SmsError::InvalidArgument(format!(
            "idempotency_key must be at most {MAX_IDEMPOTENCY_KEY} printable bytes"
        )));
    }
    Ok(Some(key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones() {
        assert_eq!(phone(" +447700900123 ").unwrap(), "+447700900123");
        for bad in [
            "",
            "447700900123",
            "+0447700",
            "+1",
            "+1234567890123456",
            "+44 7700 900123",
            "+44abc",
        ] {
            assert!(phone(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bodies_and_segments() {
        assert_eq!(body("hello").unwrap(), (5, 1));
        assert_eq!(body(&"a".repeat(160)).unwrap(), (160, 1));
        assert_eq!(body(&"a".repeat(161)).unwrap(), (161, 2));
        assert_eq!(body(&"\u{44f}".repeat(71)).unwrap(), (71, 2));
        assert_eq!(body(&"{".repeat(160)).unwrap(), (160, 3));
        assert_eq!(body(&"a".repeat(1600)).unwrap().0, 1600);
        assert!(body("").is_err());
        assert!(body("   ").is_err());
        assert!(body(&"a".repeat(1601)).is_err());
    }
}
