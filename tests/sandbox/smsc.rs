//! An SMSC, as an SMPP 3.4 client meets one: `bind_transceiver` with a
//! system id and password, `submit_sm` answered with a message id (or
//! `ESME_RTHROTTLED` over its rate), `deliver_sm` receipts once the outcome
//! rules' latency has passed, `enquire_link`, and an `unbind`, a refused
//! bind or silence when the fault switches say. Receipts go to any session
//! bound with the message's system id, and wait for one when none is; a
//! receipt not answered with ESME_ROK (refused, or its session ended first)
//! is sent again, as SMSCs do.

use std::{
    collections::HashMap,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use futures::{SinkExt, StreamExt};
use rusmpp::{
    Command, CommandId, CommandStatus, Pdu,
    pdus::{BindTransceiverResp, DeliverSm, SubmitSm, SubmitSmResp},
    tlvs::MessageDeliveryRequestTlvValue,
    tokio_codec::CommandCodec,
    types::{AnyOctetString, COctetString, OctetString},
    values::{EsmClass, InterfaceVersion, MessageState},
};
use serde::Serialize;
use tokio::{net::TcpListener, sync::mpsc};
use tokio_util::codec::Framed;

use crate::{
    server::{State, random_unit},
    twilio::pick,
};

mod text;

/// One submit_sm as the SMSC took it.
#[derive(Debug, Clone, Serialize)]
pub struct SmscPart {
    pub message_id: String,
    pub to: String,
    /// The part's text, decoded from its data coding.
    pub text: String,
    pub data_coding: u8,
    /// (reference, parts, this part's number) from its UDH, if concatenated.
    pub concat: Option<(u16, u8, u8)>,
    pub outcome: String,
    pub error_code: Option<u32>,
    pub received_at_ms: i64,
    pub receipt_sent: bool,
}

#[derive(Default)]
pub struct SmscLog {
    pub parts: Vec<SmscPart>,
    pub binds: u64,
    pub refused_binds: u64,
    pub throttled: u64,
    pub receipts_sent: u64,
    bucket: crate::bucket::Bucket,
    next_id: u64,
    /// Bound sessions: id → (system id, the session's writer).
    sessions: HashMap<u64, (String, mpsc::UnboundedSender<Command>)>,
    /// Receipts that found no bound session yet.
    waiting: Vec<(String, Command)>,
}

impl SmscLog {
    pub fn reset(&mut self) {
        let sessions = std::mem::take(&mut self.sessions);
        *self = Self {
            sessions,
            ..Self::default()
        };
    }

    /// How many sessions are bound now.
    pub fn bound(&self) -> usize {
        self.sessions.len()
    }

    /// Sends every bound session an `unbind`; they close once answered.
    pub fn unbind_all(&mut self) {
        for (_, writer) in self.sessions.values() {
            let _ = writer.send(Command::new(CommandStatus::EsmeRok, 0, Pdu::Unbind));
        }
    }

    /// Receipts a session had not seen answered when it ended: for the
    /// next session bound as `system_id`, or one bound now.
    fn keep_unanswered(&mut self, system_id: &str, receipts: Vec<Command>) {
        for receipt in receipts {
            self.receipts_sent = self.receipts_sent.saturating_sub(1);
            self.deliver(system_id, receipt);
        }
    }

    /// Hands a receipt to a session bound as `system_id`, or keeps it.
    fn deliver(&mut self, system_id: &str, receipt: Command) {
        let session = self
            .sessions
            .values()
            .find(|(bound, _)| bound == system_id)
            .map(|(_, writer)| writer.clone());
        match session {
            Some(writer) if writer.send(receipt.clone()).is_ok() => self.receipts_sent += 1,
            _ => self.waiting.push((system_id.to_string(), receipt)),
        }
    }
}

/// Accepts SMPP connections until the process ends.
pub async fn serve(listener: TcpListener, state: actix_web::web::Data<State>) {
    let mut next_session = 0u64;
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        next_session += 1;
        let state = state.clone();
        tokio::spawn(session(next_session, socket, state));
    }
}

