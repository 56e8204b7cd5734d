//! Requests that reach a line outside any dialog or subscription it runs,
//! and the answers a line gives without keeping state.
//!
//! | request                         | answer                                   |
//! |---------------------------------|------------------------------------------|
//! | INVITE without a To tag         | a new call ([`Dispatch::NewCall`])       |
//! | ACK                             | nothing (ACKs are never answered)        |
//! | OPTIONS without a To tag        | 200 with [`ALLOW`] (RFC 3261 11.2)       |
//! | any other request with a To tag | 481 (no such dialog, RFC 3261 12.2.2)    |
//! | BYE, CANCEL, NOTIFY, INFO       | 481 (they only exist in a dialog)        |
//! | anything else                   | 501 with [`ALLOW`] (RFC 3261 8.2.1)      |
//!
//! Every stateless answer carries a To tag of its own, derived from the
//! request (Call-ID, From tag, top branch): a retransmitted request gets the
//! same answer byte for byte, as RFC 3261 requires, without any state, and
//! two requests never share a tag (RFC 3261 8.2.6.2: the tag must be
//! globally unique).

use crate::message::{HeaderName, Method, Request, Response, StatusCode};

/// The methods a line accepts, in every `Allow` it sends: its INVITEs,
/// its OPTIONS answers and its 501s say the same.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY";

/// What to do with a request no dialog of the line claimed.
#[derive(Debug)]
pub enum Dispatch {
    /// An INVITE that starts a call.
    NewCall,
    /// Send this answer on the request's flow.
    Answer(Response),
    /// Nothing to send (an ACK).
    Ignore,
}

/// The rule of the table above.
pub fn dispatch(request: &Request) -> Dispatch {
    let has_to_tag = request.headers().to().is_ok_and(|to| to.tag().is_some());
    match request.method() {
        Method::Ack => Dispatch::Ignore,
        Method::Invite if !has_to_tag => Dispatch::NewCall,
        Method::Options if !has_to_tag => {
            let mut ok = stateless_answer(request, StatusCode::OK);
            ok.headers_mut().push(HeaderName::Allow, ALLOW);
            Dispatch::Answer(ok)
        }
        Method::Invite | Method::Bye | Method::Cancel | Method::Notify | Method::Info => {
            Dispatch::Answer(no_dialog(request))
        }
        _ if has_to_tag => Dispatch::Answer(no_dialog(request)),
        _ => {
            let status = StatusCode::new(501).unwrap_or(StatusCode::BAD_REQUEST);
            let mut not_implemented = stateless_answer(request, status);
            not_implemented.headers_mut().push(HeaderName::Allow, ALLOW);
            Dispatch::Answer(not_implemented)
        }
    }
}

/// 481 Call/Transaction Does Not Exist.
pub fn no_dialog(request: &Request) -> Response {
    stateless_answer(request, StatusCode::CALL_DOES_NOT_EXIST)
}

/// `status` for `request`, with a To tag of its own when the request has
/// none (see the module docs).
pub fn stateless_answer(request: &Request, status: StatusCode) -> Response {
    Response::for_request(request, status, Some(&stateless_tag(request)))
}

/// A To tag derived from the request: the same for its retransmissions,
/// different for any other request.
pub fn stateless_tag(request: &Request) -> String {
    let h = request.headers();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |s: &str| {
        for b in s.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    mix(h.call_id().unwrap_or_default());
    mix(h.from().ok().and_then(|f| f.tag()).unwrap_or_default());
    mix(h
        .top_via()
        .ok()
        .and_then(|v| v.branch())
        .unwrap_or_default());
    mix(request.method().as_str());
    format!("sl{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;

    fn request(method: &str, to_tag: bool, branch: &str) -> Request {
        let to = if to_tag { ";tag=theirs" } else { "" };
        let text = format!(
            "{method} sip:1001@127.0.0.1:5070 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.11:5060;branch={branch}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:9001@lab.sipfleet.test>;tag=caller\r\n\
             To: <sip:1001@lab.sipfleet.test>{to}\r\n\
             Call-ID: c1@sbc\r\n\
             CSeq: 1 {method}\r\n\
             Content-Length: 0\r\n\r\n"
        );
        match Message::parse(text.into_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    fn answer(d: Dispatch) -> Response {
        match d {
            Dispatch::Answer(r) => r,
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    #[test]
    fn the_table_of_the_module_docs() {
        assert!(matches!(
            dispatch(&request("INVITE", false, "z9hG4bK1")),
            Dispatch::NewCall
        ));
        assert!(matches!(
            dispatch(&request("ACK", false, "z9hG4bK1")),
            Dispatch::Ignore
        ));
        let ok = answer(dispatch(&request("OPTIONS", false, "z9hG4bK1")));
        assert_eq!(ok.status().as_u16(), 200);
        assert_eq!(ok.headers().get(HeaderName::Allow), Some(ALLOW));
        for (method, tag) in [
            ("INVITE", true),
            ("BYE", false),
            ("CANCEL", false),
            ("NOTIFY", false),
            ("INFO", false),
            ("OPTIONS", true),
            ("MESSAGE", true),
        ] {
            let r = answer(dispatch(&request(method, tag, "z9hG4bK1")));
            assert_eq!(r.status().as_u16(), 481, "{method}");
        }
        let r = answer(dispatch(&request("MESSAGE", false, "z9hG4bK1")));
        assert_eq!(r.status().as_u16(), 501);
        assert_eq!(r.headers().get(HeaderName::Allow), Some(ALLOW));
    }

    /// Per-request tags: a retransmission gets the same one, another
    /// request another; a To tag already there is kept.
    #[test]
    fn tags_are_per_request_and_stable_for_retransmissions() {
        let tag = |r: &Response| r.headers().to().unwrap().tag().unwrap().to_owned();
        let a = answer(dispatch(&request("OPTIONS", false, "z9hG4bK1")));
        let again = answer(dispatch(&request("OPTIONS", false, "z9hG4bK1")));
        let other = answer(dispatch(&request("OPTIONS", false, "z9hG4bK2")));
        assert_eq!(tag(&a), tag(&again));
        assert_ne!(tag(&a), tag(&other));
        assert_eq!(a.to_bytes(), again.to_bytes());
        let in_dialog = answer(dispatch(&request("BYE", true, "z9hG4bK3")));
        assert_eq!(tag(&in_dialog), "theirs");
    }
}
