//! Test support for calls, subscriptions and line seize: routes, a virtual
//! clock stepping to each deadline, and a peer that builds its messages
//! with `protocol::message`. Every message a machine sends is serialized
//! and parsed back here, so each test also proves the round trip.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sipfleet_protocol::call::Transmit;
use sipfleet_protocol::message::{HeaderName, Message, Method, Request, Response, StatusCode};
use sipfleet_protocol::register_request::LineIdentity;
use sipfleet_protocol::route::{Route, RouteSource, Transport};

pub fn route(n: u8, transport: Transport) -> Route {
    Route {
        transport,
        host: format!("sbc{n}.example.com"),
        addr: SocketAddr::new([127, 0, 0, 10 + n].into(), 5060),
        group: 0,
        priority: u16::from(n),
        weight: 0,
        source: RouteSource::Network,
    }
}

pub fn local() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}

pub fn rtp() -> SocketAddr {
    "127.0.0.1:30000".parse().unwrap()
}

pub fn identity() -> LineIdentity {
    LineIdentity {
        address: "1001".into(),
        display_name: Some("Alice".into()),
        domain: "example.com".into(),
        user_agent: "sipfleet/test".into(),
    }
}

/// Serializes and re-parses `msg`, asserting the round trip is exact.
pub fn round_trip(msg: &Message) -> Message {
    let parsed = Message::parse(msg.to_bytes()).expect("built message parses");
    assert_eq!(&parsed, msg, "round trip changed the message");
    parsed
}

/// One thing a machine did, at a virtual time in ms from the test start.
#[derive(Clone, Debug)]
pub enum Seen {
    Sent {
        at: u64,
        route: Route,
        msg: Box<Message>,
    },
    Event {
        at: u64,
        name: String,
        detail: String,
    },
}

/// A virtual clock.
pub struct Clock {
    pub start: Instant,
    pub now: Instant,
}

impl Clock {
    pub fn new() -> Self {
        let start = Instant::now();
        Clock { start, now: start }
    }
    pub fn ms(&self) -> u64 {
        (self.now - self.start).as_millis() as u64
    }
    pub fn at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

pub fn sent(seen: &[Seen]) -> Vec<(u64, Route, Message)> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Sent { at, route, msg } => Some((*at, route.clone(), (**msg).clone())),
            Seen::Event { .. } => None,
        })
        .collect()
}

pub fn events(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Event { at, name, detail } if detail.is_empty() => Some(format!("{at} {name}")),
            Seen::Event { at, name, detail } => Some(format!("{at} {name} {detail}")),
            Seen::Sent { .. } => None,
        })
        .collect()
}

/// `"<ms> <METHOD|status> <cseq>"` of each message sent.
pub fn wire(seen: &[Seen]) -> Vec<String> {
    sent(seen)
        .iter()
        .map(|(at, _, m)| {
            let cseq = m.headers().cseq().unwrap();
            match m {
                Message::Request(r) => format!("{at} {} {}", r.method(), cseq),
                Message::Response(r) => format!("{at} {} {}", r.status().as_u16(), cseq),
            }
        })
        .collect()
}

pub fn request(msg: &Message) -> &Request {
    msg.as_request().expect("a request")
}

pub fn branch(msg: &Message) -> String {
    msg.headers()
        .top_via()
        .unwrap()
        .branch()
        .unwrap()
        .to_string()
}

/// The peer's response to `req`, with `to_tag` and extra headers/body.
pub fn respond(
    req: &Message,
    status: u16,
    to_tag: Option<&str>,
    extra: &[(HeaderName, &str)],
    body: Option<&str>,
) -> Message {
    let mut resp = Response::for_request(request(req), StatusCode::new(status).unwrap(), to_tag);
    for (name, value) in extra {
        resp.headers_mut().push(*name, *value);
    }
    if let Some(body) = body {
        resp.headers_mut()
            .push(HeaderName::ContentType, "application/sdp");
        resp.set_body(body.to_owned());
    }
    Message::parse(resp.to_bytes()).unwrap()
}