async fn session(id: u64, socket: tokio::net::TcpStream, state: actix_web::web::Data<State>) {
    let (mut sink, mut stream) = Framed::new(socket, CommandCodec::new()).split();
    let (writer, mut outgoing) = mpsc::unbounded_channel::<Command>();
    let sequence = Arc::new(AtomicU32::new(1));
    // Receipts sent and not answered yet, by their sequence number.
    let unanswered: Arc<std::sync::Mutex<HashMap<u32, Command>>> = Arc::default();
    let send_task = {
        let sequence = sequence.clone();
        let unanswered = unanswered.clone();
        tokio::spawn(async move {
            while let Some(mut command) = outgoing.recv().await {
                // Our own requests (receipts, unbind) take our numbering.
                if command.sequence_number() == 0
                    && let Some(pdu) = command.pdu().cloned()
                {
                    let number = sequence.fetch_add(1, Ordering::Relaxed);
                    if matches!(pdu, Pdu::DeliverSm(_)) {
                        unanswered.lock().unwrap().insert(number, command.clone());
                    }
                    command = Command::new(command.status(), number, pdu);
                }
                if sink.send(command).await.is_err() {
                    break;
                }
            }
            // Receipts never written go back with the unanswered ones.
            let mut left = Vec::new();
            while let Ok(command) = outgoing.try_recv() {
                if matches!(command.pdu(), Some(Pdu::DeliverSm(_))) {
                    left.push(command);
                }
            }
            left
        })
    };
    let mut bound: Option<String> = None;
    while let Some(Ok(command)) = stream.next().await {
        let seq = command.sequence_number();
        let reply = match command.pdu() {
            Some(Pdu::BindTransceiver(bind)) => {
                let system_id = bind.system_id.as_str().to_string();
                let status = bind_status(&state, &system_id, bind.password.as_str());
                let resp = BindTransceiverResp::builder()
                    .system_id(COctetString::from_str("SANDBOXSMSC").unwrap())
                    .sc_interface_version(Some(InterfaceVersion::Smpp3_4))
                    .build();
                // The answer first: nothing may come before it.
                let _ = writer.send(Command::new(status, seq, resp));
                let mut log = state.smsc.lock().unwrap();
                if status == CommandStatus::EsmeRok {
                    log.binds += 1;
                    log.sessions.insert(id, (system_id.clone(), writer.clone()));
                    // Receipts kept for this system id go out now.
                    let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut log.waiting)
                        .into_iter()
                        .partition(|(bound_as, _)| *bound_as == system_id);
                    log.waiting = others;
                    for (_, receipt) in mine {
                        let _ = writer.send(receipt);
                        log.receipts_sent += 1;
                    }
                    bound = Some(system_id);
                } else {
                    log.refused_binds += 1;
                }
                None
            }
            Some(Pdu::SubmitSm(submit)) => Some(match &bound {
                None => error_resp(seq, CommandId::SubmitSmResp, CommandStatus::EsmeRinvbndsts),
                Some(system_id) => submit_sm(&state, system_id, seq, submit),
            }),
            Some(Pdu::EnquireLink) => Some(Command::new(
                CommandStatus::EsmeRok,
                seq,
                Pdu::EnquireLinkResp,
            )),
            Some(Pdu::Unbind) => {
                let _ = writer.send(Command::new(CommandStatus::EsmeRok, seq, Pdu::UnbindResp));
                break;
            }
            // Answers to our receipts and unbinds.
            Some(Pdu::DeliverSmResp(_)) => {
                let receipt = unanswered.lock().unwrap().remove(&seq);
                if let (Some(receipt), Some(system_id)) = (receipt, &bound)
                    && command.status() != CommandStatus::EsmeRok
                {
                    // Not kept by the client: again in a while.
                    let (state, system_id) = (state.clone(), system_id.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        let mut log = state.smsc.lock().unwrap();
                        log.receipts_sent = log.receipts_sent.saturating_sub(1);
                        log.deliver(&system_id, receipt);
                    });
                }
                None
            }
            Some(Pdu::GenericNack) => None,
            Some(Pdu::UnbindResp) => break,
            _ => Some(error_resp(
                seq,
                CommandId::GenericNack,
                CommandStatus::EsmeRinvcmdid,
            )),
        };
        if let Some(reply) = reply
            && writer.send(reply).is_err()
        {
            break;
        }
    }
    state.smsc.lock().unwrap().sessions.remove(&id);
    drop(writer);
    let never_written = send_task.await.unwrap_or_default();
    if let Some(system_id) = bound {
        let mut kept: Vec<(u32, Command)> = unanswered.lock().unwrap().drain().collect();
        kept.sort_by_key(|(number, _)| *number);
        let mut receipts: Vec<Command> = kept.into_iter().map(|(_, receipt)| receipt).collect();
        receipts.extend(never_written);
        state
            .smsc
            .lock()
            .unwrap()
            .keep_unanswered(&system_id, receipts);
    }
}

fn bind_status(state: &State, system_id: &str, password: &str) -> CommandStatus {
    let config = &state.config.smsc;
    if state.faults.lock().unwrap().smsc_refuse_binds {
        return CommandStatus::EsmeRbindfail;
    }
    if system_id != config.system_id {
        return CommandStatus::EsmeRinvsysid;
    }
    if password != config.password {
        return CommandStatus::EsmeRinvpaswd;
    }
    CommandStatus::EsmeRok
}

/// A response with a header and no body, as SMSCs answer errors.
fn error_resp(seq: u32, id: CommandId, status: CommandStatus) -> Command {
    Command::new(
        status,
        seq,
        Pdu::Other {
            command_id: id,
            body: AnyOctetString::empty(),
        },
    )
}

