//! Keep-alive scheduling for one flow, as a sans-IO state machine.
//!
//! The flow's I/O task feeds it what happened (`handle_*` with `now`), drains
//! [`KeepaliveAction`]s with [`Keepalive::poll_action`] and sleeps until
//! [`Keepalive::poll_timeout`]. It never reads a clock, so every timing of the
//! guide is tested in virtual time to the millisecond.
//!
//! What the guide asks for, and the choices made where it is loose:
//!
//! * **NAT keep-alives** (`nat.keepalive.interval`, `nat.keepalive.udp.payload`,
//!   `nat.keepalive.tcp.payload`): the payload is sent when nothing was sent on the
//!   flow for `interval`. Any outbound packet refreshes a NAT binding, so a flow
//!   shared by thousands of busy lines sends none at all. No answer is expected.
//! * **TLS keep-alives** (`tcpIpApp.keepalive.tcp.sip.tls.enable`): an RFC 5626
//!   CRLF-CRLF ping after `idleTransmitInterval` without traffic; then up to
//!   4 attempts spaced `noResponseTransmitInterval` apart. If none is answered
//!   the flow is lost (`KeepaliveLoss::Unanswered`) — a registration loss,
//!   not a failover. A pong (CRLF) or any inbound SIP message answers: both prove
//!   the far end reads the stream.
//! * **Persistent connection** (`tcpIpApp.keepalive.tcp.sip.persistentConnection.enable`):
//!   when set, far-end pings are answered with pongs. When clear, far-end pings
//!   get no pong and, if the phone itself sends no keep-alives, a stream with
//!   no SIP message either way for 60 s is closed (`KeepaliveLoss::Idle`).
//!
//! ```text
//!  TLS keep-alive (defaults idle=30 s, noResponse=20 s), t = last traffic
//!  t+30 ping#1 ─20s─ ping#2 ─20s─ ping#3 ─20s─ ping#4 ─20s─ lost (t+110)
//!        any pong / inbound message ──► back to idle, next ping 30 s later
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::route::Transport;
use bytes::Bytes;

/// Why the keep-alive schedule gave a flow up; the transport reports it
/// as the flow's loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepaliveLoss {
    /// Pings went unanswered: a registration loss, not a failover.
    Unanswered,
    /// A non-persistent stream idle for 60 s, closed by us: nothing lost.
    Idle,
}

/// RFC 5626 keep-alive ping on a stream: a double CRLF.
pub const PING: &[u8] = b"\r\n\r\n";
/// RFC 5626 keep-alive pong on a stream: a single CRLF.
pub const PONG: &[u8] = b"\r\n";
/// How many TLS keep-alives go unanswered before the connection is lost (guide).
pub const TLS_KEEPALIVE_ATTEMPTS: u32 = 4;
/// Inactivity after which a non-persistent stream is closed (guide).
pub const IDLE_CLOSE_AFTER: Duration = Duration::from_secs(60);

/// The keep-alive parameters of the guide, already range-checked by the
/// configuration model. Payloads are raw bytes (escapes already expanded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeepaliveSettings {
    /// `nat.keepalive.interval`; zero disables NAT keep-alives.
    pub nat_interval: Duration,
    /// `nat.keepalive.udp.payload`.
    pub udp_payload: Bytes,
    /// `nat.keepalive.tcp.payload`.
    pub tcp_payload: Bytes,
    /// `tcpIpApp.keepalive.tcp.sip.tls.enable`.
    pub tls_enable: bool,
    /// `tcpIpApp.keepalive.tcp.noResponseTransmitInterval` (5-120 s).
    pub no_response_transmit_interval: Duration,
    /// `tcpIpApp.keepalive.tcp.idleTransmitInterval` (10-7200 s).
    pub idle_transmit_interval: Duration,
    /// `tcpIpApp.keepalive.tcp.sip.persistentConnection.enable`.
    pub persistent_connection: bool,
}

/// What the I/O task must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeepaliveAction {
    /// Write these bytes to the flow (a NAT keep-alive payload or a ping).
    Send(Bytes),
    /// Answer a far-end ping with a pong (CRLF).
    SendPong,
    /// Close the flow and report it lost with this kind.
    Lost(KeepaliveLoss),
}

/// Which keep-alive scheme applies to a flow.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    Off,
    Nat {
        interval: Duration,
        payload: Bytes,
    },
    PingPong {
        idle: Duration,
        no_response: Duration,
    },
}

/// An outstanding TLS ping.
#[derive(Clone, Copy, Debug)]
struct Awaiting {
    /// Pings sent so far without an answer.
    attempts: u32,
    /// When to send the next ping, or declare the flow lost.
    deadline: Instant,
}

/// Keep-alive state of one flow. See the module docs for the rules.
#[derive(Debug)]
pub struct Keepalive {
    mode: Mode,
    /// Answer far-end pings with pongs.
    answer_pings: bool,
    /// Close after [`IDLE_CLOSE_AFTER`] without SIP messages.
    idle_close: bool,
    /// Last time anything was written (for NAT keep-alives).
    last_sent: Instant,
    /// Last SIP message either way, or any inbound byte (TLS ping schedule).
    last_traffic: Instant,
    /// Last SIP message either way (idle close).
    last_message: Instant,
    awaiting: Option<Awaiting>,
    actions: VecDeque<KeepaliveAction>,
    lost: bool,
}

