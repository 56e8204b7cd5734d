//! The dialog state of RFC 3261 section 12, shared by calls, subscriptions
//! and the emergency line seize: identifiers, route set, remote target and
//! CSeq spaces, and the requests built from them.
//!
//! A dialog also remembers the *flow* it lives on (the SBC route and the
//! local address of the flow): every request of a dialog goes to that SBC,
//! which is what `onlySignalWithRegistered` checks.

use std::fmt::Write as _;
use std::net::SocketAddr;

use crate::auth::{Challenge, ChallengeKind, DigestClient, RequestInfo};
use crate::message::{HeaderName, Method, ParseError, Request, Response, StatusCode};
use crate::register_request::LineIdentity;
use crate::route::{Route, Transport};

/// A message to send, with the route (SBC flow) it goes to.
#[derive(Clone, Debug, PartialEq)]
pub struct Transmit {
    /// The SBC flow to send on.
    pub route: Route,
    /// The request or response to send.
    pub message: crate::message::Message,
}

/// Deterministic identifiers from one injected seed: tags, branches and
/// cnonces need uniqueness, not secrecy (SplitMix64).
#[derive(Clone, Debug)]
pub struct IdGen {
    state: u64,
}

impl IdGen {
    /// A generator whose sequence is fixed by `seed`, so tests can predict tags and branches.
    pub fn new(seed: u64) -> Self {
        IdGen { state: seed }
    }

    /// The next value of the sequence.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A RFC 3261 magic-cookie branch.
    pub fn branch(&mut self) -> String {
        format!("z9hG4bK{:016x}", self.next_u64())
    }

    /// A From/To tag.
    pub fn tag(&mut self) -> String {
        format!("{:08x}", self.next_u64() as u32)
    }
}

/// `host:port`, IPv6 in brackets.
pub fn host_port(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// Our Contact for a flow: the line's user at the flow's local address.
pub fn contact_for(identity: &LineIdentity, local: SocketAddr, transport: Transport) -> String {
    let param = match transport {
        Transport::Udp => String::new(),
        other => format!(";transport={}", other.as_str()),
    };
    format!("<sip:{}@{}{}>", identity.user(), host_port(local), param)
}

/// The `From` value of the line (without tag).
pub fn local_party(identity: &LineIdentity) -> String {
    match &identity.display_name {
        Some(name) => format!("\"{}\" <{}>", name.replace('"', ""), identity.aor()),
        None => format!("<{}>", identity.aor()),
    }
}

/// A challenge read from a 401/407, to answer on the next request.
pub type HeldChallenge = (ChallengeKind, Challenge);

/// The first Digest challenge of a 401/407 we can use.
pub fn read_challenge(resp: &Response) -> Option<HeldChallenge> {
    let kind = ChallengeKind::from_status(resp.status().as_u16())?;
    let name = match kind {
        ChallengeKind::Www => HeaderName::WwwAuthenticate,
        ChallengeKind::Proxy => HeaderName::ProxyAuthenticate,
    };
    resp.headers()
        .get_all(name)
        .find_map(|v| Challenge::parse(v).ok())
        .map(|c| (kind, c))
}

/// Adds `Authorization` / `Proxy-Authorization` answering `challenge` to `req`.
pub fn authorize(
    req: &mut Request,
    digest: &mut DigestClient,
    challenge: &HeldChallenge,
    ids: &mut IdGen,
) {
    let cnonce = format!("{:016x}", ids.next_u64());
    let uri = req.uri_str().to_owned();
    let method = req.method().as_str().to_owned();
    let info = RequestInfo {
        method: &method,
        uri: &uri,
        body: req.body(),
    };
    let auth = digest.authorize(challenge.0, &challenge.1, &info, &cnonce);
    let name = match challenge.0 {
        ChallengeKind::Www => HeaderName::Authorization,
        ChallengeKind::Proxy => HeaderName::ProxyAuthorization,
    };
    let value = auth.to_string();
    req.headers_mut().push(name, value);
}

/// Why an incoming in-dialog request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 481 Call/Transaction Does Not Exist: tags do not match.
    UnknownDialog,
    /// 500: CSeq lower than the last one (RFC 3261 12.2.2).
    OutOfOrder,
}

impl Refusal {
    /// The SIP status code to answer the refused request with.
    pub fn status(self) -> u16 {
        match self {
            Refusal::UnknownDialog => 481,
            Refusal::OutOfOrder => 500,
        }
    }
}