fn submit_sm(
    state: &actix_web::web::Data<State>,
    system_id: &str,
    seq: u32,
    submit: &SubmitSm,
) -> Command {
    let throttled = {
        let mut faults = state.faults.lock().unwrap();
        if faults.smsc_throttle_burst > 0 {
            faults.smsc_throttle_burst -= 1;
            true
        } else {
            false
        }
    };
    let mut log = state.smsc.lock().unwrap();
    if throttled
        || !log
            .bucket
            .take_within(state.config.smsc.rate_per_second, state.config.smsc.burst)
    {
        log.throttled += 1;
        return error_resp(seq, CommandId::SubmitSmResp, CommandStatus::EsmeRthrottled);
    }
    let to = format!(
        "+{}",
        submit.destination_addr.as_str().trim_start_matches('+')
    );
    let esm: u8 = submit.esm_class.into();
    let coding: u8 = submit.data_coding.into();
    let (concat, payload) = text::split_udh(submit.short_message().as_ref(), esm & 0x40 != 0);
    let text = text::decode(payload, coding);
    log.next_id += 1;
    // Hex, as many SMSCs number their messages.
    let message_id = format!("{:08x}", 0x5a00_0000 + log.next_id);
    let rule = state.config.rule_for(&to).clone();
    let share = state.faults.lock().unwrap().smsc_delivered_share(&to);
    let roll = random_unit();
    let (outcome, error_code) = match share {
        Some(share) if roll < share => ("delivered", None),
        Some(_) => ("undelivered", pick(&rule.undelivered_codes).or(Some(1))),
        None if roll < rule.delivered => ("delivered", None),
        None if roll < rule.delivered + rule.undelivered => {
            ("undelivered", pick(&rule.undelivered_codes))
        }
        None => ("failed", pick(&rule.failed_codes)),
    };
    log.parts.push(SmscPart {
        message_id: message_id.clone(),
        to: to.clone(),
        text,
        data_coding: coding,
        concat,
        outcome: outcome.into(),
        error_code,
        received_at_ms: chrono::Utc::now().timestamp_millis(),
        receipt_sent: false,
    });
    let wants_receipt = u8::from(submit.registered_delivery) & 0x03 != 0;
    if wants_receipt {
        let latency = Duration::from_millis(
            rule.callback_latency_ms + state.faults.lock().unwrap().receipt_delay_ms(&to),
        );
        let receipt = receipt(&state.config.smsc, &message_id, &to, outcome, error_code);
        let state = state.clone();
        let system_id = system_id.to_string();
        let id = message_id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(latency).await;
            if state.faults.lock().unwrap().smsc_silent_receipts {
                return;
            }
            let mut log = state.smsc.lock().unwrap();
            if let Some(part) = log.parts.iter_mut().find(|p| p.message_id == id) {
                part.receipt_sent = true;
            }
            log.deliver(&system_id, receipt);
        });
    }
    let resp = SubmitSmResp::builder()
        .message_id(COctetString::from_str(&message_id).unwrap())
        .build();
    Command::new(CommandStatus::EsmeRok, seq, resp)
}

/// A delivery receipt as SMSCs write them (SMPP 3.4 appendix B), with
/// the receipted_message_id and message_state TLVs of later versions.
fn receipt(
    config: &crate::config::SmscConfig,
    message_id: &str,
    to: &str,
    outcome: &str,
    error_code: Option<u32>,
) -> Command {
    let (stat, state) = match outcome {
        "delivered" => ("DELIVRD", MessageState::Delivered),
        "undelivered" => ("UNDELIV", MessageState::Undeliverable),
        _ => ("REJECTD", MessageState::Rejected),
    };
    // Some SMSCs answer submit_sm in hex and write receipts in decimal.
    let id_in_text = if config.receipt_ids_decimal {
        u64::from_str_radix(message_id, 16).map_or(message_id.to_string(), |n| n.to_string())
    } else {
        message_id.to_string()
    };
    let now = chrono::Utc::now().format("%y%m%d%H%M").to_string();
    let dlvrd = if outcome == "delivered" { "001" } else { "000" };
    let err = format!("{:03}", error_code.unwrap_or(0) % 1000);
    let text = format!(
        "id:{id_in_text} sub:001 dlvrd:{dlvrd} submit date:{now} done date:{now} stat:{stat} err:{err} text:"
    );
    let deliver = DeliverSm::builder()
        .source_addr(COctetString::from_str(to.trim_start_matches('+')).unwrap())
        .destination_addr(COctetString::from_str("SANDBOX").unwrap())
        .esm_class(EsmClass::from(0x04u8))
        .short_message(OctetString::from_str(&text).unwrap())
        .push_tlv(MessageDeliveryRequestTlvValue::ReceiptedMessageId(
            COctetString::from_str(message_id).unwrap(),
        ))
        .push_tlv(MessageDeliveryRequestTlvValue::MessageState(state))
        .build();
    Command::new(CommandStatus::EsmeRok, 0, deliver)
}
