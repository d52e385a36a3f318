//! The sandbox's SMSC, met as an SMPP 3.4 client meets one: binds with
//! credentials, submit_sm answered with message ids, delivery receipts in
//! the text and TLVs SMSCs use, concatenated parts, and the fault switches
//! (throttling, unbinding, refused binds, silent receipts).

use std::{str::FromStr, time::Duration};

use futures::{SinkExt, StreamExt};
use rusmpp::{
    Command, CommandId, CommandStatus, Pdu,
    pdus::{BindTransceiver, DeliverSm, DeliverSmResp, SubmitSm},
    tlvs::TlvValue,
    tokio_codec::CommandCodec,
    types::{COctetString, OctetString},
    values::{DataCoding, EsmClass, InterfaceVersion, RegisteredDelivery},
};
use serde_json::json;
use smsops_tests::sandbox::{SMPP_PASSWORD, SMPP_SYSTEM_ID, Sandbox};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// A bare SMPP client: requests in order, receipts kept aside as they come.
struct Esme {
    framed: Framed<TcpStream, CommandCodec>,
    sequence: u32,
    receipts: Vec<DeliverSm>,
    unbound: bool,
}

impl Esme {
    async fn connect(sandbox: &Sandbox) -> Self {
        let socket = TcpStream::connect(&sandbox.smsc_addr).await.unwrap();
        Self {
            framed: Framed::new(socket, CommandCodec::new()),
            sequence: 0,
            receipts: Vec::new(),
            unbound: false,
        }
    }

    async fn request(&mut self, pdu: impl Into<Pdu>) -> Command {
        self.sequence += 1;
        let sequence = self.sequence;
        self.framed
            .send(Command::new(CommandStatus::EsmeRok, sequence, pdu))
            .await
            .unwrap();
        loop {
            let command = self.next().await.expect("an answer");
            if command.sequence_number() == sequence {
                return command;
            }
        }
    }

    /// The next command, answering what the SMSC asks of us on the way.
    async fn next(&mut self) -> Option<Command> {
        let wait = tokio::time::timeout(Duration::from_secs(5), self.framed.next());
        let command = wait.await.ok()??.ok()?;
        match command.pdu() {
            Some(Pdu::DeliverSm(receipt)) => {
                self.receipts.push(receipt.clone());
                let answer = Command::new(
                    CommandStatus::EsmeRok,
                    command.sequence_number(),
                    DeliverSmResp::default(),
                );
                self.framed.send(answer).await.ok()?;
            }
            Some(Pdu::Unbind) => {
                self.unbound = true;
                let answer = Command::new(
                    CommandStatus::EsmeRok,
                    command.sequence_number(),
                    Pdu::UnbindResp,
                );
                self.framed.send(answer).await.ok()?;
            }
            _ => {}
        }
        Some(command)
    }

    async fn bind(&mut self, password: &str) -> CommandStatus {
        let bind = BindTransceiver::builder()
            .system_id(COctetString::from_str(SMPP_SYSTEM_ID).unwrap())
            .password(COctetString::from_str(password).unwrap())
            .interface_version(InterfaceVersion::Smpp3_4)
            .build();
        self.request(bind).await.status()
    }

    /// Submits one part; answers its status and message id.
    async fn submit(
        &mut self,
        to: &str,
        coding: DataCoding,
        esm: u8,
        bytes: Vec<u8>,
    ) -> (CommandStatus, String) {
        let submit = SubmitSm::builder()
            .source_addr(COctetString::from_str("smsops").unwrap())
            .destination_addr(COctetString::from_str(to).unwrap())
            .esm_class(EsmClass::from(esm))
            .registered_delivery(RegisteredDelivery::from(1u8))
            .data_coding(coding)
            .short_message(OctetString::from_vec(bytes).unwrap())
            .build();
        let answer = self.request(submit).await;
        let id = match answer.pdu() {
            Some(Pdu::SubmitSmResp(resp)) => resp.message_id().as_str().to_string(),
            _ => String::new(),
        };
        (answer.status(), id)
    }

    /// Waits for `count` receipts in all.
    async fn receipts(&mut self, count: usize) -> &[DeliverSm] {
        while self.receipts.len() < count {
            if self.next().await.is_none() {
                break;
            }
        }
        &self.receipts
    }
}

/// (receipted_message_id, the receipt's text) of a receipt.
fn read(receipt: &DeliverSm) -> (String, String) {
    let id = receipt
        .tlvs()
        .iter()
        .find_map(|tlv| match tlv.value() {
            Some(TlvValue::ReceiptedMessageId(id)) => Some(id.as_str().to_string()),
            _ => None,
        })
        .unwrap_or_default();
    let text = String::from_utf8_lossy(receipt.short_message().as_ref()).into_owned();
    (id, text)
}

