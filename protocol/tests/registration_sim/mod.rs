//! Virtual-time harness for `Registration` tests, in the manner of quinn-proto's
//! test pair: a simulated clock stepped to `poll_timeout()`, scripted peers that
//! answer (or not) at zero round-trip time, and a log of every send and event
//! stamped with its millisecond offset, so tests assert exact timelines.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use sipfleet_protocol::registration::{
    EventKind, Output, RegisterResponse, Registration, RegistrationSettings, SendRegister,
    TransportError,
};
use sipfleet_protocol::route::{Route, RouteSource, Transport};

/// The seed of the back-off RNG in every simulation.
pub const SEED: u64 = 7;

/// How a scripted SBC treats a REGISTER.
#[derive(Clone, Debug, PartialEq)]
pub enum Peer {
    /// Never answers.
    Silent,
    /// The request draws an ICMP error.
    Icmp,
    /// The TCP connect is refused.
    Refused,
    /// 200 OK granting the requested expiry.
    Ok,
    /// 200 OK granting this many seconds.
    OkFor(u64),
    /// This final status.
    Status(u16),
    /// 503 with an optional Retry-After in seconds.
    Unavailable(Option<u64>),
    /// 401 unless the request carries credentials, then 200.
    Challenge,
    /// 401 to everything.
    ChallengeAlways,
    /// 401 `stale=true` to every credentialed request (a hostile registrar
    /// that never accepts its own nonces).
    StaleAlways,
    /// 423 asking for one second more than each request asked for.
    MinExpiresRising,
    /// 401 whose challenge cannot be answered (`Basic`).
    UnusableChallenge,
    /// 200 OK listing another device's binding but not ours.
    OkWithoutOurs,
}

pub struct Sim {
    pub reg: Registration,
    pub t0: Instant,
    pub now: Instant,
    pub routes: Vec<Route>,
    peers: HashMap<String, Peer>,
    log: Vec<String>,
    pub sends: Vec<(u64, SendRegister)>,
    /// The pacing slot the machine asked for (ticket) and whether it was
    /// granted; `None` when it holds or waits for none.
    pub slot: Option<(u64, bool)>,
    /// Grant every slot request at once (a pacer with no limit).
    pub auto_grant: bool,
}

pub fn route(host: &str, transport: Transport, group: usize, last_octet: u8) -> Route {
    Route {
        transport,
        host: host.to_owned(),
        addr: SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(10, 0, group as u8, last_octet)),
            transport.default_port(),
        ),
        group,
        priority: 0,
        weight: 0,
        source: RouteSource::Network,
    }
}

/// `n` routes `r1..rn` of one service record.
pub fn routes(n: usize, transport: Transport) -> Vec<Route> {
    (1..=n)
        .map(|i| route(&format!("r{i}"), transport, 0, i as u8))
        .collect()
}

/// Call-IDs `cid-1`, `cid-2`, ... in order.
pub fn call_ids() -> Box<dyn FnMut() -> String + Send> {
    let mut n = 0;
    Box::new(move || {
        n += 1;
        format!("cid-{n}")
    })
}

impl Sim {
    pub fn new(settings: RegistrationSettings, routes: Vec<Route>) -> Self {
        Self::with_rng(settings, routes, Box::new(StdRng::seed_from_u64(SEED)))
    }

    pub fn with_rng(
        settings: RegistrationSettings,
        routes: Vec<Route>,
        rng: Box<dyn RngCore + Send>,
    ) -> Self {
        let t0 = Instant::now();
        let mut reg = Registration::new(settings, rng, Box::new(call_ids()));
        reg.handle_routes(t0, routes.clone(), None);
        let peers = routes.iter().map(|r| (r.host.clone(), Peer::Ok)).collect();
        Sim {
            reg,
            t0,
            now: t0,
            routes,
            peers,
            log: Vec::new(),
            sends: Vec::new(),
            slot: None,
            auto_grant: false,
        }
    }

    pub fn route(&self, host: &str) -> Route {
        self.routes
            .iter()
            .find(|r| r.host == host)
            .cloned()
            .unwrap_or_else(|| panic!("no route {host}"))
    }

    pub fn set_peer(&mut self, host: &str, peer: Peer) {
        self.peers.insert(host.to_owned(), peer);
    }

    pub fn ms(&self) -> u64 {
        (self.now - self.t0).as_millis() as u64
    }

