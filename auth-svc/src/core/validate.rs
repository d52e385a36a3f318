//! Input rules for sign-up.

use super::AuthError;

pub const MIN_PASSWORD_CHARS: usize = 10;
/// Bounds the work one sign-in can ask of argon2.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The canonical (trimmed, lower-case) form of a valid email address.
pub fn email(raw: &str) -> Result<String, AuthError> {
    let email = raw.trim().to_lowercase();
    let bad = |why: &str| AuthError::InvalidEmail(why.to_string());
    if email.is_empty() {
        return Err(bad("email is required"));
    }
    if email.len() > 254 {
        return Err(bad("email is longer than 254 characters"));
    }
    let (local, domain) = email
        .rsplit_once('@')
        .ok_or_else(|| bad("email needs an @"))?;
    if local.is_empty() || local.len() > 64 || local.contains('@') {
        return Err(bad("email has an invalid local part"));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("email must not contain spaces"));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let valid_label = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    if labels.len() < 2 || !labels.iter().all(valid_label) {
        return Err(bad("email has an invalid domain"));
    }
    Ok(email)
}

pub fn password(raw: &str) -> Result<(), AuthError> {
    if raw.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthError::InvalidPassword(format!(
            "password must be at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if raw.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::InvalidPassword(format!(
            "password must be at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(email("  Alice@Example.COM ").unwrap(), "alice@example.com");
        assert!(email("bj\u{f6}rn@b\u{fc}cher.de").is_ok());
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@example",
            "a b@example.com",
            "a@-x.com",
            "a@x..com",
        ] {
            assert!(email(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn passwords() {
        assert!(password("123456789").is_err());
        assert!(password("1234567890").is_ok());
        assert!(password("\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}").is_ok());
        assert!(password(&"x".repeat(1025)).is_err());
    }
}
