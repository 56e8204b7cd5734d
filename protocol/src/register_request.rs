//! REGISTER requests of one line: turns the registration machine's abstract
//! [`SendRegister`] into a SIP request and a received response back into a
//! [`RegisterResponse`].
//!
//! The machine in [`crate::registration`] decides *when* and *where* to
//! register; this module knows *what* goes on the wire: the AOR in From/To, a
//! From tag that lives as long as the Call-ID, a Via naming the flow's real
//! local address with `rport` (RFC 3581), a Contact reachable over the same
//! flow, and digest credentials answering the last 401/407 (RFC 3261 22.2).
//! A retransmission repeats the previous bytes exactly (same branch, same
//! CSeq), as RFC 3261 17.1.2.2 requires.
//!
//! The Contact carries the line's `+sip.instance` and `reg-id` (RFC 5626)
//! when the line has an instance URN, so a registrar that knows them replaces
//! the line's older bindings instead of piling them up. A 2xx is read for
//! *our* binding only: the Contact that compares equal to the one we sent
//! (RFC 3261 19.1.4), or that carries our instance. Another device's
//! binding on the same AOR says nothing about ours.

use std::net::SocketAddr;

use bytes::Bytes;
use thiserror::Error;

use crate::auth::{Challenge, ChallengeKind, DigestClient, RequestInfo};
use crate::message::{HeaderName, Method, ParseError, Request, Response};
use crate::registration::{RegisterResponse, SendRegister};
use crate::route::Transport;

/// Who a line is: its address of record and credentials.
#[derive(Clone, Debug)]
pub struct LineIdentity {
    /// `reg.x.address`: a user part (`1001`) or a full `user@domain`.
    pub address: String,
    /// `reg.x.displayName`.
    pub display_name: Option<String>,
    /// The registrar domain used in the Request-URI and, when `address` has no
    /// domain, in the AOR.
    pub domain: String,
    /// `User-Agent` value.
    pub user_agent: String,
}

impl LineIdentity {
    /// The address of record, `sip:user@domain`.
    pub fn aor(&self) -> String {
        if self.address.contains('@') {
            format!("sip:{}", self.address.trim_start_matches("sip:"))
        } else {
            format!("sip:{}@{}", self.address, self.domain)
        }
    }

    /// The user part of the AOR, also used as the Contact user so inbound
    /// requests can be routed to the line by Request-URI user.
    pub fn user(&self) -> &str {
        let a = self.address.trim_start_matches("sip:");
        a.split('@').next().unwrap_or(a)
    }
}

