//! A body as submit_sm carries it: GSM 7-bit, one septet a byte, when
//! every character is in GSM 03.38 (data_coding 0), UCS-2 as UTF-16
//! big-endian otherwise (data_coding 8). Too long for one SMS, it goes in
//! parts that each start with a concatenation header (UDH 05 00 03: our
//! reference, the parts, this part's number), split exactly where
//! [`crate::core::segments::count`] counts them, so the parts billed are
//! the parts previewed.

use crate::core::segments::{self, Encoding};

/// The basic table, by septet (0x1B is the escape to the extension).
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{1b}ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
    ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table: the septet after the escape, by character.
const EXTENSION: [(char, u8); 10] = [
    ('\u{c}', 0x0a),
    ('^', 0x14),
    ('{', 0x28),
    ('}', 0x29),
    ('\\', 0x2f),
    ('[', 0x3c),
    ('~', 0x3d),
    (']', 0x3e),
    ('|', 0x40),
    ('€', 0x65),
];
const ESCAPE: u8 = 0x1b;

pub const DATA_CODING_GSM7: u8 = 0x00;
pub const DATA_CODING_UCS2: u8 = 0x08;
/// esm_class with UDHI set: the short message starts with a header.
pub const ESM_UDHI: u8 = 0x40;

/// What submit_sm sends for a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub data_coding: u8,
    /// Each part's short message, its header first when there are several.
    pub parts: Vec<Vec<u8>>,
}

impl Encoded {
    pub fn esm_class(&self) -> u8 {
        if self.parts.len() > 1 { ESM_UDHI } else { 0 }
    }
}

/// The bytes of each character, then grouped into parts as counted.
pub fn encode(body: &str, reference: u8) -> Encoded {
    let count = segments::count(body);
    let (data_coding, units): (u8, Vec<Vec<u8>>) = match count.encoding {
        Encoding::Gsm7 => (DATA_CODING_GSM7, body.chars().map(septets).collect()),
        Encoding::Ucs2 => (
            DATA_CODING_UCS2,
            body.chars()
                .map(|c| {
                    let mut units = [0u16; 2];
                    c.encode_utf16(&mut units)
                        .iter()
                        .flat_map(|unit| unit.to_be_bytes())
                        .collect()
                })
                .collect(),
        ),
    };
    // A unit is a septet (one byte) or a UTF-16 unit (two).
    let width = if data_coding == DATA_CODING_UCS2 {
        2
    } else {
        1
    };
    if count.parts <= 1 {
        return Encoded {
            data_coding,
            parts: vec![units.concat()],
        };
    }
    let room = count.per_part as usize * width;
    let mut texts: Vec<Vec<u8>> = vec![Vec::new()];
    for unit in units {
        let full = texts
            .last()
            .is_some_and(|text| text.len() + unit.len() > room);
        if full {
            texts.push(Vec::new());
        }
        if let Some(text) = texts.last_mut() {
            text.extend_from_slice(&unit);
        }
    }
    let total = u8::try_from(texts.len()).unwrap_or(u8::MAX);
    let parts = texts
        .into_iter()
        .zip(1u8..)
        .map(|(text, number)| {
            let mut part = vec![0x05, 0x00, 0x03, reference, total, number];
            part.extend_from_slice(&text);
            part
        })
        .collect();
    Encoded { data_coding, parts }
}

/// A GSM character's septets: its basic code, or the escape and its
/// extension code.
fn septets(c: char) -> Vec<u8> {
    if let Some((_, code)) = EXTENSION.iter().find(|(ext, _)| *ext == c) {
        return vec![ESCAPE, *code];
    }
    let code = BASIC
        .chars()
        .position(|basic| basic == c && c != '\u{1b}')
        .and_then(|at| u8::try_from(at).ok())
        // Counted as GSM 7-bit, so always found; '?' if the tables ever disagree.
        .unwrap_or(0x3f);
    vec![code]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_gsm_text_is_one_part_one_byte_a_septet() {
        let encoded = encode("Hi @ 10€", 1);
        assert_eq!(encoded.data_coding, DATA_CODING_GSM7);
        assert_eq!(
            encoded.parts,
            [vec![0x48, 0x69, 0x20, 0x00, 0x20, 0x31, 0x30, 0x1b, 0x65]]
        );
        assert_eq!(encoded.esm_class(), 0);
    }

    #[test]
    fn long_ucs2_text_goes_in_headed_parts_as_counted() {
        let body = "ж".repeat(300);
        let encoded = encode(&body, 7);
        assert_eq!(encoded.data_coding, DATA_CODING_UCS2);
        assert_eq!(encoded.parts.len(), 5);
        assert_eq!(encoded.esm_class(), ESM_UDHI);
        assert_eq!(&encoded.parts[0][..6], &[0x05, 0x00, 0x03, 7, 5, 1]);
        assert_eq!(&encoded.parts[4][..6], &[0x05, 0x00, 0x03, 7, 5, 5]);
        assert_eq!(encoded.parts[0].len(), 6 + 67 * 2);
        assert_eq!(&encoded.parts[0][6..8], &[0x04, 0x36]);
    }

    #[test]
    fn parts_split_no_escape_or_surrogate_pair_and_match_the_count() {
        let bodies = [
            "{".repeat(160),
            "a".repeat(152) + "€€",
            "😀".repeat(36),
            "x".repeat(66) + "😀" + &"y".repeat(10),
            "a".repeat(160),
            "a".repeat(161),
        ];
        for body in bodies {
            let encoded = encode(&body, 1);
            let count = segments::count(&body);
            assert_eq!(encoded.parts.len() as u32, count.parts, "{body}");
            for part in &encoded.parts {
                let text = if encoded.parts.len() > 1 {
                    &part[6..]
                } else {
                    &part[..]
                };
                if encoded.data_coding == DATA_CODING_GSM7 {
                    assert_ne!(text.last(), Some(&ESCAPE), "{body}");
                } else {
                    let last = u16::from_be_bytes([text[text.len() - 2], text[text.len() - 1]]);
                    assert!(!(0xd800..0xdc00).contains(&last), "{body}");
                }
            }
        }
    }
}
