//! One bind to the SMSC, kept up: connect, bind_transceiver, then requests
//! out and answers back matched by sequence number, enquire_link while
//! idle, receipts handed on and answered once kept, and a new bind with
//! backoff whenever the connection, the bind or the SMSC's patience ends.

use std::{
    collections::HashMap,
    str::FromStr,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use futures::{SinkExt, StreamExt};
use rusmpp::{
    Command, CommandId, CommandStatus, Pdu,
    pdus::{BindTransceiver, DeliverSmResp},
    tokio_codec::CommandCodec,
    types::{AnyOctetString, COctetString},
    values::InterfaceVersion,
};
use tokio::{
    net::TcpStream,
    sync::{mpsc, oneshot},
    time::Instant,
};
use tokio_util::codec::Framed;

use super::receipt;
use crate::{
    config::SmppConfig,
    core::providers::{PushedReceipt, jittered},
};

/// What became of a request.
#[derive(Debug)]
pub enum Answer {
    Answered(Box<Command>),
    /// Never written to the SMSC: provably not taken.
    NotSent,
}

pub struct Request {
    pub pdu: Pdu,
    pub answer: oneshot::Sender<Answer>,
}

/// The bound session requests go to, while there is one.
#[derive(Default)]
pub struct Link {
    current: Mutex<Option<mpsc::Sender<Request>>>,
}

impl Link {
    pub fn sender(&self) -> Option<mpsc::Sender<Request>> {
        self.lock().clone().filter(|sender| !sender.is_closed())
    }

    fn set(&self, sender: Option<mpsc::Sender<Request>>) {
        *self.lock() = sender;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<mpsc::Sender<Request>>> {
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Binds and binds again until the connector (`link`) is gone.
pub async fn supervise(
    config: SmppConfig,
    link: Weak<Link>,
    receipts: mpsc::Sender<PushedReceipt>,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        if link.strong_count() == 0 {
            return;
        }
        match bind(&config).await {
            Ok(framed) => {
                backoff = FIRST_BACKOFF;
                let (sender, requests) = mpsc::channel(config.window.max(1) * 2);
                let Some(shared) = link.upgrade() else { return };
                shared.set(Some(sender));
                drop(shared);
                tracing::info!(addr = %config.addr, "smpp bound");
                let why = serve(framed, requests, &receipts, &config).await;
                if let Some(shared) = link.upgrade() {
                    shared.set(None);
                }
                tracing::warn!(addr = %config.addr, reason = %why, "smpp bind lost");
            }
            Err(why) => tracing::warn!(addr = %config.addr, reason = %why, "smpp bind failed"),
        }
        tokio::time::sleep(jittered(backoff)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

type Socket = Framed<TcpStream, CommandCodec>;

async fn bind(config: &SmppConfig) -> Result<Socket, String> {
    let connect = TcpStream::connect(&config.addr);
    let socket = tokio::time::timeout(config.response_timeout, connect)
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|err| format!("connect failed: {err}"))?;
    let _ = socket.set_nodelay(true);
    let mut framed = Framed::new(socket, CommandCodec::new());
    let bind = BindTransceiver::builder()
        .system_id(COctetString::from_str(&config.system_id).map_err(|_| "bad system id")?)
        .password(COctetString::from_str(&config.password).map_err(|_| "bad password")?)
        .interface_version(InterfaceVersion::Smpp3_4)
        .build();
    framed
        .send(Command::new(CommandStatus::EsmeRok, 1, bind))
        .await
        .map_err(|err| format!("bind not sent: {err}"))?;
    let answer = tokio::time::timeout(config.response_timeout, framed.next())
        .await
        .map_err(|_| "no answer to bind".to_string())?
        .ok_or("closed before answering bind")?
        .map_err(|err| format!("unreadable answer to bind: {err}"))?;
    if answer.id() != CommandId::BindTransceiverResp {
        return Err(format!("answered bind with {:?}", answer.id()));
    }
    match answer.status() {
        CommandStatus::EsmeRok => Ok(framed),
        status => Err(format!(
            "bind refused: {status:?} ({:#x})",
            u32::from(status)
        )),
    }
}

/// Runs one bound session until it ends; says why it ended.
async fn serve(
    socket: Socket,
    mut requests: mpsc::Receiver<Request>,
    receipts: &mpsc::Sender<PushedReceipt>,
    config: &SmppConfig,
) -> String {
    let (mut sink, mut stream) = socket.split();
    let mut pending: HashMap<u32, oneshot::Sender<Answer>> = HashMap::new();
    // 1 went to the bind.
    let mut sequence: u32 = 1;
    let mut next = move || {
        sequence = if sequence >= 0x7fff_ffff {
            1
        } else {
            sequence + 1
        };
        sequence
    };
    // Receipts are answered once kept, from tasks of their own.
    let (answers, mut answered) = mpsc::unbounded_channel::<Command>();
    let mut ticks = tokio::time::interval(config.enquire_link_every);
    ticks.reset();
    let mut heard = Instant::now();
    let why = loop {
        tokio::select! {
            request = requests.recv() => {
                let Some(Request { pdu, answer }) = request else {
                    // Shutting down: the SMSC sends the receipts still due
                    // to the binds that remain, rather than waiting on this one.
                    let unbind = Command::new(CommandStatus::EsmeRok, next(), Pdu::Unbind);
                    if sink.send(unbind).await.is_ok() {
                        let _ = tokio::time::timeout(config.response_timeout, stream.next()).await;
                    }
                    break "shutting down".to_string();
                };
                let number = next();
                if let Err(err) = sink.send(Command::new(CommandStatus::EsmeRok, number, pdu)).await {
                    let _ = answer.send(Answer::NotSent);
                    break format!("write failed: {err}");
                }
                pending.insert(number, answer);
            }
            Some(answer) = answered.recv() => {
                if let Err(err) = sink.send(answer).await {
                    break format!("write failed: {err}");
                }
            }
            frame = stream.next() => {
                let command = match frame {
                    None => break "closed by the smsc".to_string(),
                    Some(Err(err)) => break format!("unreadable frame: {err}"),
                    Some(Ok(command)) => command,
                };
                heard = Instant::now();
                let number = command.sequence_number();
                if command.id().is_response() {
                    if let Some(waiting) = pending.remove(&number) {
                        let _ = waiting.send(Answer::Answered(Box::new(command)));
                    }
                    continue;
                }
                let reply = match command.pdu() {
                    Some(Pdu::DeliverSm(deliver)) => match receipt::read(deliver) {
                        Some(receipt) => {
                            hand_on(receipt, number, receipts, answers.clone()).await;
                            None
                        }
                        // Not a receipt (a message from a handset): taken, and ignored.
                        None => Some(Command::new(CommandStatus::EsmeRok, number, DeliverSmResp::default())),
                    },
                    Some(Pdu::EnquireLink) => Some(Command::new(CommandStatus::EsmeRok, number, Pdu::EnquireLinkResp)),
                    Some(Pdu::Unbind) => {
                        let _ = sink.send(Command::new(CommandStatus::EsmeRok, number, Pdu::UnbindResp)).await;
                        break "unbound by the smsc".to_string();
                    }
                    _ => Some(Command::new(
                        CommandStatus::EsmeRinvcmdid,
                        number,
                        Pdu::Other { command_id: CommandId::GenericNack, body: AnyOctetString::empty() },
                    )),
                };
                if let Some(reply) = reply
                    && let Err(err) = sink.send(reply).await
                {
                    break format!("write failed: {err}");
                }
            }
            _ = ticks.tick() => {
                if heard.elapsed() > config.enquire_link_every * 3 {
                    break "the smsc went silent".to_string();
                }
                // Callers that gave up no longer wait for their answer.
                pending.retain(|_, waiting| !waiting.is_closed());
                let number = next();
                if let Err(err) = sink.send(Command::new(CommandStatus::EsmeRok, number, Pdu::EnquireLink)).await {
                    break format!("write failed: {err}");
                }
            }
        }
    };
    // Requests still queued were never written.
    requests.close();
    while let Ok(Request { answer, .. }) = requests.try_recv() {
        let _ = answer.send(Answer::NotSent);
    }
    // Those written and unanswered are dropped: their callers learn the
    // answer was lost.
    drop(pending);
    why
}

/// Hands a receipt on and answers the SMSC once it is kept; a receipt
/// that could not be kept is refused as a temporary error, so the SMSC
/// sends it again.
async fn hand_on(
    receipt: receipt::Receipt,
    number: u32,
    receipts: &mpsc::Sender<PushedReceipt>,
    answers: mpsc::UnboundedSender<Command>,
) {
    let (done, kept) = oneshot::channel();
    let pushed = PushedReceipt {
        update: crate::core::providers::CallbackUpdate {
            sid: receipt.part_id,
            status: receipt.status,
            provider_status: receipt.provider_status,
            error_code: receipt.error_code,
        },
        done,
    };
    if receipts.send(pushed).await.is_err() {
        let _ = answers.send(deliver_resp(number, false));
        return;
    }
    tokio::spawn(async move {
        let kept = kept.await.unwrap_or(false);
        let _ = answers.send(deliver_resp(number, kept));
    });
}

fn deliver_resp(number: u32, kept: bool) -> Command {
    let status = if kept {
        CommandStatus::EsmeRok
    } else {
        CommandStatus::EsmeRxTAppn
    };
    Command::new(status, number, DeliverSmResp::default())
}

/// Shared by the connector and its supervisor.
pub fn start(config: SmppConfig, receipts: mpsc::Sender<PushedReceipt>) -> Arc<Link> {
    let link = Arc::new(Link::default());
    tokio::spawn(supervise(config, Arc::downgrade(&link), receipts));
    link
}