impl Keepalive {
    /// Keep-alive state for a flow of `transport` that came up at `now`.
    pub fn new(transport: Transport, settings: &KeepaliveSettings, now: Instant) -> Self {
        let nat = |payload: &Bytes| {
            if settings.nat_interval.is_zero() || payload.is_empty() {
                Mode::Off
            } else {
                Mode::Nat {
                    interval: settings.nat_interval,
                    payload: payload.clone(),
                }
            }
        };
        let mode = match transport {
            Transport::Udp => nat(&settings.udp_payload),
            Transport::Tcp => nat(&settings.tcp_payload),
            Transport::Tls if settings.tls_enable => Mode::PingPong {
                idle: settings.idle_transmit_interval,
                no_response: settings.no_response_transmit_interval,
            },
            // TLS runs over TCP: its NAT binding is a TCP one.
            Transport::Tls => nat(&settings.tcp_payload),
        };
        let stream = transport.is_reliable();
        Keepalive {
            idle_close: stream && !settings.persistent_connection && mode == Mode::Off,
            answer_pings: stream && settings.persistent_connection,
            mode,
            last_sent: now,
            last_traffic: now,
            last_message: now,
            awaiting: None,
            actions: VecDeque::new(),
            lost: false,
        }
    }

    // ---- inputs ----

    /// A SIP message was written to the flow.
    pub fn handle_sent_message(&mut self, now: Instant) {
        self.last_sent = now;
        self.last_message = now;
        if self.awaiting.is_none() {
            self.last_traffic = now;
        }
    }

    /// A SIP message was read from the flow: the far end is alive.
    pub fn handle_received_message(&mut self, now: Instant) {
        self.last_message = now;
        self.answered(now);
    }

    /// The far end sent a keep-alive ping (CRLF CRLF).
    pub fn handle_ping(&mut self, now: Instant) {
        if self.answer_pings {
            self.actions.push_back(KeepaliveAction::SendPong);
        }
        // Inbound bytes prove the stream is alive, but a far-end keep-alive is
        // not "activity" for the idle close rule (guide).
        self.answered(now);
    }

    /// The far end answered with a pong (CRLF).
    pub fn handle_pong(&mut self, now: Instant) {
        self.answered(now);
    }

    /// Time passed; call at or after [`Self::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.lost {
            return;
        }
        if self.idle_close && now >= self.last_message + IDLE_CLOSE_AFTER {
            self.lose(KeepaliveLoss::Idle);
            return;
        }
        match self.mode.clone() {
            Mode::Off => {}
            Mode::Nat { interval, payload } => {
                let due = self.last_sent + interval;
                if now >= due {
                    // Stay on the schedule when woken a little late (timer
                    // granularity), restart from `now` when far behind.
                    self.last_sent = if now - due < interval { due } else { now };
                    self.actions.push_back(KeepaliveAction::Send(payload));
                }
            }
            Mode::PingPong { idle, no_response } => match self.awaiting {
                None if now >= self.last_traffic + idle => {
                    self.send_ping(now);
                    // Anchored on the schedule, not on `now`: a late wake-up
                    // does not shift the later attempts.
                    self.awaiting = Some(Awaiting {
                        attempts: 1,
                        deadline: self.last_traffic + idle + no_response,
                    });
                }
                None => {}
                Some(a) if now >= a.deadline => {
                    if a.attempts >= TLS_KEEPALIVE_ATTEMPTS {
                        self.lose(KeepaliveLoss::Unanswered);
                    } else {
                        self.send_ping(now);
                        self.awaiting = Some(Awaiting {
                            attempts: a.attempts + 1,
                            deadline: a.deadline + no_response,
                        });
                    }
                }
                Some(_) => {}
            },
        }
    }

    // ---- outputs ----

    /// The next thing to do, if any.
    pub fn poll_action(&mut self) -> Option<KeepaliveAction> {
        self.actions.pop_front()
    }

    /// When [`Self::handle_timeout`] must be called next; `None` when nothing is
    /// scheduled (keep-alives off and no idle close, or the flow is lost).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.lost {
            return None;
        }
        let idle = self
            .idle_close
            .then(|| self.last_message + IDLE_CLOSE_AFTER);
        let keepalive = match &self.mode {
            Mode::Off => None,
            Mode::Nat { interval, .. } => Some(self.last_sent + *interval),
            Mode::PingPong { idle, .. } => Some(match self.awaiting {
                Some(a) => a.deadline,
                None => self.last_traffic + *idle,
            }),
        };
        match (idle, keepalive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// True once the flow was declared lost; nothing more will happen.
    pub fn is_lost(&self) -> bool {
        self.lost
    }

    // ---- internals ----

    fn answered(&mut self, now: Instant) {
        self.awaiting = None;
        self.last_traffic = now;
    }

    fn send_ping(&mut self, now: Instant) {
        self.last_sent = now;
        self.actions
            .push_back(KeepaliveAction::Send(Bytes::from_static(PING)));
    }

    fn lose(&mut self, kind: KeepaliveLoss) {
        self.lost = true;
        self.awaiting = None;
        self.actions.push_back(KeepaliveAction::Lost(kind));
    }
}

#[cfg(test)]
mod tests;
