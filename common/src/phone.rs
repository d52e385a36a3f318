//! Whether a number belongs to a country, by its calling code (ITU-T
//! E.164), from libphonenumber's metadata. Calling codes are prefix-free,
//! so the first one to three digits that name a code are the number's.
//! Codes shared by several countries (+1, +44, +7) accept each of them:
//! a +1 number belongs to US and CA alike.

use phonenumber::metadata::DATABASE;

/// The country calling code of an ISO 3166-1 alpha-2 country, if it has one.
pub fn calling_code(country: &str) -> Option<u16> {
    DATABASE
        .by_id(&country.trim().to_ascii_uppercase())
        .map(|metadata| metadata.country_code())
}

/// The calling code an E.164 number (`+` and digits) starts with.
pub fn calling_code_of(number: &str) -> Option<u16> {
    let digits = number.trim().strip_prefix('+')?;
    (1..=3)
        .filter_map(|length| digits.get(..length)?.parse::<u16>().ok())
        .find(|code| DATABASE.region(code).is_some())
}

/// Whether `number` is dialled under `country`'s calling code. A country
/// the metadata does not know accepts nothing.
pub fn in_country(country: &str, number: &str) -> bool {
    calling_code(country).is_some_and(|code| calling_code_of(number) == Some(code))
}

/// Loads the metadata now, not on the first message sent.
pub fn warm_up() {
    let _ = calling_code("GB");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_belong_to_the_countries_of_their_calling_code() {
        assert_eq!(calling_code("gb"), Some(44));
        assert_eq!(calling_code_of("+447700900123"), Some(44));
        assert!(in_country("GB", "+447700900123"));
        assert!(!in_country("GB", "+15005550006"));
        // Shared codes: every country under them.
        assert!(in_country("US", "+12025550123"));
        assert!(in_country("CA", "+16135550123"));
        assert!(in_country("JE", "+447797123456"));
        assert!(in_country("KZ", "+77011234567"));
        // One, two and three digit codes, prefix-free.
        assert_eq!(calling_code_of("+33612345678"), Some(33));
        assert_eq!(calling_code_of("+351912345678"), Some(351));
        assert_eq!(calling_code_of("+2348031234567"), Some(234));
        assert!(in_country("NG", "+2348031234567"));
        assert!(!in_country("KE", "+2348031234567"));
        // Unknown countries and unassigned codes accept nothing.
        assert!(!in_country("XX", "+447700900123"));
        assert_eq!(calling_code_of("+999123456"), None);
        assert_eq!(calling_code_of("447700900123"), None);
    }
}