/// The SDP of a peer at 10.0.0.2:6000 with `direction`, version `v`.
pub fn peer_sdp(direction: &str, v: u32) -> String {
    format!(
        "v=0\r\no=peer 99 {v} IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n\
         m=audio 6000 RTP/AVP 8 0\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na={direction}\r\n"
    )
}

/// A request from the peer (caller 1002) to the line, as the SBC relays it.
pub struct PeerDialog {
    pub call_id: String,
    pub from_tag: String,
    /// Our tag, once known.
    pub to_tag: Option<String>,
    pub cseq: u32,
    pub branch_n: u32,
}

impl PeerDialog {
    pub fn new(call_id: &str) -> Self {
        PeerDialog {
            call_id: call_id.into(),
            from_tag: "peer-tag".into(),
            to_tag: None,
            cseq: 1,
            branch_n: 0,
        }
    }

    pub fn request(&mut self, method: Method, body: Option<&str>) -> Message {
        self.branch_n += 1;
        let branch = format!("z9hG4bKpeer{}", self.branch_n);
        self.request_with(method, self.cseq, &branch, body)
    }

    pub fn request_with(
        &self,
        method: Method,
        cseq: u32,
        branch: &str,
        body: Option<&str>,
    ) -> Message {
        let mut r = Request::new(method.clone(), "sip:1001@127.0.0.1:40000").unwrap();
        let h = r.headers_mut();
        h.push(
            HeaderName::Via,
            format!("SIP/2.0/UDP 127.0.0.11:5060;branch={branch}"),
        );
        h.push(HeaderName::MaxForwards, "69");
        h.push(
            HeaderName::RecordRoute,
            "<sip:127.0.0.11:5060;lr>".to_string(),
        );
        h.push(
            HeaderName::From,
            format!("\"Bob\" <sip:1002@example.com>;tag={}", self.from_tag),
        );
        let to = match &self.to_tag {
            Some(t) => format!("<sip:1001@example.com>;tag={t}"),
            None => "<sip:1001@example.com>".to_string(),
        };
        h.push(HeaderName::To, to);
        h.push(HeaderName::CallId, self.call_id.clone());
        h.push(HeaderName::CSeq, format!("{cseq} {method}"));
        h.push(HeaderName::Contact, "<sip:1002@10.0.0.2:5070>");
        if let Some(body) = body {
            h.push(HeaderName::ContentType, "application/sdp");
            r.set_body(body.to_owned());
        }
        Message::parse(r.to_bytes()).unwrap()
    }
}

use sipfleet_protocol::call::{Call, CallOutput, CallSettings, IncomingCall, OutgoingCall};
use sipfleet_protocol::transaction::RetryPolicy;

/// A call on a virtual clock, with everything it did.
pub struct CallSim {
    pub clock: Clock,
    pub call: Call,
    pub seen: Vec<Seen>,
}

pub fn settings() -> CallSettings {
    CallSettings {
        policy: RetryPolicy::default(),
        auto_answer: false,
        only_signal_with_registered: false,
        user_agent: "sipfleet/test".into(),
        ring_timeout: None,
        calls_per_line: sipfleet_protocol::call::DEFAULT_CALLS_PER_LINE,
    }
}

pub fn digest() -> sipfleet_protocol::auth::DigestClient {
    sipfleet_protocol::auth::DigestClient::new(
        "1001",
        sipfleet_protocol::auth::Secret::new("pw1001"),
    )
}

impl CallSim {
    /// An outgoing call to `sip:1002@example.com` on route 1.
    pub fn outgoing(settings: CallSettings, transport: Transport, last_route: bool) -> Self {
        let clock = Clock::new();
        let call = Call::outgoing(
            settings,
            identity(),
            Some(digest()),
            OutgoingCall {
                target: "sip:1002@example.com".into(),
                route: route(1, transport),
                local: local(),
                rtp: rtp(),
                last_route,
            },
            "call-1@test".into(),
            7,
            clock.now,
        )
        .unwrap();
        let mut sim = CallSim {
            clock,
            call,
            seen: Vec::new(),
        };
        sim.drain();
        sim
    }

