//! Delivery receipts, as SMSCs send them in deliver_sm: the id and state
//! in the receipted_message_id and message_state TLVs when present (SMPP
//! 3.4 allows them, most SMSCs send them), else read from the text of
//! appendix B (`id:… stat:… err:…`).

use rusmpp::{pdus::DeliverSm, tlvs::TlvValue, values::MessageState};

use crate::domain::Status;

/// esm_class message type bits of an SMSC delivery receipt.
const RECEIPT_TYPE: u8 = 0x04;
const TYPE_MASK: u8 = 0x3c;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The id submit_sm_resp gave the part.
    pub part_id: String,
    pub status: Status,
    /// The SMSC's word for it (DELIVRD, UNDELIV, …).
    pub provider_status: String,
    /// `smpp_<err>` when the part was not delivered and the SMSC said why.
    pub error_code: Option<String>,
}

/// The receipt a deliver_sm carries; `None` for anything else (a message
/// from a handset, a receipt without an id).
pub fn read(deliver: &DeliverSm) -> Option<Receipt> {
    if u8::from(deliver.esm_class) & TYPE_MASK != RECEIPT_TYPE {
        return None;
    }
    let text = String::from_utf8_lossy(deliver.short_message().as_ref()).into_owned();
    let mut tlv_id = None;
    let mut tlv_state = None;
    for tlv in deliver.tlvs() {
        match tlv.value() {
            Some(TlvValue::ReceiptedMessageId(id)) => tlv_id = Some(id.as_str().to_string()),
            Some(TlvValue::MessageState(state)) => tlv_state = Some(*state),
            _ => {}
        }
    }
    let part_id = tlv_id
        .or_else(|| field(&text, "id:").map(str::to_string))
        .filter(|id| !id.is_empty())?;
    let stat = field(&text, "stat:")
        .unwrap_or_default()
        .to_ascii_uppercase();
    let (status, word) = match tlv_state {
        Some(state) => of_state(state),
        None => of_stat(&stat),
    };
    let provider_status = if stat.is_empty() {
        word.to_string()
    } else {
        stat
    };
    let error_code = match field(&text, "err:") {
        Some(err) if status != Status::Delivered && err.bytes().any(|b| b != b'0') => {
            Some(format!("smpp_{}", err.to_ascii_lowercase()))
        }
        _ => None,
    };
    Some(Receipt {
        part_id,
        status,
        provider_status,
        error_code,
    })
}

/// The value after `name` up to the next space.
fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let lower = text.to_ascii_lowercase();
    let at = lower.find(name)? + name.len();
    text[at..].split_whitespace().next().or(Some(""))
}

fn of_state(state: MessageState) -> (Status, &'static str) {
    match state {
        MessageState::Delivered => (Status::Delivered, "DELIVRD"),
        MessageState::Expired => (Status::Undelivered, "EXPIRED"),
        MessageState::Deleted => (Status::Undelivered, "DELETED"),
        MessageState::Undeliverable => (Status::Undelivered, "UNDELIV"),
        MessageState::Unknown => (Status::Undelivered, "UNKNOWN"),
        MessageState::Rejected => (Status::Failed, "REJECTD"),
        MessageState::Skipped => (Status::Failed, "SKIPPED"),
        MessageState::Accepted => (Status::Sent, "ACCEPTD"),
        MessageState::Scheduled | MessageState::Enroute | MessageState::Other(_) => {
            (Status::Sent, "ENROUTE")
        }
    }
}

fn of_stat(stat: &str) -> (Status, &'static str) {
    match stat {
        "DELIVRD" => (Status::Delivered, "DELIVRD"),
        "EXPIRED" => (Status::Undelivered, "EXPIRED"),
        "DELETED" => (Status::Undelivered, "DELETED"),
        "UNDELIV" => (Status::Undelivered, "UNDELIV"),
        "UNKNOWN" => (Status::Undelivered, "UNKNOWN"),
        "REJECTD" => (Status::Failed, "REJECTD"),
        "ACCEPTD" => (Status::Sent, "ACCEPTD"),
        _ => (Status::Sent, "ENROUTE"),
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use rusmpp::{
        tlvs::MessageDeliveryRequestTlvValue,
        types::{COctetString, OctetString},
        values::EsmClass,
    };

    use super::*;

    fn deliver(esm: u8, text: &str, tlvs: Vec<MessageDeliveryRequestTlvValue>) -> DeliverSm {
        let mut deliver = DeliverSm::builder()
            .source_addr(COctetString::from_str("447700900123").unwrap())
            .destination_addr(COctetString::from_str("smsops").unwrap())
            .esm_class(EsmClass::from(esm))
            .short_message(OctetString::from_str(text).unwrap())
            .build();
        for tlv in tlvs {
            deliver.push_tlv(tlv);
        }
        deliver
    }

    #[test]
    fn tlvs_win_over_the_text() {
        let text = "id:1509949441 sub:001 dlvrd:000 submit date:2612031200 done date:2612031200 stat:UNDELIV err:003 text:";
        let receipt = read(&deliver(
            0x04,
            text,
            vec![
                MessageDeliveryRequestTlvValue::ReceiptedMessageId(
                    COctetString::from_str("5a000001").unwrap(),
                ),
                MessageDeliveryRequestTlvValue::MessageState(MessageState::Undeliverable),
            ],
        ));
        assert_eq!(
            receipt,
            Some(Receipt {
                part_id: "5a000001".into(),
                status: Status::Undelivered,
                provider_status: "UNDELIV".into(),
                error_code: Some("smpp_003".into()),
            })
        );
    }

    #[test]
    fn the_text_alone_is_enough() {
        let text = "id:ab12 sub:001 dlvrd:001 submit date:2612031200 done date:2612031200 stat:DELIVRD err:000 text:hello";
        let receipt = read(&deliver(0x04, text, Vec::new())).expect("a receipt");
        assert_eq!(receipt.part_id, "ab12");
        assert_eq!(receipt.status, Status::Delivered);
        assert_eq!(receipt.error_code, None);
        let rejected = read(&deliver(0x04, "id:ab13 stat:REJECTD err:00b", Vec::new()));
        assert_eq!(
            rejected.map(|r| (r.status, r.error_code)),
            Some((Status::Failed, Some("smpp_00b".into())))
        );
    }

    #[test]
    fn a_message_from_a_handset_is_no_receipt() {
        assert_eq!(read(&deliver(0x00, "id:1 stat:DELIVRD", Vec::new())), None);
        assert_eq!(read(&deliver(0x04, "stat:DELIVRD", Vec::new())), None);
    }
}
