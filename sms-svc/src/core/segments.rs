//! How many SMS parts a body takes, as a carrier counts them (3GPP TS 23.038
//! and 23.040): GSM 7-bit when every character is in the GSM 03.38 basic
//! table or its extension (which costs two septets: escape and character),
//! UCS-2 otherwise, counted in UTF-16 units (an emoji is two). One part
//! holds 160 septets or 70 units; a concatenated part, whose header takes
//! room, 153 or 67, and never splits an escape pair or a surrogate pair.

/// The basic table's characters beyond the printable ASCII it shares.
const BASIC_EXTRA: &str = "£¥èéùìòÇØøÅåΔΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà\n\r";
/// Printable ASCII the basic table lacks: in the extension, or (`) nowhere.
const ASCII_NOT_BASIC: &str = "[\\]^`{|}~";
/// The extension table: an escape septet and then the character.
const EXTENSION: &str = "^{}\\[~]|€\u{c}";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gsm7 => "GSM-7",
            Self::Ucs2 => "UCS-2",
        }
    }
}

/// What a body costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    pub encoding: Encoding,
    /// Unicode scalar values, as a person counts characters.
    pub chars: u32,
    /// Septets in GSM 7-bit, UTF-16 units in UCS-2.
    pub units: u32,
    pub parts: u32,
    /// Units one part holds: the whole message's room when it fits one,
    /// a concatenated part's otherwise.
    pub per_part: u32,
    /// The characters that forced UCS-2, each once, in order of appearance.
    pub ucs2_because: Vec<char>,
}

/// Septets a character takes in GSM 7-bit, or `None` outside the alphabet.
fn septets(c: char) -> Option<u32> {
    if EXTENSION.contains(c) {
        return Some(2);
    }
    let basic = (c.is_ascii_graphic() || c == ' ') && !ASCII_NOT_BASIC.contains(c)
        || BASIC_EXTRA.contains(c);
    basic.then_some(1)
}

/// Units, parts and room per part for units of these widths: one part if
/// they all fit `single`, else parts of `multi`, a unit never split
/// between two.
fn parts(widths: impl Iterator<Item = u32> + Clone, single: u32, multi: u32) -> (u32, u32, u32) {
    let units = widths.clone().sum::<u32>();
    if units <= single {
        return (units, 1, single);
    }
    let (mut parts, mut used) = (1, 0);
    for width in widths {
        if used + width > multi {
            parts += 1;
            used = 0;
        }
        used += width;
    }
    (units, parts, multi)
}

/// What a body one could send costs; a body one could not is refused as
/// a send would refuse it.
pub fn preview(body: &str) -> Result<Count, super::SmsError> {
    super::validate::checked(body)?;
    Ok(count(body))
}

pub fn count(body: &str) -> Count {
    let chars = body.chars().count() as u32;
    let mut ucs2_because: Vec<char> = Vec::new();
    for c in body.chars() {
        if septets(c).is_none() && !ucs2_because.contains(&c) {
            ucs2_because.push(c);
        }
    }
    if ucs2_because.is_empty() {
        let widths = body.chars().map(|c| septets(c).unwrap_or(1));
        let (units, parts, per_part) = parts(widths, 160, 153);
        return Count {
            encoding: Encoding::Gsm7,
            chars,
            units,
            parts,
            per_part,
            ucs2_because,
        };
    }
    let widths = body.chars().map(|c| c.len_utf16() as u32);
    let (units, parts, per_part) = parts(widths, 70, 67);
    Count {
        encoding: Encoding::Ucs2,
        chars,
        units,
        parts,
        per_part,
        ucs2_because,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts_of(body: &str) -> (Encoding, u32) {
        let count = count(body);
        (count.encoding, count.parts)
    }

    #[test]
    fn the_cases_the_old_counter_got_wrong() {
        // An extension character is two septets: 320 septets, three parts.
        assert_eq!(parts_of(&"{".repeat(160)), (Encoding::Gsm7, 3));
        // An emoji is two UTF-16 units: 72 units, two parts.
        assert_eq!(parts_of(&"😀".repeat(36)), (Encoding::Ucs2, 2));
        // A backtick is in neither GSM table: UCS-2, 151 units, three parts.
        assert_eq!(
            parts_of(&format!("{}`", "a".repeat(150))),
            (Encoding::Ucs2, 3)
        );
        // ¡ is in the basic table: 180 septets, two parts.
        assert_eq!(
            parts_of(&format!("¡{}", "a".repeat(179))),
            (Encoding::Gsm7, 2)
        );
    }

    #[test]
    fn part_boundaries() {
        assert_eq!(parts_of(&"a".repeat(160)), (Encoding::Gsm7, 1));
        assert_eq!(parts_of(&"a".repeat(161)), (Encoding::Gsm7, 2));
        assert_eq!(parts_of(&"a".repeat(306)), (Encoding::Gsm7, 2));
        assert_eq!(parts_of(&"a".repeat(307)), (Encoding::Gsm7, 3));
        assert_eq!(parts_of(&"€".repeat(80)), (Encoding::Gsm7, 1));
        assert_eq!(parts_of(&"я".repeat(70)), (Encoding::Ucs2, 1));
        assert_eq!(parts_of(&"я".repeat(71)), (Encoding::Ucs2, 2));
        assert_eq!(parts_of(&"я".repeat(300)), (Encoding::Ucs2, 5));
        // 153 septets with an escape pair on the boundary: the pair moves on.
        let body = format!("{}{}{}", "a".repeat(152), "€", "a".repeat(10));
        assert_eq!(parts_of(&body), (Encoding::Gsm7, 2));
        let body = format!("{}{}{}", "a".repeat(152), "€", "a".repeat(152));
        assert_eq!(parts_of(&body), (Encoding::Gsm7, 3));
    }

    #[test]
    fn the_characters_that_forced_ucs2_are_named_once() {
        let count = count("Hi 😀 and 😀, `ok`");
        assert_eq!(count.ucs2_because, ['😀', '`']);
        assert_eq!(count.chars, 16);
        assert_eq!((count.units, count.per_part), (18, 70));
        let long = super::count(&"{".repeat(160));
        assert_eq!((long.units, long.parts, long.per_part), (320, 3, 153));
        assert!(
            super::count("@£$¥ _!\"#¤%&'()*+,-./:;<=>?¡§¿\n")
                .ucs2_because
                .is_empty()
        );
    }
}