    /// An incoming call from `peer`'s INVITE on route 1.
    pub fn incoming(settings: CallSettings, invite: &Message) -> Self {
        let clock = Clock::new();
        let call = Call::incoming(
            settings,
            identity(),
            None,
            IncomingCall {
                invite: request(invite),
                route: route(1, Transport::Udp),
                local: local(),
            },
            9,
            clock.now,
        )
        .unwrap();
        let mut sim = CallSim {
            clock,
            call,
            seen: Vec::new(),
        };
        // What the line does with `reg.x.autoAnswer=1`: bind, then answer.
        if sim.call.auto_answer_due() {
            let now = sim.clock.now;
            sim.call.answer(now, rtp()).unwrap();
        }
        sim.drain();
        sim
    }

    pub fn drain(&mut self) {
        let at = self.clock.ms();
        while let Some(out) = self.call.poll_output() {
            match out {
                CallOutput::Send(Transmit { route, message }) => {
                    let msg = round_trip(&message);
                    self.seen.push(Seen::Sent {
                        at,
                        route,
                        msg: Box::new(msg),
                    });
                }
                CallOutput::Event(e) => {
                    let detail = match &e.kind {
                        sipfleet_protocol::call::CallEventKind::Ended { reason, status } => {
                            format!("{} {:?}", reason.as_str(), status)
                        }
                        sipfleet_protocol::call::CallEventKind::Held { by_remote }
                        | sipfleet_protocol::call::CallEventKind::Resumed { by_remote } => {
                            if *by_remote {
                                "remote".into()
                            } else {
                                "local".into()
                            }
                        }
                        sipfleet_protocol::call::CallEventKind::RouteFailed { budget_over } => {
                            format!("budget_over={budget_over}")
                        }
                        sipfleet_protocol::call::CallEventKind::ReinviteFailed { status } => {
                            status.to_string()
                        }
                        _ => String::new(),
                    };
                    self.seen.push(Seen::Event {
                        at,
                        name: e.kind.name().to_string(),
                        detail,
                    });
                }
            }
        }
    }

    /// Steps the clock through every deadline up to `ms`.
    pub fn run_until(&mut self, ms: u64) {
        let end = self.clock.at(ms);
        while let Some(t) = self.call.poll_timeout() {
            assert!(t >= self.clock.now, "deadline in the past");
            if t > end {
                break;
            }
            self.clock.now = t;
            self.call.handle_timeout(t);
            self.drain();
        }
        self.clock.now = end;
    }

    pub fn deliver(&mut self, msg: &Message) {
        assert!(self.call.accepts(msg));
        self.call.handle_message(self.clock.now, msg);
        self.drain();
    }

    pub fn input(&mut self, f: impl FnOnce(&mut Call, Instant)) {
        f(&mut self.call, self.clock.now);
        self.drain();
    }

    /// Forgets what was seen so far; returns it.
    pub fn take(&mut self) -> Vec<Seen> {
        std::mem::take(&mut self.seen)
    }

    /// The last message sent.
    pub fn last_sent(&self) -> Message {
        sent(&self.seen)
            .last()
            .expect("something was sent")
            .2
            .clone()
    }
}

use sipfleet_protocol::subscription::{
    EventPackage, Subscription, SubscriptionEventKind, SubscriptionOutput, SubscriptionSettings,
};

/// A subscription on a virtual clock.
pub struct SubSim {
    pub clock: Clock,
    pub sub: Subscription,
    pub seen: Vec<Seen>,
}

impl SubSim {
    pub fn new(package: EventPackage, resource: &str) -> Self {
        SubSim {
            clock: Clock::new(),
            sub: Subscription::new(
                SubscriptionSettings {
                    user_agent: "sipfleet/test".into(),
                    ..SubscriptionSettings::default()
                },
                identity(),
                Some(digest()),
                package,
                resource.into(),
                11,
            ),
            seen: Vec::new(),
        }
    }