fn ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smsc_binds_takes_parts_and_sends_their_receipts() {
    let sandbox = Sandbox::start(json!({
        "default_rule": {"delivered": 1.0, "callback_latency_ms": 20},
        "rules": [{"prefix": "+4477009009", "delivered": 0.0, "undelivered": 1.0,
                   "undelivered_codes": [1], "callback_latency_ms": 20}],
    }));
    let mut esme = Esme::connect(&sandbox).await;
    assert_eq!(esme.bind("wrong").await, CommandStatus::EsmeRinvpaswd);
    let (status, _) = esme
        .submit("447700900100", DataCoding::McSpecific, 0, b"early".to_vec())
        .await;
    assert_eq!(
        status,
        CommandStatus::EsmeRinvbndsts,
        "a submit before a bind"
    );
    assert_eq!(esme.bind(SMPP_PASSWORD).await, CommandStatus::EsmeRok);
    assert_eq!(
        esme.request(Pdu::EnquireLink).await.id(),
        CommandId::EnquireLinkResp
    );

    // GSM 7-bit, one septet a byte: "Hi €" (the euro is an escape pair).
    let (status, delivered) = esme
        .submit(
            "447700900100",
            DataCoding::McSpecific,
            0,
            vec![0x48, 0x69, 0x20, 0x1b, 0x65],
        )
        .await;
    assert_eq!(status, CommandStatus::EsmeRok);
    let (_, undelivered) = esme
        .submit("447700900900", DataCoding::McSpecific, 0, b"lost".to_vec())
        .await;
    // 300 UCS-2 characters in five parts of 67, each with its UDH.
    let long: String = "я".repeat(300);
    let units: Vec<char> = long.chars().collect();
    let mut part_ids = Vec::new();
    for (n, chunk) in units.chunks(67).enumerate() {
        let mut bytes = vec![0x05, 0x00, 0x03, 0x2a, 0x05, n as u8 + 1];
        bytes.extend(ucs2(&chunk.iter().collect::<String>()));
        let (status, id) = esme
            .submit("447700900101", DataCoding::Ucs2, 0x40, bytes)
            .await;
        assert_eq!(status, CommandStatus::EsmeRok);
        part_ids.push(id);
    }
    assert_eq!(part_ids.len(), 5);

    let receipts: Vec<(String, String)> = esme.receipts(7).await.iter().map(read).collect();
    assert_eq!(receipts.len(), 7, "{receipts:?}");
    let text_of = |id: &str| {
        receipts
            .iter()
            .find(|(receipted, _)| receipted == id)
            .map(|(_, text)| text.clone())
            .unwrap_or_else(|| panic!("no receipt for {id}: {receipts:?}"))
    };
    let ok = text_of(&delivered);
    assert!(
        ok.starts_with(&format!("id:{delivered} sub:001 dlvrd:001 ")),
        "{ok}"
    );
    assert!(ok.contains(" stat:DELIVRD err:000"), "{ok}");
    assert!(text_of(&undelivered).contains(" stat:UNDELIV err:001"));
    for id in &part_ids {
        assert!(text_of(id).contains("stat:DELIVRD"));
    }

    let log = sandbox.smsc_messages().await;
    let parts = log["parts"].as_array().unwrap();
    assert_eq!(parts[0]["text"], "Hi €");
    let joined: String = parts
        .iter()
        .filter(|p| p["to"] == "+447700900101")
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert_eq!(joined, long);
    assert_eq!(parts[6]["concat"], json!([42, 5, 5]));
    assert_eq!(log["binds"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smsc_throttles_unbinds_refuses_and_keeps_receipts_for_the_next_bind() {
    let sandbox = Sandbox::start(json!({
        "default_rule": {"delivered": 1.0, "callback_latency_ms": 300},
        "smsc": {"receipt_ids_decimal": true},
    }));
    let mut esme = Esme::connect(&sandbox).await;
    assert_eq!(esme.bind(SMPP_PASSWORD).await, CommandStatus::EsmeRok);

    sandbox.set_faults(json!({"smsc_throttle_burst": 2})).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (status, _) = esme
            .submit("447700900110", DataCoding::McSpecific, 0, b"again".to_vec())
            .await;
        statuses.push(status);
    }
    assert_eq!(
        statuses,
        [
            CommandStatus::EsmeRthrottled,
            CommandStatus::EsmeRthrottled,
            CommandStatus::EsmeRok
        ]
    );
    assert_eq!(sandbox.smsc_messages().await["throttled"], 2);

    // Unbound before its receipt is due: the receipt waits for the next
    // bind, and names the message in decimal as this SMSC writes them.
    let (_, hex_id) = esme
        .submit("447700900111", DataCoding::McSpecific, 0, b"kept".to_vec())
        .await;
    sandbox.set_faults(json!({"smsc_refuse_binds": true})).await;
    sandbox.smsc_unbind().await;
    while !esme.unbound {
        esme.next().await.expect("the smsc's unbind");
    }
    let mut second = Esme::connect(&sandbox).await;
    assert_eq!(
        second.bind(SMPP_PASSWORD).await,
        CommandStatus::EsmeRbindfail
    );
    sandbox.set_faults(json!({})).await;
    let mut third = Esme::connect(&sandbox).await;
    assert_eq!(third.bind(SMPP_PASSWORD).await, CommandStatus::EsmeRok);
    let receipts: Vec<(String, String)> = third.receipts(2).await.iter().map(read).collect();
    let decimal = u64::from_str_radix(&hex_id, 16).unwrap().to_string();
    assert!(
        receipts
            .iter()
            .any(|(tlv, text)| *tlv == hex_id && text.starts_with(&format!("id:{decimal} "))),
        "{receipts:?}"
    );

    // Silent: taken, never receipted.
    sandbox
        .set_faults(json!({"smsc_silent_receipts": true}))
        .await;
    let (status, silent) = third
        .submit("447700900112", DataCoding::McSpecific, 0, b"quiet".to_vec())
        .await;
    assert_eq!(status, CommandStatus::EsmeRok);
    let log = sandbox.smsc_messages().await;
    let part = log["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["message_id"] == silent.as_str())
        .cloned()
        .unwrap();
    assert_eq!(part["receipt_sent"], false);
    assert_eq!(log["refused_binds"], 1);
}