/// One dialog (or the pre-dialog state of an initial request).
#[derive(Clone, Debug)]
pub struct Dialog {
    /// The dialog's Call-ID, shared by both ends.
    pub call_id: String,
    /// Our tag (`From` tag of our requests, RFC 3261 19.3).
    pub local_tag: String,
    /// The peer's tag; `None` until a response or request carries one (early or pre-dialog).
    pub remote_tag: Option<String>,
    /// `From` of our requests, without the tag.
    pub local_uri: String,
    /// `To` of our requests, without the tag.
    pub remote_uri: String,
    /// Request-URI of our in-dialog requests (the peer's Contact).
    pub remote_target: String,
    /// `Route` values for our in-dialog requests, in sending order.
    pub route_set: Vec<String>,
    /// CSeq number of our last in-dialog request; each new request increments it.
    pub local_cseq: u32,
    /// CSeq of the peer's last request; `None` until it sends one (RFC 3261 12.2.2).
    pub remote_cseq: Option<u32>,
    /// The SBC flow this dialog's requests go to.
    pub route: Route,
    /// Local address of that flow (Via, Contact).
    pub local: SocketAddr,
    /// Our `Contact` value, the target of the peer's in-dialog requests.
    pub contact: String,
}

impl Dialog {
    /// The state of an initial request of ours (RFC 3261 8.1.1): no remote
    /// tag, no route set, remote target is the Request-URI.
    pub fn uac(
        identity: &LineIdentity,
        call_id: String,
        local_tag: String,
        target: &str,
        route: Route,
        local: SocketAddr,
        first_cseq: u32,
    ) -> Self {
        Dialog {
            call_id,
            local_tag,
            remote_tag: None,
            local_uri: local_party(identity),
            remote_uri: format!("<{target}>"),
            remote_target: target.to_owned(),
            route_set: Vec::new(),
            local_cseq: first_cseq,
            remote_cseq: None,
            contact: contact_for(identity, local, route.transport),
            route,
            local,
        }
    }

    /// A dialog created by a request we received (RFC 3261 12.1.1): the
    /// remote tag is its From tag, the route set its Record-Route in order.
    pub fn uas(
        identity: &LineIdentity,
        req: &Request,
        local_tag: String,
        route: Route,
        local: SocketAddr,
    ) -> Result<Self, ParseError> {
        let h = req.headers();
        let from = h.from()?;
        let to = h.to()?;
        let contact = h
            .contacts()
            .next()
            .ok_or(ParseError::MissingHeader(HeaderName::Contact))??;
        let mut route_set = Vec::new();
        for rr in h.record_routes() {
            route_set.push(name_addr_text(&rr?));
        }
        Ok(Dialog {
            call_id: h.call_id()?.to_owned(),
            local_tag,
            remote_tag: from.tag().map(str::to_owned),
            local_uri: without_tag(to.uri().as_str(), to.display_name()),
            remote_uri: without_tag(from.uri().as_str(), from.display_name()),
            remote_target: contact.uri().as_str().to_owned(),
            route_set,
            local_cseq: 0,
            remote_cseq: Some(h.cseq()?.seq),
            contact: contact_for(identity, local, route.transport),
            route,
            local,
        })
    }

    /// Fills the dialog from a 2xx (or a tagged 1xx) to our initial request
    /// (RFC 3261 12.1.2): remote tag, remote target from Contact, route set
    /// from Record-Route in reverse order. A re-INVITE's 2xx only updates the
    /// remote target (12.2.1.2).
    pub fn update_from_response(&mut self, resp: &Response, initial: bool) {
        let h = resp.headers();
        if let Some(c) = h.contacts().next().and_then(Result::ok) {
            self.remote_target = c.uri().as_str().to_owned();
        }
        if !initial {
            return;
        }
        if let Ok(to) = h.to() {
            self.remote_tag = to.tag().map(str::to_owned);
        }
        let mut set: Vec<String> = h
            .record_routes()
            .filter_map(Result::ok)
            .map(|a| name_addr_text(&a))
            .collect();
        set.reverse();
        self.route_set = set;
    }

    /// Takes the next local CSeq number.
    pub fn next_cseq(&mut self) -> u32 {
        self.local_cseq = self.local_cseq.wrapping_add(1).min((1 << 31) - 1);
        self.local_cseq
    }

