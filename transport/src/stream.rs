//! The task of a stream flow (TCP or TLS): framing in, messages out,
//! keep-alives, and the exact reason the stream ended.
//!
//! How the end of a stream is classified:
//! * read returns 0 bytes with nothing pending → `Fin`;
//! * read returns 0 bytes inside a message → `Malformed` (truncated);
//! * `ECONNRESET` (far end closed with unread data or `SO_LINGER` 0) → `Reset`;
//! * the decoder rejects the bytes → `Malformed` (message boundaries are lost,
//!   so the stream cannot be resynchronised);
//! * the keep-alive schedule gives up → `KeepaliveTimeout` or `Idle`;
//! * part of a message held past `partial_message_timeout` (garbage without
//!   the blank line that ends a header section, a trickling peer) →
//!   `Malformed`: the stream is closed rather than used with its message
//!   boundaries lost (see `sipfleet_protocol::framing::PARTIAL_MESSAGE_TIMEOUT`).

use bytes::{Bytes, BytesMut};
use sipfleet_protocol::framing::{Frame, PartialMessageGuard};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio_util::codec::Decoder;

use crate::codec::SipCodec;
use crate::error::FlowLostKind;
use crate::flow::{now, Command, FlowEvent, FlowTimer, TaskIo};
use sipfleet_protocol::keepalive::{Keepalive, KeepaliveAction, PONG};

/// Bytes buffered without completing a frame before the stream is declared
/// malformed; a guard on top of the decoder's own limits.
const MAX_BUFFERED: usize = 1 << 20;

/// Runs the flow until it is lost or closed.
pub(crate) async fn run<S>(stream: S, mut decoder: SipCodec, mut io: TaskIo)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut keepalive = Keepalive::new(io.key.transport, &io.keepalive, now());
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut partial = PartialMessageGuard::default();
    let partial_timeout = decoder.config().partial_message_timeout;
    let (mut keepalive_timer, mut stall_timer) = (FlowTimer::new(), FlowTimer::new());
    loop {
        while let Some(action) = keepalive.poll_action() {
            let bytes = match action {
                KeepaliveAction::Send(bytes) => bytes,
                KeepaliveAction::SendPong => Bytes::from_static(PONG),
                KeepaliveAction::Lost(kind) => {
                    let _ = writer.shutdown().await;
                    io.emit(FlowEvent::Lost(kind.into()));
                    return;
                }
            };
            if let Err(kind) = write(&mut writer, &bytes).await {
                io.emit(FlowEvent::Lost(kind));
                return;
            }
        }
        keepalive_timer.set(keepalive.poll_timeout());
        stall_timer.set(partial.poll_timeout(partial_timeout));
        tokio::select! {
            command = io.commands.recv() => match command {
                Some(Command::Send(bytes)) => match write(&mut writer, &bytes).await {
                    Ok(()) => keepalive.handle_sent_message(now()),
                    Err(kind) => {
                        io.emit(FlowEvent::Lost(kind));
                        return;
                    }
                },
                Some(Command::Close) | None => {
                    let _ = writer.shutdown().await;
                    return;
                }
            },
            read = reader.read_buf(&mut buf) => {
                let result = match read {
                    Ok(0) => Err(end_of_stream(&mut decoder, &mut buf)),
                    Ok(_) => deliver(&mut decoder, &mut buf, &mut keepalive, &io),
                    Err(e) => Err(FlowLostKind::from_io(&e)),
                };
                if let Err(kind) = result {
                    io.emit(FlowEvent::Lost(kind));
                    return;
                }
                partial.observe(now(), &buf);
            },
            () = keepalive_timer.wait() => keepalive.handle_timeout(now()),
            () = stall_timer.wait() => {
                if partial.expired(now(), partial_timeout) {
                    let _ = writer.shutdown().await;
                    io.emit(FlowEvent::Lost(FlowLostKind::Malformed {
                        reason: format!(
                            "{} bytes of a message held for {} ms without its end",
                            buf.len(),
                            partial_timeout.as_millis()
                        ),
                    }));
                    return;
                }
            }
        }
    }
}

async fn write<S: AsyncWrite>(writer: &mut WriteHalf<S>, bytes: &[u8]) -> Result<(), FlowLostKind> {
    writer.write_all(bytes).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::BrokenPipe => FlowLostKind::Reset,
        _ => FlowLostKind::from_io(&e),
    })?;
    writer.flush().await.map_err(|e| FlowLostKind::from_io(&e))
}

/// Decodes every complete frame in `buf` and hands it on.
fn deliver(
    decoder: &mut SipCodec,
    buf: &mut BytesMut,
    keepalive: &mut Keepalive,
    io: &TaskIo,
) -> Result<(), FlowLostKind> {
    loop {
        match decoder.decode(buf) {
            Ok(Some(frame)) => handle_frame(frame, keepalive, io),
            Ok(None) if buf.len() > MAX_BUFFERED => {
                return Err(FlowLostKind::Malformed {
                    reason: format!("{} bytes without a complete message", buf.len()),
                })
            }
            Ok(None) => return Ok(()),
            Err(e) => {
                return Err(FlowLostKind::Malformed {
                    reason: e.to_string(),
                })
            }
        }
    }
}

fn handle_frame(frame: Frame, keepalive: &mut Keepalive, io: &TaskIo) {
    match frame {
        Frame::Message(message) => {
            keepalive.handle_received_message(now());
            io.emit(FlowEvent::Message(message));
        }
        Frame::Ping => keepalive.handle_ping(now()),
        Frame::Pong => keepalive.handle_pong(now()),
    }
}

/// The far end closed its side: a clean FIN, unless a message was cut short.
fn end_of_stream(decoder: &mut SipCodec, buf: &mut BytesMut) -> FlowLostKind {
    // Frames completed by the EOF itself are not delivered: the flow is gone,
    // and a message without its tail cannot be trusted.
    let pending = buf.iter().filter(|b| !matches!(b, b'\r' | b'\n')).count();
    match decoder.decode_eof(buf) {
        Err(e) => FlowLostKind::Malformed {
            reason: format!("stream closed inside a message: {e}"),
        },
        Ok(_) if pending > 0 => FlowLostKind::Malformed {
            reason: format!("stream closed inside a message ({pending} bytes pending)"),
        },
        Ok(_) => FlowLostKind::Fin,
    }
}
