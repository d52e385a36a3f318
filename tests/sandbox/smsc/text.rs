//! A submit_sm's text: its user data header, if any, and its characters
//! in the data coding it names (GSM 7-bit one septet a byte, as SMPP
//! carries it; UCS-2 as UTF-16 big-endian; Latin-1).

use crate::twilio::GSM_BASIC;

/// The extension table, by the septet that follows the escape (0x1B).
const EXTENSION: [(u8, char); 10] = [
    (0x0a, '\u{c}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2f, '\\'),
    (0x3c, '['),
    (0x3d, '~'),
    (0x3e, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// Splits off the user data header when `has_udh`: returns the
/// concatenation element (reference, parts, part number) if it holds one
/// (8-bit reference 0x00 or 16-bit 0x08), and the text's bytes.
pub fn split_udh(bytes: &[u8], has_udh: bool) -> (Option<(u16, u8, u8)>, &[u8]) {
    if !has_udh || bytes.is_empty() {
        return (None, bytes);
    }
    let length = usize::from(bytes[0]);
    let Some(header) = bytes.get(1..=length) else {
        return (None, bytes);
    };
    let mut concat = None;
    let mut at = 0;
    while at + 2 <= header.len() {
        let (id, size) = (header[at], usize::from(header[at + 1]));
        let Some(value) = header.get(at + 2..at + 2 + size) else {
            break;
        };
        concat = match (id, value) {
            (0x00, [reference, parts, part]) => Some((u16::from(*reference), *parts, *part)),
            (0x08, [high, low, parts, part]) => {
                Some((u16::from_be_bytes([*high, *low]), *parts, *part))
            }
            _ => concat,
        };
        at += 2 + size;
    }
    (concat, &bytes[1 + length..])
}

pub fn decode(bytes: &[u8], data_coding: u8) -> String {
    match data_coding {
        0x08 => {
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|pair| u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        0x03 => bytes.iter().map(|&b| char::from(b)).collect(),
        _ => gsm(bytes),
    }
}

fn gsm(septets: &[u8]) -> String {
    let basic: Vec<char> = GSM_BASIC.chars().collect();
    let mut text = String::new();
    let mut escaped = false;
    for &septet in septets {
        if escaped {
            escaped = false;
            let extension = EXTENSION.iter().find(|(code, _)| *code == septet);
            text.push(extension.map_or(' ', |(_, c)| *c));
        } else if septet == 0x1b {
            escaped = true;
        } else {
            text.push(basic.get(usize::from(septet)).copied().unwrap_or('?'));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_read_back_in_each_coding() {
        assert_eq!(decode(&[0x48, 0x69, 0x00, 0x1b, 0x65], 0x00), "Hi@€");
        let ucs2: Vec<u8> = "я😀".encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(decode(&ucs2, 0x08), "я😀");
        assert_eq!(decode(&[0xe9], 0x03), "é");
    }

    #[test]
    fn a_concatenation_header_is_read_off() {
        let part = [0x05, 0x00, 0x03, 0x2a, 0x05, 0x02, 0x41];
        assert_eq!(split_udh(&part, true), (Some((42, 5, 2)), &[0x41][..]));
        let wide = [0x06, 0x08, 0x04, 0x01, 0x02, 0x03, 0x01, 0x41];
        assert_eq!(split_udh(&wide, true), (Some((258, 3, 1)), &[0x41][..]));
        assert_eq!(split_udh(&[0x41], false), (None, &[0x41][..]));
    }
}