    /// Checks an incoming request against this dialog (RFC 3261 12.2.2):
    /// tags must match, CSeq must not go back. Records the CSeq.
    pub fn check_incoming(&mut self, req: &Request) -> Result<(), Refusal> {
        let h = req.headers();
        let from_tag = h.from().ok().and_then(|f| f.tag().map(str::to_owned));
        let to_tag = h.to().ok().and_then(|t| t.tag().map(str::to_owned));
        if to_tag.as_deref() != Some(self.local_tag.as_str())
            || (self.remote_tag.is_some() && from_tag != self.remote_tag)
        {
            return Err(Refusal::UnknownDialog);
        }
        let seq = h.cseq().map_err(|_| Refusal::UnknownDialog)?.seq;
        if *req.method() != Method::Ack {
            if self.remote_cseq.is_some_and(|last| seq < last) {
                return Err(Refusal::OutOfOrder);
            }
            self.remote_cseq = Some(seq);
        }
        if self.remote_tag.is_none() {
            self.remote_tag = from_tag;
        }
        Ok(())
    }

    /// A request of this dialog with the given CSeq and branch: Request-URI
    /// and Route per RFC 3261 12.2.1.1 (loose routing when the first route
    /// has `lr`, strict routing otherwise).
    pub fn request(
        &self,
        method: Method,
        cseq: u32,
        branch: &str,
        user_agent: &str,
    ) -> Result<Request, ParseError> {
        let first_is_loose = self.route_set.first().map(|r| r.contains(";lr"));
        let (uri, routes): (String, Vec<String>) = match first_is_loose {
            Some(false) => {
                let first = crate::message::NameAddr::parse(&self.route_set[0])
                    .map(|a| a.uri().as_str().to_owned())
                    .unwrap_or_else(|_| self.remote_target.clone());
                let mut rest: Vec<String> = self.route_set[1..].to_vec();
                rest.push(format!("<{}>", self.remote_target));
                (first, rest)
            }
            _ => (self.remote_target.clone(), self.route_set.clone()),
        };
        let mut req = Request::new(method.clone(), &uri)?;
        let h = req.headers_mut();
        h.push(
            HeaderName::Via,
            format!(
                "SIP/2.0/{} {};branch={branch};rport",
                self.route.transport.as_str().to_ascii_uppercase(),
                host_port(self.local)
            ),
        );
        h.push(HeaderName::MaxForwards, "70");
        for r in routes {
            h.push(HeaderName::Route, r);
        }
        h.push(
            HeaderName::From,
            format!("{};tag={}", self.local_uri, self.local_tag),
        );
        let mut to = self.remote_uri.clone();
        if let Some(tag) = &self.remote_tag {
            let _ = write!(to, ";tag={tag}");
        }
        h.push(HeaderName::To, to);
        h.push(HeaderName::CallId, self.call_id.clone());
        h.push(HeaderName::CSeq, format!("{cseq} {method}"));
        if !matches!(method, Method::Bye | Method::Cancel | Method::Ack) {
            h.push(HeaderName::Contact, self.contact.clone());
        }
        h.push(HeaderName::UserAgent, user_agent.to_owned());
        Ok(req)
    }

    /// A response to `req` in this dialog, with our tag and, when it can
    /// establish or refresh the dialog, our Contact.
    pub fn response(&self, req: &Request, status: StatusCode) -> Response {
        let code = status.as_u16();
        let tag = (code != 100).then_some(self.local_tag.as_str());
        let mut resp = Response::for_request(req, status, tag);
        if (101..300).contains(&code) && matches!(req.method(), Method::Invite) {
            resp.headers_mut()
                .push(HeaderName::Contact, self.contact.clone());
        }
        resp
    }
}

fn without_tag(uri: &str, display: Option<&str>) -> String {
    match display {
        Some(d) if !d.is_empty() => format!("{d} <{uri}>"),
        _ => format!("<{uri}>"),
    }
}

fn name_addr_text(a: &crate::message::NameAddr<'_>) -> String {
    let params = a.params().as_str();
    if params.is_empty() {
        format!("<{}>", a.uri().as_str())
    } else {
        format!("<{}>;{params}", a.uri().as_str())
    }
}

/// A stateless answer to a request no dialog of ours knows: 481, or `None`
/// for an ACK (which is never answered).
pub fn unknown_dialog_response(req: &Request) -> Option<Response> {
    if *req.method() == Method::Ack {
        return None;
    }
    Some(crate::line::incoming::no_dialog(req))
}
