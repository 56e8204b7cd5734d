//! A whole line in virtual time: a [`Line`] driven the way the actor drives
//! it, with a fake DNS (one route set), flows that open at once (or fail,
//! when told), a peer that answers with `protocol::message`, and a clock
//! stepping from deadline to deadline. What the line does is logged as
//! `"<ms> <what> <host>"` lines, so tests compare timelines.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use sipfleet_protocol::auth::DigestClient;
use sipfleet_protocol::config::TransportSetting;
use sipfleet_protocol::dns::{ResolveTarget, RouteEntry, RouteSet};
use sipfleet_protocol::flow_failure::RouteFailureKind;
use sipfleet_protocol::line::{
    BindError, Command, Input, Line, LineFeatures, LineSetup, MediaPorts, Output,
};
use sipfleet_protocol::message::{HeaderName, Message, Method, Response, StatusCode};
use sipfleet_protocol::register_request::LineIdentity;
use sipfleet_protocol::registration::RegistrationSettings;
use sipfleet_protocol::route::{FlowKey, Route, RouteSource, Transport};

pub fn route(n: u8, transport: Transport) -> Route {
    Route {
        transport,
        host: format!("sbc{n}.example.com"),
        addr: SocketAddr::new([127, 0, 0, 10 + n].into(), 5060),
        group: 0,
        priority: u16::from(n) * 10,
        weight: 0,
        source: RouteSource::Network,
    }
}

pub fn local() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}

fn target() -> ResolveTarget {
    ResolveTarget::new("example.com", TransportSetting::DnsNaptr, 0)
}

pub fn setup(settings: RegistrationSettings, features: LineFeatures) -> LineSetup {
    LineSetup {
        index: 1,
        identity: LineIdentity {
            address: "1001".into(),
            display_name: None,
            domain: "example.com".into(),
            user_agent: "sipfleet/test".into(),
        },
        digest: DigestClient::new("1001", sipfleet_protocol::auth::Secret::new("secret")),
        settings,
        targets: vec![target()],
        seed: Some(7),
        features,
        instance: None,
    }
}

/// Media ports that always bind (port 30000, 30001, ...), recording what
/// is open.
#[derive(Default)]
pub struct FakeMedia {
    next: u16,
    pub open: HashSet<String>,
}

impl MediaPorts for FakeMedia {
    fn bind(&mut self, call_id: &str, ip: IpAddr) -> Result<SocketAddr, BindError> {
        self.open.insert(call_id.to_owned());
        self.next += 1;
        Ok(SocketAddr::new(ip, 30000 + self.next))
    }
    fn release(&mut self, call_id: &str) {
        self.open.remove(call_id);
    }
    fn ceiling(&self) -> (usize, usize) {
        (100, self.open.len())
    }
    fn received(&self, _: &str) -> u64 {
        0
    }
}

pub struct LineSim {
    pub line: Line,
    pub start: Instant,
    pub now: Instant,
    pub routes: Vec<Route>,
    /// Timeline: `"<ms> <METHOD|status|event> <host>"`.
    pub log: Vec<String>,
    /// Every message sent, with its flow.
    pub sent: Vec<(u64, FlowKey, Message)>,
    /// Every output as the driver saw it (flows, dialogs, media...).
    pub outputs: Vec<(u64, String)>,
    /// Flows that fail to open, and how (the connection reports it).
    pub unreachable: HashMap<FlowKey, RouteFailureKind>,
    deadline: Option<Instant>,
    inputs: VecDeque<Input>,
    pub media_packets: usize,
}

fn name_of(msg: &Message) -> String {
    match msg {
        Message::Request(r) => r.method().to_string(),
        Message::Response(r) => r.status().as_u16().to_string(),
    }
}

impl LineSim {
    pub fn new(setup: LineSetup, routes: Vec<Route>) -> Self {
        let now = Instant::now();
        LineSim {
            line: Line::new(setup, false, Box::new(FakeMedia::default())),
            start: now,
            now,
            routes,
            log: Vec::new(),
            sent: Vec::new(),
            outputs: Vec::new(),
            unreachable: HashMap::new(),
            deadline: None,
            inputs: VecDeque::new(),
            media_packets: 0,
        }
    }

    pub fn ms(&self) -> u64 {
        (self.now - self.start).as_millis() as u64
    }