    pub fn start(&mut self) {
        let now = self.now;
        self.reg.start(now);
        self.drain();
    }

    /// Applies `f` to the machine at the current virtual time, then lets the
    /// peers answer.
    pub fn input(&mut self, f: impl FnOnce(&mut Registration, Instant)) {
        let now = self.now;
        f(&mut self.reg, now);
        self.drain();
    }

    pub fn transport_error(&mut self, host: &str, error: TransportError) {
        let route = self.route(host);
        self.input(|reg, now| reg.handle_transport_error(now, &route, error));
    }

    pub fn new_routes(&mut self, routes: Vec<Route>) {
        self.routes = routes.clone();
        for r in &routes {
            self.peers.entry(r.host.clone()).or_insert(Peer::Ok);
        }
        self.input(|reg, now| reg.handle_routes(now, routes, None));
    }

    /// The fleet's pacer grants the slot the machine waits for, now.
    pub fn grant_slot(&mut self) {
        let Some((ticket, false)) = self.slot else {
            panic!("no slot request waits at {} ms: {:?}", self.ms(), self.slot);
        };
        self.slot = Some((ticket, true));
        self.input(|reg, now| reg.handle_slot_granted(now, ticket));
    }

    /// Steps the clock from deadline to deadline up to `ms` after start.
    pub fn run_until(&mut self, ms: u64) {
        let end = self.t0 + Duration::from_millis(ms);
        while let Some(deadline) = self.reg.poll_timeout() {
            if deadline > end {
                break;
            }
            assert!(deadline >= self.now, "deadline in the past");
            self.now = deadline;
            self.reg.handle_timeout(deadline);
            self.drain();
        }
        self.now = end;
    }

    /// Runs `ms` more milliseconds.
    pub fn run_for(&mut self, ms: u64) {
        let target = self.ms() + ms;
        self.run_until(target);
    }

    fn drain(&mut self) {
        let mut outputs = 0;
        while let Some(output) = self.reg.poll_output() {
            outputs += 1;
            assert!(
                outputs < 10_000,
                "livelock: 10,000 outputs at {} ms without time passing",
                self.ms()
            );
            let t = self.ms();
            match output {
                Output::Send(send) => {
                    self.log.push(format!("{t} {}", describe_send(&send)));
                    self.sends.push((t, send.clone()));
                    self.answer(&send);
                }
                Output::RequestSlot(request) => {
                    assert!(
                        self.slot.is_none(),
                        "slot requested at {t} ms while one is held or asked for: {:?}",
                        self.slot
                    );
                    self.log.push(format!(
                        "{t} slot_request {} {}",
                        request.route.host,
                        request.purpose.as_str()
                    ));
                    self.slot = Some((request.ticket, false));
                    if self.auto_grant {
                        self.slot = Some((request.ticket, true));
                        let now = self.now;
                        self.reg.handle_slot_granted(now, request.ticket);
                    }
                }
                Output::SlotDone => {
                    assert!(self.slot.is_some(), "slot done at {t} ms without a slot");
                    self.log.push(format!("{t} slot_done"));
                    self.slot = None;
                }
                Output::Event(event) => {
                    let host = event.route.as_ref().map_or("-", |r| r.host.as_str());
                    self.log.push(format!(
                        "{t} {} {host}{}",
                        event.kind.name(),
                        details(&event.kind)
                    ));
                }
            }
        }
    }

    fn answer(&mut self, send: &SendRegister) {
        let peer = self
            .peers
            .get(&send.route.host)
            .cloned()
            .unwrap_or(Peer::Silent);
        let now = self.now;
        let mut response = RegisterResponse::new(send.cseq, 200);
        match peer {
            Peer::Silent => return,
            Peer::Icmp => {
                return self
                    .reg
                    .handle_transport_error(now, &send.route, TransportError::Icmp)
            }
            Peer::Refused => {
                return self
                    .reg
                    .handle_transport_error(now, &send.route, TransportError::Refused)
            }
            Peer::Ok => {}
            Peer::OkFor(s) => response.expires = Some(Duration::from_secs(s)),
            Peer::Status(status) => response.status = status,
            Peer::Unavailable(retry_after) => {
                response.status = 503;
                response.retry_after = retry_after.map(Duration::from_secs);
            }
            Peer::Challenge if !send.with_credentials => response.status = 401,
            Peer::Challenge => {}
            Peer::ChallengeAlways => response.status = 401,
            Peer::StaleAlways => {
                response.status = 401;
                response.stale = send.with_credentials;
            }
            Peer::MinExpiresRising => {
                response.status = 423;
                response.min_expires = Some(Duration::from_secs(u64::from(send.expires) + 1));
            }
            Peer::UnusableChallenge => {
                response.status = 401;
                response.unusable_challenge = Some("not a Digest challenge: Basic".into());
            }
            Peer::OkWithoutOurs => response.binding_missing = true,
        }
        self.reg.handle_response(now, response);
    }