/// Why a received response is not read as an answer to our REGISTER.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The bytes are not a SIP response.
    #[error("unreadable response: {0}")]
    Unreadable(#[from] ParseError),
    /// Branch and CSeq may match by chance or malice; a response whose
    /// Call-ID or From tag is not our request's does not answer it.
    #[error("response does not belong to our REGISTER: {0}")]
    NotOurs(&'static str),
}

/// Errors building a REGISTER; they come from configuration (an address that
/// is not a valid URI), never from the network.
#[derive(Debug, Error)]
pub enum RegisterBuildError {
    /// The configured registrar address is not a valid Request-URI.
    #[error("invalid Request-URI {uri:?}: {source}")]
    RequestUri {
        /// The URI as configured.
        uri: String,
        /// Why it does not parse.
        source: ParseError,
    },
    /// Credentials were asked for before any 401/407 challenge arrived.
    #[error("a REGISTER with credentials was asked for but no challenge was received")]
    NoChallenge,
}

/// A response to one of our REGISTERs, read into the machine's terms.
#[derive(Debug)]
pub struct ReadResponse {
    /// What the response means to the registration machine.
    pub response: RegisterResponse,
    /// The branch of the top Via, to match it to the transaction.
    pub branch: Option<String>,
}

/// Builds the REGISTERs of one line and reads their responses.
#[derive(Debug)]
pub struct RegisterRequests {
    identity: LineIdentity,
    digest: DigestClient,
    /// The last challenge received, with its kind (401 or 407).
    /// Boxed, as is `last`: a line holds one for a moment or for long
    /// stretches, and a 10,000-line fleet should not pay their size inline.
    challenge: Option<Box<(ChallengeKind, Challenge)>>,
    /// From tag, renewed with the Call-ID.
    from_tag: String,
    tag_call_id: String,
    /// The last request sent: retransmissions repeat it.
    last: Option<Box<(u64, Request)>>,
    /// The Contact URI of the last request sent, to find our binding in its
    /// 2xx.
    contact: String,
    /// `+sip.instance` URN of the line (RFC 5626), if it has one.
    instance: Option<String>,
    nonce_seed: u64,
}

impl RegisterRequests {
    /// A builder for `identity`, answering challenges with `digest`; `seed` fixes the branches and tags.
    pub fn new(identity: LineIdentity, digest: DigestClient, seed: u64) -> Self {
        RegisterRequests {
            identity,
            digest,
            challenge: None,
            from_tag: String::new(),
            tag_call_id: String::new(),
            last: None,
            contact: String::new(),
            instance: None,
            nonce_seed: seed,
        }
    }

    /// Gives the line's Contact a `+sip.instance` (a URN such as
    /// `urn:uuid:...`, stable across restarts of the same line on the same
    /// device) and `reg-id=1`, so registrars that support RFC 5626 replace
    /// the line's older bindings.
    pub fn with_instance(mut self, urn: String) -> Self {
        self.instance = Some(urn);
        self
    }

    /// Who the REGISTERs are for.
    pub fn identity(&self) -> &LineIdentity {
        &self.identity
    }

    /// The branch that identifies transaction `transaction` of `call_id`: a
    /// RFC 3261 magic-cookie branch unique per line and transaction.
    pub fn branch(call_id: &str, transaction: u64) -> String {
        format!("z9hG4bK{:016x}{transaction:x}", fnv1a(call_id.as_bytes()))
    }

    /// The bytes to send for `send` over a flow whose local address is
    /// `local`.
    pub fn build(
        &mut self,
        send: &SendRegister,
        local: SocketAddr,
    ) -> Result<Bytes, RegisterBuildError> {
        self.build_request(send, local).map(|r| r.to_bytes())
    }

    /// The request to send for `send` over a flow whose local address is
    /// `local`, as a message the transport serializes once: no bytes are
    /// made here only to be parsed back.
    pub fn build_request(
        &mut self,
        send: &SendRegister,
        local: SocketAddr,
    ) -> Result<Request, RegisterBuildError> {
        if send.retransmission {
            if let Some((tx, request)) = self.last.as_deref() {
                if *tx == send.transaction {
                    return Ok(request.clone());
                }
            }
        }
        if self.tag_call_id != send.call_id {
            self.tag_call_id = send.call_id.clone();
            self.from_tag = format!("{:08x}", fnv1a(send.call_id.as_bytes()) as u32);
        }
        let uri = format!("sip:{}", self.identity.domain);
        let mut req = Request::new(Method::Register, &uri).map_err(|source| {
            RegisterBuildError::RequestUri {
                uri: uri.clone(),
                source,
            }
        })?;
        let transport = send.route.transport;
        let h = req.headers_mut();
        h.push(
            HeaderName::Via,
            format!(
                "SIP/2.0/{} {};branch={};rport",
                transport.as_str().to_ascii_uppercase(),
                host_port(local),
                Self::branch(&send.call_id, send.transaction)
            ),
        );
        h.push_static(HeaderName::MaxForwards, "70");
        let aor = self.identity.aor();
        let display = match &self.identity.display_name {
            Some(name) => format!("\"{}\" ", name.replace('"', "")),
            None => String::new(),
        };
        h.push(
            HeaderName::From,
            format!("{display}<{aor}>;tag={}", self.from_tag),
        );
        h.push(HeaderName::To, format!("{display}<{aor}>"));
        h.push(HeaderName::CallId, send.call_id.clone());
        h.push(HeaderName::CSeq, format!("{} REGISTER", send.cseq));
        let transport_param = match transport {
            Transport::Udp => String::new(),
            other => format!(";transport={}", other.as_str()),
        };
        self.contact = format!(
            "sip:{}@{}{}",
            self.identity.user(),
            host_port(local),
            transport_param
        );
        let instance = match &self.instance {
            Some(urn) => format!(";+sip.instance=\"<{urn}>\";reg-id=1"),
            None => String::new(),
        };
        h.push(HeaderName::Contact, format!("<{}>{instance}", self.contact));
        h.push(HeaderName::Expires, send.expires.to_string());
        h.push(HeaderName::UserAgent, self.identity.user_agent.clone());
        if send.with_credentials {
            let (kind, challenge) = self
                .challenge
                .as_deref()
                .ok_or(RegisterBuildError::NoChallenge)?;
            self.nonce_seed = self
                .nonce_seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let cnonce = format!("{:016x}", self.nonce_seed);
            let info = RequestInfo {
                method: "REGISTER",
                uri: &uri,
                body: &[],
            };
            let auth = self.digest.authorize(*kind, challenge, &info, &cnonce);
            let name = match kind {
                ChallengeKind::Www => HeaderName::Authorization,
                ChallengeKind::Proxy => HeaderName::ProxyAuthorization,
            };
            req.headers_mut().push(name, auth.to_string());
        }
        // Only an unreliable transport retransmits; TCP and TLS keep no copy.
        self.last = (!transport.is_reliable()).then(|| Box::new((send.transaction, req.clone())));
        Ok(req)
    }

    /// Reads a response to one of our REGISTERs; keeps its challenge, if any,
    /// for the next [`SendRegister`] `with_credentials`. A response so broken
    /// that its CSeq cannot be read, or one with another Call-ID or From tag
    /// than our requests, is an error: the caller logs and drops it.
    pub fn read_response(&mut self, response: &Response) -> Result<ReadResponse, ReadError> {
        let headers = response.headers();
        let cseq = headers.cseq()?;
        if headers.call_id()? != self.tag_call_id {
            return Err(ReadError::NotOurs("Call-ID"));
        }
        if headers.from()?.tag() != Some(self.from_tag.as_str()) {
            return Err(ReadError::NotOurs("From tag"));
        }
        let status = response.status().as_u16();
        // A final answer to the request kept for retransmission ends its
        // transaction: an idle line holds no copy of its last REGISTER.
        if status >= 200
            && self
                .last
                .as_deref()
                .is_some_and(|(_, r)| r.headers().cseq().is_ok_and(|c| c.seq == cseq.seq))
        {
            self.last = None;
        }
        let branch = headers
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_string));
        let mut read = RegisterResponse::new(cseq.seq, status);
        if let Ok(Some(secs)) = headers.retry_after() {
            read.retry_after = Some(std::time::Duration::from_secs(secs.into()));
        }
        if (200..300).contains(&status) {
            match self.granted_expires(response) {
                Granted::Ours(expires) => read.expires = expires,
                Granted::NotListed => read.binding_missing = true,
            }
        }
        if status == 423 {
            if let Ok(Some(secs)) = headers.min_expires() {
                read.min_expires = Some(std::time::Duration::from_secs(secs.into()));
            }
        }
        if let Some(kind) = ChallengeKind::from_status(status) {
            let name = match kind {
                ChallengeKind::Www => HeaderName::WwwAuthenticate,
                ChallengeKind::Proxy => HeaderName::ProxyAuthenticate,
            };
            // The first Digest challenge we can answer wins; when none can be
            // answered the machine hears why and ends the attempt at once.
            let mut why = None;
            self.challenge = headers
                .get_all(name)
                .find_map(|v| match Challenge::parse(v) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        why.get_or_insert_with(|| e.to_string());
                        None
                    }
                })
                .map(|c| Box::new((kind, c)));
            match self.challenge.as_deref() {
                Some((_, c)) => read.stale = c.stale,
                None => {
                    read.unusable_challenge =
                        Some(why.unwrap_or_else(|| format!("no {} header", name.as_str())))
                }
            }
        }
        Ok(ReadResponse {
            response: read,
            branch,
        })
    }

    /// Whether a copy of the last request is kept for retransmission (only
    /// while an unreliable transaction waits for its final answer).
    pub fn holds_request(&self) -> bool {
        self.last.is_some()
    }

    /// Whether a challenge is held, i.e. a credentialed retry can be built.
    pub fn has_challenge(&self) -> bool {
        self.challenge.is_some()
    }

    /// The expiry the registrar granted to *our* binding (RFC 3261 10.2.4):
    /// the `expires` parameter of the Contact equal to the one we sent (or
    /// carrying our instance), else the Expires header. A 2xx that lists
    /// Contacts, none of them ours, did not take our binding. A 2xx without
    /// any Contact (RFC 3261 says SHOULD list them) is read leniently: the
    /// Expires header, or what was asked.
    fn granted_expires(&self, response: &Response) -> Granted {
        let headers = response.headers();
        let header = || {
            headers
                .expires()
                .ok()
                .flatten()
                .map(|s| std::time::Duration::from_secs(s.into()))
        };
        let Ok(sent) = crate::message::Uri::parse(&self.contact) else {
            return Granted::Ours(header());
        };
        let mut listed = false;
        for contact in headers.contacts().filter_map(Result::ok) {
            listed = true;
            let same_instance = self.instance.as_deref().is_some_and(|urn| {
                contact
                    .params()
                    .value("+sip.instance")
                    .is_some_and(|v| v.trim_matches('"').trim_matches(['<', '>']) == urn)
            });
            if contact.uri().equivalent(&sent) || same_instance {
                let secs = contact
                    .expires()
                    .map(|s| std::time::Duration::from_secs(s.into()));
                return Granted::Ours(secs.or_else(header));
            }
        }
        if listed {
            Granted::NotListed
        } else {
            Granted::Ours(header())
        }
    }
}