    pub fn drain(&mut self) {
        let at = self.clock.ms();
        while let Some(out) = self.sub.poll_output() {
            match out {
                SubscriptionOutput::Send(Transmit { route, message }) => {
                    let msg = round_trip(&message);
                    self.seen.push(Seen::Sent {
                        at,
                        route,
                        msg: Box::new(msg),
                    });
                }
                SubscriptionOutput::Event(e) => {
                    let detail = match &e.kind {
                        SubscriptionEventKind::Subscribed { expires }
                        | SubscriptionEventKind::Refreshed { expires } => {
                            format!("{}s", expires.as_secs())
                        }
                        SubscriptionEventKind::Invalidated { reason } => format!("{reason:?}"),
                        SubscriptionEventKind::Terminated { reason, retry_in } => {
                            format!("{reason} retry={:?}", retry_in.map(|d| d.as_secs()))
                        }
                        SubscriptionEventKind::Failed { status, retry_in } => {
                            format!("{status:?} retry={}s", retry_in.as_secs())
                        }
                        SubscriptionEventKind::Notified { state, .. } => state.clone(),
                    };
                    let route = e.route.map(|r| r.host).unwrap_or_default();
                    self.seen.push(Seen::Event {
                        at,
                        name: e.kind.name().to_string(),
                        detail: format!("{route} {detail}").trim().to_string(),
                    });
                }
            }
        }
    }

    pub fn run_until(&mut self, ms: u64) {
        let end = self.clock.at(ms);
        while let Some(t) = self.sub.poll_timeout() {
            assert!(t >= self.clock.now, "deadline in the past");
            if t > end {
                break;
            }
            self.clock.now = t;
            self.sub.handle_timeout(t);
            self.drain();
        }
        self.clock.now = end;
    }

    pub fn deliver(&mut self, msg: &Message) {
        assert!(self.sub.accepts(msg));
        self.sub.handle_message(self.clock.now, msg);
        self.drain();
    }

    pub fn input(&mut self, f: impl FnOnce(&mut Subscription, Instant)) {
        f(&mut self.sub, self.clock.now);
        self.drain();
    }

    pub fn take(&mut self) -> Vec<Seen> {
        std::mem::take(&mut self.seen)
    }

    pub fn last_sent(&self) -> Message {
        sent(&self.seen)
            .last()
            .expect("something was sent")
            .2
            .clone()
    }
}

/// A NOTIFY from the notifier in the dialog of `subscribe` (answered with
/// `notifier_tag`).
pub fn notify(
    subscribe: &Message,
    notifier_tag: &str,
    cseq: u32,
    event: &str,
    state: &str,
    body: Option<(&str, &str)>,
) -> Message {
    let h = subscribe.headers();
    let mut r = Request::new(Method::Notify, "sip:1001@127.0.0.1:40000").unwrap();
    let n = r.headers_mut();
    n.push(
        HeaderName::Via,
        format!("SIP/2.0/UDP 127.0.0.11:5060;branch=z9hG4bKnotify{cseq}"),
    );
    n.push(HeaderName::MaxForwards, "70");
    n.push(
        HeaderName::From,
        format!("<{}>;tag={notifier_tag}", h.to().unwrap().uri().as_str()),
    );
    n.push(HeaderName::To, h.get(HeaderName::From).unwrap());
    n.push(HeaderName::CallId, h.call_id().unwrap());
    n.push(HeaderName::CSeq, format!("{cseq} NOTIFY"));
    n.push(HeaderName::Contact, "<sip:notifier@10.0.0.3:5060>");
    n.push(HeaderName::Event, event);
    n.push(HeaderName::SubscriptionState, state);
    if let Some((ct, b)) = body {
        n.push(HeaderName::ContentType, ct);
        r.set_body(b.to_owned());
    }
    Message::parse(r.to_bytes()).unwrap()
}