    /// Every log line so far, then clears the log.
    pub fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }

    /// Log lines whose kind (second word) is one of `kinds`.
    pub fn log_of(&self, kinds: &[&str]) -> Vec<String> {
        self.log
            .iter()
            .filter(|line| {
                line.split(' ')
                    .nth(1)
                    .is_some_and(|kind| kinds.contains(&kind))
            })
            .cloned()
            .collect()
    }

    /// Times (ms) of the sends to `host`.
    pub fn send_times(&self, host: &str) -> Vec<u64> {
        self.sends
            .iter()
            .filter(|(_, s)| s.route.host == host)
            .map(|(t, _)| *t)
            .collect()
    }
}

pub fn describe_send(send: &SendRegister) -> String {
    let mut line = format!(
        "send {} cseq={} exp={} {}",
        send.route.host, send.cseq, send.expires, send.call_id
    );
    if send.retransmission {
        line.push_str(" rtx");
    }
    if send.with_credentials {
        line.push_str(" auth");
    }
    line
}

fn details(kind: &EventKind) -> String {
    match kind {
        EventKind::Registering { purpose, .. } => format!(" {}", purpose.as_str()),
        EventKind::Registered { expires, primary } => {
            format!(" exp={} primary={primary}", expires.as_secs())
        }
        EventKind::RouteFailed { reason, detail } => match detail {
            Some(detail) => format!(" {} detail={detail}", reason.as_str()),
            None => format!(" {}", reason.as_str()),
        },
        EventKind::Failover { from } | EventKind::Failback { from } => {
            format!(" from={}", from.host)
        }
        EventKind::Backoff { wait, failures } => {
            format!(" wait={} n={failures}", wait.as_millis())
        }
        EventKind::Unregistered { reason } => format!(" {}", reason.as_str()),
        EventKind::RegistrationFailed { status, reason } => match status {
            Some(status) if !verbose_reasons() => format!(" {status}"),
            Some(status) => format!(" {status} {}", reason.as_str()),
            None if verbose_reasons() => format!(" {}", reason.as_str()),
            None => String::new(),
        },
        EventKind::SubscriptionsInvalidated { reason } => format!(" {reason:?}"),
        EventKind::FailbackHeld { reason } => format!(" {}", reason.as_str()),
    }
}

thread_local! {
    static VERBOSE_REASONS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Log lines of `registration_failed` name the [`FailReason`] too, from now
/// on in this test (older timelines were written without it).
///
/// [`FailReason`]: sipfleet_protocol::registration::FailReason
pub fn log_fail_reasons() {
    VERBOSE_REASONS.with(|v| v.set(true));
}

fn verbose_reasons() -> bool {
    VERBOSE_REASONS.with(|v| v.get())
}

/// Asserts `actual` equals `expected`, printing both in full on failure.
pub fn assert_lines(actual: &[String], expected: &[&str]) {
    let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    assert!(
        actual == expected.as_slice(),
        "timeline differs\n--- actual ---\n{}\n--- expected ---\n{}\n",
        actual.join("\n"),
        expected.join("\n")
    );
}

/// The back-off waits (ms) the pinned RNG gives for these ceilings `W` (ms),
/// drawn in order as the machine draws them.
pub fn pinned_waits(ceilings_ms: &[u64]) -> Vec<u64> {
    use rand::Rng;
    let mut rng = StdRng::seed_from_u64(SEED);
    ceilings_ms
        .iter()
        .map(|&w| rng.random_range(w / 2..=w))
        .collect()
}

/// Settings with the guide's back-off example: base 10 s, max 120 s.
pub fn quick_backoff() -> RegistrationSettings {
    RegistrationSettings {
        register_retry_base_s: 10,
        register_retry_max_s: 120,
        ..RegistrationSettings::default()
    }
}