/// What a 2xx says of our binding.
enum Granted {
    /// Ours is listed (or nothing is): its expiry, if one is written.
    Ours(Option<std::time::Duration>),
    /// Other bindings are listed, ours is not.
    NotListed,
}

fn host_port(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// FNV-1a: a stable, dependency-free hash for tags and branches, which need
/// uniqueness per Call-ID, not cryptographic strength.
fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Secret;
    use crate::message::{Message, StatusCode};
    use crate::route::{Route, RouteSource};

    fn route(t: Transport) -> Route {
        Route {
            transport: t,
            host: "sbc1.example.com".into(),
            addr: "127.0.0.11:5060".parse().unwrap(),
            group: 0,
            priority: 0,
            weight: 0,
            source: RouteSource::Network,
        }
    }

    fn requests() -> RegisterRequests {
        RegisterRequests::new(
            LineIdentity {
                address: "1001".into(),
                display_name: Some("Alice".into()),
                domain: "example.com".into(),
                user_agent: "sipfleet/test".into(),
            },
            DigestClient::new("1001", Secret::new("pw1001")),
            7,
        )
    }

    fn send(tx: u64, cseq: u32, retrans: bool, creds: bool) -> SendRegister {
        SendRegister {
            route: route(Transport::Tcp),
            call_id: "abc@host".into(),
            cseq,
            transaction: tx,
            expires: 3600,
            retransmission: retrans,
            with_credentials: creds,
        }
    }

    #[test]
    fn builds_a_register_that_parses_with_via_contact_and_expires() {
        let mut r = requests();
        let bytes = r
            .build(
                &send(1, 1, false, false),
                "127.0.0.1:40000".parse().unwrap(),
            )
            .unwrap();
        let msg = Message::parse(bytes).unwrap();
        let req = msg.as_request().unwrap();
        assert_eq!(req.method(), &Method::Register);
        assert_eq!(req.uri_str(), "sip:example.com");
        let h = req.headers();
        let via = h.top_via().unwrap();
        assert_eq!(via.transport(), "TCP");
        assert_eq!(via.host(), "127.0.0.1");
        assert_eq!(via.port(), Some(40000));
        assert_eq!(via.rport(), Some(None));
        assert_eq!(
            via.branch(),
            Some(RegisterRequests::branch("abc@host", 1).as_str())
        );
        assert!(via.branch().unwrap().starts_with("z9hG4bK"));
        assert_eq!(h.from().unwrap().uri().as_str(), "sip:1001@example.com");
        assert!(h.from().unwrap().tag().is_some());
        assert_eq!(h.to().unwrap().tag(), None);
        assert_eq!(h.call_id().unwrap(), "abc@host");
        assert_eq!(h.cseq().unwrap().seq, 1);
        let contact = h.contacts().next().unwrap().unwrap();
        assert_eq!(contact.uri().user(), Some("1001"));
        assert_eq!(contact.uri().params().get("transport"), Some(Some("tcp")));
        assert_eq!(h.expires().unwrap(), Some(3600));
    }

    #[test]
    fn retransmission_repeats_the_same_bytes_and_new_transactions_differ() {
        let mut r = requests();
        let local = "127.0.0.1:40000".parse().unwrap();
        let first = r.build(&send(1, 1, false, false), local).unwrap();
        let again = r.build(&send(1, 1, true, false), local).unwrap();
        assert_eq!(first, again);
        let next = r.build(&send(2, 2, false, false), local).unwrap();
        assert_ne!(first, next);
        assert_ne!(
            RegisterRequests::branch("abc@host", 1),
            RegisterRequests::branch("abc@host", 2)
        );
    }

    fn response_to(req: &Bytes, status: u16, extra: &[(HeaderName, &str)]) -> Response {
        let msg = Message::parse(req.clone()).unwrap();
        let mut resp = Response::for_request(
            msg.as_request().unwrap(),
            StatusCode::new(status).unwrap(),
            Some("srv"),
        );
        for (name, value) in extra {
            resp.headers_mut().push(*name, *value);
        }
        Message::parse(resp.to_bytes())
            .unwrap()
            .as_response()
            .unwrap()
            .clone()
    }

    /// A UDP REGISTER is kept for its retransmissions until its final
    /// answer, then let go (an idle line holds no copy); TCP keeps none.
    #[test]
    fn the_last_request_is_kept_only_while_udp_may_retransmit_it() {
        let mut r = requests();
        let local = "127.0.0.1:40000".parse().unwrap();
        let udp = SendRegister {
            route: route(Transport::Udp),
            ..send(1, 1, false, false)
        };
        let first = r.build(&udp, local).unwrap();
        assert!(r.holds_request());
        let again = r
            .build(
                &SendRegister {
                    retransmission: true,
                    ..udp.clone()
                },
                local,
            )
            .unwrap();
        assert_eq!(first, again);
        r.read_response(&response_to(&first, 100, &[])).unwrap();
        assert!(r.holds_request(), "a provisional answer ends nothing");
        r.read_response(&response_to(&first, 401, &[])).unwrap();
        assert!(!r.holds_request());
        r.build(&send(2, 2, false, false), local).unwrap();
        assert!(!r.holds_request(), "TCP retransmits nothing");
    }

    #[test]
    fn challenge_then_credentials_answer_it() {
        let mut r = requests();
        let local = "127.0.0.1:40000".parse().unwrap();
        assert!(matches!(
            r.build(&send(1, 1, false, true), local),
            Err(RegisterBuildError::NoChallenge)
        ));
        let first = r.build(&send(1, 1, false, false), local).unwrap();
        let resp = response_to(
            &first,
            401,
            &[(
                HeaderName::WwwAuthenticate,
                "Digest realm=\"example.com\", nonce=\"n1\", qop=\"auth\"",
            )],
        );
        let read = r.read_response(&resp).unwrap();
        assert_eq!(read.response.status, 401);
        assert_eq!(read.response.cseq, 1);
        assert!(!read.response.stale);
        assert!(r.has_challenge());
        let second = r.build(&send(2, 2, false, true), local).unwrap();
        let msg = Message::parse(second).unwrap();
        let auth = msg.headers().get(HeaderName::Authorization).unwrap();
        assert!(auth.starts_with("Digest username=\"1001\""), "{auth}");
        assert!(auth.contains("nc=00000001"), "{auth}");
        assert!(!auth.contains("pw1001"), "the password must never be sent");
    }

    #[test]
    fn granted_expiry_prefers_our_contact_parameter() {
        let mut r = requests();
        let local = "127.0.0.1:40000".parse().unwrap();
        let req = r.build(&send(1, 1, false, false), local).unwrap();
        let resp = response_to(
            &req,
            200,
            &[
                (HeaderName::Contact, "<sip:other@10.0.0.1>;expires=900"),
                (
                    HeaderName::Contact,
                    "<sip:1001@127.0.0.1:40000;transport=tcp>;expires=120",
                ),
                (HeaderName::Expires, "3600"),
            ],
        );
        let read = r.read_response(&resp).unwrap();
        assert_eq!(
            read.response.expires,
            Some(std::time::Duration::from_secs(120))
        );
        assert_eq!(
            read.branch.as_deref(),
            Some(RegisterRequests::branch("abc@host", 1).as_str())
        );
    }

    #[test]
    fn min_expires_is_read_from_a_423() {
        let mut r = requests();
        let local = "127.0.0.1:40000".parse().unwrap();
        let req = r.build(&send(1, 1, false, false), local).unwrap();
        let resp = response_to(&req, 423, &[(HeaderName::MinExpires, "7200")]);
        let read = r.read_response(&resp).unwrap();
        assert_eq!(
            read.response.min_expires,
            Some(std::time::Duration::from_secs(7200))
        );
    }

    #[test]
    fn retry_after_is_read_from_a_503() {
        let mut r = requests();
        let local = "127.0.0.1:40000".parse().unwrap();
        let req = r.build(&send(1, 1, false, false), local).unwrap();
        let resp = response_to(&req, 503, &[(HeaderName::RetryAfter, "30")]);
        let read = r.read_response(&resp).unwrap();
        assert_eq!(
            read.response.retry_after,
            Some(std::time::Duration::from_secs(30))
        );
        assert_eq!(read.response.expires, None);
    }

    fn ok_with_contacts(
        r: &mut RegisterRequests,
        contacts: &[&str],
        expires: Option<&str>,
    ) -> ReadResponse {
        let local = "127.0.0.1:40000".parse().unwrap();
        let req = r.build(&send(1, 1, false, false), local).unwrap();
        let mut extra: Vec<(HeaderName, &str)> =
            contacts.iter().map(|c| (HeaderName::Contact, *c)).collect();
        if let Some(e) = expires {
            extra.push((HeaderName::Expires, e));
        }
        r.read_response(&response_to(&req, 200, &extra)).unwrap()
    }

    /// Another device on the same AOR (same user part) is listed first with
    /// its 3600 s binding: the line reads its own, not the first user match.
    #[test]
    fn granted_expiry_is_our_contacts_not_another_devices() {
        let mut r = requests();
        let read = ok_with_contacts(
            &mut r,
            &[
                "<sip:1001@10.9.9.9:5060>;expires=3589",
                "<sip:1001@127.0.0.1:40000;TRANSPORT=TCP>;expires=20",
            ],
            None,
        );
        assert_eq!(
            read.response.expires,
            Some(std::time::Duration::from_secs(20))
        );
        assert!(!read.response.binding_missing);
    }

    #[test]
    fn a_2xx_listing_only_other_bindings_is_missing_ours() {
        let mut r = requests();
        let read = ok_with_contacts(
            &mut r,
            &["<sip:1001@10.9.9.9:5060>;expires=3589"],
            Some("3600"),
        );
        assert!(read.response.binding_missing);
        // Our old binding from another local port is not ours either.
        let read = ok_with_contacts(
            &mut r,
            &["<sip:1001@127.0.0.1:40001;transport=tcp>;expires=60"],
            None,
        );
        assert!(read.response.binding_missing);
    }

    #[test]
    fn a_2xx_without_contacts_uses_the_expires_header() {
        let mut r = requests();
        let read = ok_with_contacts(&mut r, &[], Some("120"));
        assert_eq!(
            read.response.expires,
            Some(std::time::Duration::from_secs(120))
        );
        assert!(!read.response.binding_missing);
    }

    /// An Expires beyond 2^32-1 is a bad header, not a dropped response.
    #[test]
    fn an_over_range_expires_is_a_bad_header_not_a_lost_response() {
        let mut r = requests();
        let read = ok_with_contacts(
            &mut r,
            &["<sip:1001@127.0.0.1:40000;transport=tcp>"],
            Some("99999999999"),
        );
        assert_eq!(read.response.status, 200);
        assert_eq!(read.response.expires, None);
        let read = ok_with_contacts(
            &mut r,
            &["<sip:1001@127.0.0.1:40000;transport=tcp>;expires=99999999999"],
            Some("30"),
        );
        assert_eq!(
            read.response.expires,
            Some(std::time::Duration::from_secs(30))
        );
    }

    #[test]
    fn the_contact_carries_the_instance_and_a_rewritten_uri_is_found_by_it() {
        let urn = "urn:uuid:00000000-0000-4000-8000-000000000001";
        let mut r = requests().with_instance(urn.into());
        let local = "127.0.0.1:40000".parse().unwrap();
        let req = r.build(&send(1, 1, false, false), local).unwrap();
        let msg = Message::parse(req.clone()).unwrap();
        let contact = msg.headers().contacts().next().unwrap().unwrap();
        assert_eq!(
            contact.params().value("+sip.instance"),
            Some(format!("\"<{urn}>\"").as_str())
        );
        assert_eq!(contact.params().value("reg-id"), Some("1"));
        let resp = response_to(
            &req,
            200,
            &[(
                HeaderName::Contact,
                "<sip:1001@192.0.2.7:1234>;expires=45;+sip.instance=\"<urn:uuid:00000000-0000-4000-8000-000000000001>\";reg-id=1",
            )],
        );
        let read = r.read_response(&resp).unwrap();
        assert_eq!(
            read.response.expires,
            Some(std::time::Duration::from_secs(45))
        );
    }

    #[test]
    fn responses_with_another_call_id_or_from_tag_are_not_ours() {
        let mut r = requests();
        let local = "127.0.0.1:40000".parse().unwrap();
        let req = r.build(&send(1, 1, false, false), local).unwrap();
        let text = String::from_utf8(response_to(&req, 200, &[]).to_bytes().to_vec()).unwrap();
        let other_call = text.replace("Call-ID: abc@host", "Call-ID: evil@host");
        let msg = Message::parse(Bytes::from(other_call)).unwrap();
        assert!(matches!(
            r.read_response(msg.as_response().unwrap()),
            Err(ReadError::NotOurs("Call-ID"))
        ));
        let tag = format!("tag={}", r.from_tag);
        let other_tag = text.replace(&tag, "tag=evil");
        let msg = Message::parse(Bytes::from(other_tag)).unwrap();
        assert!(matches!(
            r.read_response(msg.as_response().unwrap()),
            Err(ReadError::NotOurs("From tag"))
        ));
    }

    #[test]
    fn challenges_that_cannot_be_answered_say_why() {
        for header in [
            "Basic realm=\"x\"",
            "Digest realm=\"x\", nonce=\"n\", algorithm=SHA-512-256-sess-unknown",
            "Digest realm=\"x\", nonce=\"n\", qop=\"auth-conf\"",
            "Digest nonce=\"n\"",
            "Digest realm=\"x\", nonce=\"unterminated",
        ] {
            let mut r = requests();
            let local = "127.0.0.1:40000".parse().unwrap();
            let req = r.build(&send(1, 1, false, false), local).unwrap();
            let resp = response_to(&req, 401, &[(HeaderName::WwwAuthenticate, header)]);
            let read = r.read_response(&resp).unwrap();
            assert!(read.response.unusable_challenge.is_some(), "{header}");
            assert!(!r.has_challenge(), "{header}");
        }
        let mut r = requests();
        let local = "127.0.0.1:40000".parse().unwrap();
        let req = r.build(&send(1, 1, false, false), local).unwrap();
        let read = r.read_response(&response_to(&req, 401, &[])).unwrap();
        assert_eq!(
            read.response.unusable_challenge.as_deref(),
            Some("no WWW-Authenticate header")
        );
    }
}