    pub fn at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }

    fn host_of(&self, flow: FlowKey) -> String {
        self.routes
            .iter()
            .find(|r| FlowKey::of(r) == flow)
            .map(|r| r.host.clone())
            .unwrap_or_else(|| flow.to_string())
    }

    pub fn start(&mut self) {
        let now = self.now;
        self.line.start(now);
        self.pump();
    }

    pub fn input(&mut self, input: Input) {
        let now = self.now;
        self.line.handle_input(now, input);
        self.pump();
    }

    pub fn command(&mut self, command: Command) -> String {
        let now = self.now;
        let id = self.line.command(now, command).expect("command applies");
        self.pump();
        id
    }

    /// Drains the line, answering what the fake driver answers at once
    /// (DNS, flows), until nothing is left.
    pub fn pump(&mut self) {
        loop {
            while let Some(output) = self.line.poll_output() {
                self.driver(output);
            }
            let Some(input) = self.inputs.pop_front() else {
                break;
            };
            let now = self.now;
            self.line.handle_input(now, input);
        }
    }

    fn driver(&mut self, output: Output) {
        let ms = self.ms();
        match output {
            Output::Resolve { index, target } => {
                let set = RouteSet {
                    target,
                    entries: self
                        .routes
                        .iter()
                        .enumerate()
                        .map(|(i, r)| RouteEntry {
                            route: r.clone(),
                            selection_order: i + 1,
                            naptr: None,
                            srv_name: None,
                            expires: None,
                        })
                        .collect(),
                    expires: None,
                };
                self.inputs.push_back(Input::Resolved { index, set });
            }
            Output::OpenFlow { route } => {
                let flow = FlowKey::of(&route);
                self.outputs.push((ms, format!("open {}", route.host)));
                if let Some(kind) = self.unreachable.get(&flow).cloned() {
                    self.inputs.push_back(Input::RouteFailed { flow, kind });
                    self.inputs.push_back(Input::FlowUnavailable {
                        flow,
                        reason: "unreachable".into(),
                    });
                } else {
                    self.inputs.push_back(Input::FlowOpened {
                        flow,
                        local: local(),
                    });
                }
            }
            Output::Transmit { flow, message } => {
                let host = self.host_of(flow);
                self.log.push(format!("{ms} {} {host}", name_of(&message)));
                let parsed =
                    Message::parse(message.to_bytes()).expect("what the line sends parses");
                self.sent.push((ms, flow, parsed));
            }
            Output::Event(e) => {
                let host = e.route().map(|r| r.host.clone()).unwrap_or_default();
                self.log.push(format!("{ms} {} {host}", e.name()));
            }
            Output::Timeout(t) => self.deadline = Some(t),
            Output::Media { .. } => self.media_packets += 1,
            Output::ReleaseFlow { flow } => {
                let host = self.host_of(flow);
                self.outputs.push((ms, format!("release {host}")))
            }
            Output::DetachFlow { flow } => {
                let host = self.host_of(flow);
                self.outputs.push((ms, format!("detach {host}")))
            }
            other => self.outputs.push((ms, format!("{other:?}"))),
        }
    }

    /// Runs the line's timers up to `ms` (virtual), stepping to each
    /// deadline the line announced.
    pub fn run_until(&mut self, ms: u64) {
        let end = self.at(ms);
        while let Some(t) = self.deadline.filter(|t| *t <= end) {
            self.deadline = None;
            self.now = t.max(self.now);
            self.input(Input::Timeout);
            if self.deadline.is_none() {
                // The deadline did not move: ask the line directly (a
                // driver keeps its timer; this one re-reads it).
                self.deadline = self.line.poll_timeout().filter(|d| *d > t);
            }
        }
        self.now = end;
    }

    /// The last message sent whose name is `what` (a method or a status).
    pub fn last(&self, what: &str) -> (FlowKey, Message) {
        self.sent
            .iter()
            .rev()
            .find(|(_, _, m)| name_of(m) == what)
            .map(|(_, f, m)| (*f, m.clone()))
            .unwrap_or_else(|| panic!("no {what} sent; log: {:#?}", self.log))
    }

    /// The peer on `flow` answers `req` with `status`.
    pub fn answer(
        &mut self,
        flow: FlowKey,
        req: &Message,
        status: u16,
        extra: &[(HeaderName, &str)],
    ) {
        let mut resp = Response::for_request(
            req.as_request().expect("a request"),
            StatusCode::new(status).unwrap(),
            Some("peer"),
        );
        for (name, value) in extra {
            resp.headers_mut().push(*name, *value);
        }
        let message = Message::parse(resp.to_bytes()).unwrap();
        self.input(Input::Received { flow, message });
    }

    /// The registrar answers the last REGISTER 200, listing our binding
    /// for `expires` seconds.
    pub fn register_ok(&mut self, expires: u32) {
        let (flow, req) = self.last("REGISTER");
        let contact = req
            .headers()
            .get(HeaderName::Contact)
            .expect("a Contact")
            .to_owned();
        let contact = format!("{contact};expires={expires}");
        self.answer(flow, &req, 200, &[(HeaderName::Contact, &contact)]);
    }

    /// The peer answers the last request with `method` 200 (an INVITE's
    /// with SDP).
    pub fn ok_to(&mut self, method: Method) {
        let (flow, req) = self.last(method.as_str());
        let mut resp = Response::for_request(
            req.as_request().unwrap(),
            StatusCode::new(200).unwrap(),
            Some("peer"),
        );
        resp.headers_mut()
            .push(HeaderName::Contact, "<sip:2000@10.0.0.2:5060>");
        if method == Method::Invite {
            resp.headers_mut()
                .push(HeaderName::ContentType, "application/sdp");
            resp.set_body(
                "v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=sendrecv\r\n"
                    .to_owned(),
            );
        }
        let message = Message::parse(resp.to_bytes()).unwrap();
        self.input(Input::Received { flow, message });
    }

    /// The timeline from `from_ms` on.
    pub fn log_since(&self, from_ms: u64) -> Vec<String> {
        self.log
            .iter()
            .filter(|l| {
                l.split(' ')
                    .next()
                    .and_then(|t| t.parse::<u64>().ok())
                    .is_some_and(|t| t >= from_ms)
            })
            .cloned()
            .collect()
    }

    /// Call-IDs of the messages sent with `method`.
    pub fn call_ids(&self, method: &str) -> Vec<String> {
        self.sent
            .iter()
            .filter(|(_, _, m)| name_of(m) == method)
            .map(|(_, _, m)| m.headers().call_id().unwrap().to_owned())
            .collect()
    }
}
