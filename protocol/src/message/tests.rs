//! Unit tests of the message model (RFC 4475 conformance lives in
//! `protocol/tests/rfc4475.rs`).

use super::*;

const REGISTER: &str = "REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=456248\r\n\
To: <sip:alice@example.com>\r\n\
Call-ID: 843817637684230@998sdasdh09\r\n\
CSeq: 1826 REGISTER\r\n\
Contact: <sip:alice@192.0.2.1:5060;transport=udp>;expires=3600, \"x,y\" <sip:b@[2001:db8::1]:5070>;q=0.5\r\n\
Expires: 7200\r\n\
Content-Length: 0\r\n\r\n";

#[test]
fn header_names_round_trip() {
    use HeaderName::*;
    for h in [
        Accept,
        Allow,
        AllowEvents,
        Authorization,
        CallId,
        CallInfo,
        Contact,
        ContentDisposition,
        ContentEncoding,
        ContentLength,
        ContentType,
        CSeq,
        Date,
        Event,
        Expires,
        From,
        MaxForwards,
        MinExpires,
        Path,
        ProxyAuthenticate,
        ProxyAuthorization,
        ProxyRequire,
        RecordRoute,
        ReferTo,
        ReferredBy,
        Require,
        RetryAfter,
        Route,
        Server,
        ServiceRoute,
        SessionExpires,
        Subject,
        SubscriptionState,
        Supported,
        To,
        Unsupported,
        UserAgent,
        Via,
        Warning,
        WwwAuthenticate,
    ] {
        assert_eq!(HeaderName::parse(h.as_str().as_bytes()), h, "{h}");
        assert_eq!(HeaderName::parse(h.as_str().to_uppercase().as_bytes()), h);
    }
    assert_eq!(HeaderName::parse(b"X-Foo"), Other);
    for (c, h) in [
        ("i", CallId),
        ("m", Contact),
        ("e", ContentEncoding),
        ("l", ContentLength),
        ("f", From),
        ("t", To),
        ("v", Via),
        ("c", ContentType),
        ("k", Supported),
        ("o", Event),
        ("s", Subject),
        ("u", AllowEvents),
    ] {
        assert_eq!(HeaderName::parse(c.as_bytes()), h);
        assert_eq!(HeaderName::parse(c.to_uppercase().as_bytes()), h);
    }
}

#[test]
fn register_typed_access() {
    let m = Message::parse(REGISTER.as_bytes().to_vec()).unwrap();
    let req = m.as_request().unwrap();
    assert_eq!(req.method(), &Method::Register);
    assert_eq!(req.uri().unwrap().host(), "example.com");
    let h = m.headers();
    let via = h.top_via().unwrap();
    assert_eq!(via.transport(), "UDP");
    assert_eq!(via.host(), "192.0.2.1");
    assert_eq!(via.port(), Some(5060));
    assert_eq!(via.branch(), Some("z9hG4bK776"));
    assert_eq!(via.rport(), Some(None));
    let from = h.from().unwrap();
    assert_eq!(from.display_name(), Some("\"Alice\""));
    assert_eq!(from.tag(), Some("456248"));
    assert_eq!(from.uri().user(), Some("alice"));
    assert_eq!(h.to().unwrap().tag(), None);
    assert_eq!(h.call_id().unwrap(), "843817637684230@998sdasdh09");
    assert_eq!(
        h.cseq().unwrap(),
        CSeq {
            seq: 1826,
            method: Method::Register
        }
    );
    let contacts: Vec<_> = h.contacts().collect::<Result<_, _>>().unwrap();
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[0].expires(), Some(3600));
    assert_eq!(contacts[0].uri().params().value("transport"), Some("udp"));
    assert_eq!(contacts[1].display_name(), Some("\"x,y\""));
    assert_eq!(contacts[1].uri().host(), "[2001:db8::1]");
    assert_eq!(contacts[1].uri().port(), Some(5070));
    assert_eq!(contacts[1].q(), Some("0.5"));
    assert_eq!(h.expires().unwrap(), Some(7200));
    assert_eq!(h.max_forwards().unwrap(), Some(70));
    assert_eq!(h.content_length().unwrap(), Some(0));
    assert!(m.body().is_empty());
}

#[test]
fn www_authenticate_is_not_split() {
    let raw = "SIP/2.0 401 Unauthorized\r\n\
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa, SIP/2.0/TCP proxy.example.com:5061;branch=z9hG4bKb;received=192.0.2.9\r\n\
From: <sip:a@example.com>;tag=1\r\n\
To: <sip:a@example.com>;tag=2\r\n\
Call-ID: c1\r\n\
CSeq: 2 REGISTER\r\n\
WWW-Authenticate: Digest realm=\"example.com\", qop=\"auth,auth-int\", nonce=\"abc\", algorithm=MD5\r\n\
WWW-Authenticate: Digest realm=\"example.com\", nonce=\"def\", algorithm=SHA-256\r\n\
Retry-After: 30 (busy);duration=10\r\n\
l: 0\r\n\r\n";
    let m = Message::parse(raw.as_bytes().to_vec()).unwrap();
    let r = m.as_response().unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.reason(), "Unauthorized");
    let h = m.headers();
    let vias: Vec<_> = h.vias().collect::<Result<_, _>>().unwrap();
    assert_eq!(vias.len(), 2);
    assert_eq!(vias[1].received(), Some("192.0.2.9"));
    assert_eq!(vias[1].port(), Some(5061));
    let ch: Vec<_> = h.www_authenticate().collect::<Result<_, _>>().unwrap();
    assert_eq!(ch.len(), 2);
    assert_eq!(ch[0].scheme(), "Digest");
    assert_eq!(ch[0].param("qop"), Some("auth,auth-int"));
    assert_eq!(ch[0].param("NONCE"), Some("abc"));
    assert_eq!(ch[1].param("algorithm"), Some("SHA-256"));
    assert_eq!(h.retry_after().unwrap(), Some(30));
    assert_eq!(
        h.values(HeaderName::WwwAuthenticate).count(),
        2,
        "auth params are not list elements"
    );
}

#[test]
fn folded_and_compact_headers() {
    let raw = "NOTIFY sip:a@192.0.2.1 SIP/2.0\r\n\
v: SIP/2.0/TCP\r\n  host.example.com;branch=z9hG4bKx\r\n\
f: <sip:b@example.com>;tag=9\r\n\
t: <sip:a@example.com>;tag=8\r\n\
i: id-1\r\n\
CSeq: 7 NOTIFY\r\n\
o: presence;id=4\r\n\
Subscription-State: active;expires=60\r\n\
c: application/pidf+xml\r\n\
k: path, outbound\r\n\
X-Thing: a,\r\n\tb\r\n\
l: 5\r\n\r\nhello";
    let m = Message::parse(raw.as_bytes().to_vec()).unwrap();
    let h = m.headers();
    assert_eq!(h.top_via().unwrap().host(), "host.example.com");
    assert_eq!(h.event().unwrap().unwrap().value(), "presence");
    assert_eq!(h.event().unwrap().unwrap().params().value("id"), Some("4"));
    let ss = h.subscription_state().unwrap().unwrap();
    assert_eq!(
        (ss.value(), ss.params().value("expires")),
        ("active", Some("60"))
    );
    assert_eq!(
        h.content_type().unwrap().unwrap().value(),
        "application/pidf+xml"
    );
    assert_eq!(h.supported().collect::<Vec<_>>(), ["path", "outbound"]);
    assert_eq!(h.get_other("x-thing"), Some("a, b"));
    assert_eq!(&m.body()[..], b"hello");
    let again = Message::parse(m.to_bytes()).unwrap();
    assert_eq!(again, m);
}

#[test]
fn errors_name_the_part() {
    let bad_port = REGISTER.replace("192.0.2.1:5060;branch", "192.0.2.1:99999;branch");
    assert_eq!(
        Message::parse(bad_port.into_bytes()).unwrap_err(),
        ParseError::Header {
            header: HeaderName::Via,
            reason: "sent-by port out of range"
        }
    );
    let bad_cseq = REGISTER.replace("1826 REGISTER", "1826 INVITE");
    assert_eq!(
        Message::parse(bad_cseq.into_bytes()).unwrap_err(),
        ParseError::CSeqMethodMismatch
    );
    let no_blank = &REGISTER[..REGISTER.len() - 3];
    assert!(matches!(
        Message::parse(no_blank.as_bytes().to_vec()),
        Err(ParseError::Truncated(_))
    ));
    let short_body = REGISTER.replace("Content-Length: 0", "Content-Length: 10");
    assert_eq!(
        Message::parse(short_body.into_bytes()).unwrap_err(),
        ParseError::BodyTruncated {
            declared: 10,
            available: 0
        }
    );
    let no_colon = REGISTER.replace("Expires: 7200", "Expires 7200");
    assert!(matches!(
        Message::parse(no_colon.into_bytes()),
        Err(ParseError::HeaderLine {
            line: 9,
            reason: "no colon"
        })
    ));
}

#[test]
fn build_request_and_response() {
    let mut req = Request::new(Method::Invite, "sip:bob@example.com;transport=tcp").unwrap();
    let h = req.headers_mut();
    h.push(
        HeaderName::Via,
        "SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bKnew",
    );
    h.push(HeaderName::MaxForwards, "70");
    h.push(HeaderName::From, "<sip:alice@example.com>;tag=abc");
    h.push(HeaderName::To, "<sip:bob@example.com>");
    h.push(HeaderName::CallId, "call-1@192.0.2.1");
    h.push(HeaderName::CSeq, "1 INVITE");
    h.push(HeaderName::RecordRoute, "<sip:p1.example.com;lr>");
    h.push_other("X-Custom", "yes").unwrap();
    h.prepend(HeaderName::Via, "SIP/2.0/TCP 10.0.0.1;branch=z9hG4bKtop");
    h.push(HeaderName::ContentType, "application/sdp");
    req.set_body(&b"v=0\r\n"[..]);
    let wire = req.to_bytes();
    let text = std::str::from_utf8(&wire).unwrap();
    assert!(text.starts_with("INVITE sip:bob@example.com;transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bKtop\r\n"));
    assert!(text.ends_with("Content-Length: 5\r\n\r\nv=0\r\n"));
    let parsed = Message::parse(wire.clone()).unwrap();
    assert_eq!(parsed, Message::Request(req.clone()));
    assert_eq!(parsed.headers().get_other("x-custom"), Some("yes"));

    let resp = Response::for_request(&req, StatusCode::OK, Some("totag"));
    let h = resp.headers();
    assert_eq!(h.count(HeaderName::Via), 2);
    assert_eq!(h.top_via().unwrap().branch(), Some("z9hG4bKtop"));
    assert_eq!(h.to().unwrap().tag(), Some("totag"));
    assert_eq!(h.from().unwrap().tag(), Some("abc"));
    assert_eq!(h.call_id().unwrap(), "call-1@192.0.2.1");
    assert_eq!(h.cseq().unwrap().seq, 1);
    assert_eq!(h.count(HeaderName::RecordRoute), 1);
    assert_eq!(h.count(HeaderName::MaxForwards), 0);
    let wire = resp.to_bytes();
    assert!(wire.starts_with(b"SIP/2.0 200 OK\r\n"));
    assert_eq!(Message::parse(wire).unwrap(), Message::Response(resp));

    let trying = Response::for_request(&req, StatusCode::TRYING, None);
    assert_eq!(trying.headers().to().unwrap().tag(), None);
    assert_eq!(trying.headers().count(HeaderName::RecordRoute), 0);
}

#[test]
fn set_and_remove() {
    let mut m = Message::parse(REGISTER.as_bytes().to_vec()).unwrap();
    let h = m.headers_mut();
    h.set(HeaderName::Expires, "0");
    h.push(HeaderName::Contact, "*");
    h.set(HeaderName::Contact, "*");
    assert_eq!(h.count(HeaderName::Contact), 1);
    assert!(h.contact_is_star());
    assert_eq!(h.contacts().count(), 0);
    assert_eq!(h.expires().unwrap(), Some(0));
    assert_eq!(h.branch().unwrap(), Some("z9hG4bK776"));
    h.prepend(
        HeaderName::Via,
        "SIP/2.0/TCP proxy.example.com;branch=z9hG4bKnew",
    );
    assert_eq!(
        h.branch().unwrap(),
        Some("z9hG4bKnew"),
        "cached branch dropped on change"
    );
    h.set(HeaderName::From, "<sip:x@example.com>;tag=changed");
    assert_eq!(h.from_tag().unwrap(), Some("changed"));
    assert_eq!(h.remove(HeaderName::Via), 2);
    assert_eq!(
        h.branch().unwrap_err(),
        ParseError::MissingHeader(HeaderName::Via)
    );
    assert_eq!(
        h.top_via().unwrap_err(),
        ParseError::MissingHeader(HeaderName::Via)
    );
    assert_eq!(h.remove_other("expires"), 1);
    let again = Message::parse(m.to_bytes()).unwrap();
    assert_eq!(again, m);
}

#[test]
fn uris() {
    let u =
        Uri::parse("sips:alice:secret@[2001:db8::5]:5061;transport=tls;lr?subject=hi&x=y").unwrap();
    assert_eq!(u.scheme(), Scheme::Sips);
    assert_eq!(u.user(), Some("alice"));
    assert_eq!(u.password(), Some("secret"));
    assert_eq!(u.host(), "[2001:db8::5]");
    assert_eq!(u.port(), Some(5061));
    assert!(u.params().contains("lr"));
    assert_eq!(u.headers(), Some("subject=hi&x=y"));
    let t = Uri::parse("tel:+1-201-555-0123;phone-context=example.com").unwrap();
    assert_eq!(
        (t.scheme(), t.user()),
        (Scheme::Tel, Some("+1-201-555-0123"))
    );
    assert_eq!(t.params().value("phone-context"), Some("example.com"));
    assert_eq!(
        Uri::parse("urn:service:sos").unwrap().scheme(),
        Scheme::Other("urn")
    );
    assert!(Uri::parse("sip:host:70000").is_err());
    assert!(Uri::parse("sip:a b@host").is_err());
    assert!(Uri::parse("sip:[::1").is_err());
    assert!(Uri::parse("sip:@host").is_err());
}

/// The facts the parser records (Call-ID, CSeq, Expires, branch, tags) give
/// the same answers as reading the headers: first line wins, folded values
/// and extension methods fall back to reading, and any change to the headers
/// drops them.
#[test]
fn recorded_facts_agree_with_the_headers() {
    let two = REGISTER
        .replace("Expires: 7200\r\n", "Expires: 7200\r\nExpires: 60\r\n")
        .replace(
            "CSeq: 1826 REGISTER\r\n",
            "CSeq: 1826 REGISTER\r\nCSeq: 9 REGISTER\r\n",
        )
        .replace(
            "Call-ID: 843817637684230@998sdasdh09\r\n",
            "Call-ID:  843817637684230@998sdasdh09 \r\nCall-ID: other\r\n",
        );
    let m = Message::parse(two.into_bytes()).unwrap();
    let h = m.headers();
    assert_eq!(h.expires().unwrap(), Some(7200));
    assert_eq!(
        h.cseq().unwrap(),
        CSeq {
            seq: 1826,
            method: Method::Register
        }
    );
    assert_eq!(h.call_id().unwrap(), "843817637684230@998sdasdh09");

    // Folded Call-ID and CSeq, extension method: read from the headers.
    let folded = "FOO sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
                  Call-ID:\r\n  abc@h\r\nCSeq: 7\r\n FOO\r\nContent-Length: 0\r\n\r\n";
    let m = Message::parse(folded.as_bytes().to_vec()).unwrap();
    let h = m.headers();
    assert_eq!(h.call_id().unwrap(), "abc@h");
    assert_eq!(h.cseq().unwrap().method, Method::Extension("FOO".into()));
    assert_eq!(h.cseq().unwrap().seq, 7);
    assert_eq!(h.expires().unwrap(), None);

    // Changes drop the record.
    let mut m = Message::parse(REGISTER.as_bytes().to_vec()).unwrap();
    let h = m.headers_mut();
    h.set(HeaderName::Expires, "30");
    h.set(HeaderName::CSeq, "2 REGISTER");
    h.set(HeaderName::CallId, "new@h");
    assert_eq!(h.expires().unwrap(), Some(30));
    assert_eq!(h.cseq().unwrap().seq, 2);
    assert_eq!(h.call_id().unwrap(), "new@h");
    h.remove(HeaderName::Expires);
    assert_eq!(h.expires().unwrap(), None);
}

/// The fast path and the careful parser agree: the same message with one
/// header folded (careful path for that header only) or with a lone CR
/// (careful path, error) behaves as expected.
#[test]
fn fast_and_careful_paths_agree() {
    let fast = Message::parse(REGISTER.as_bytes().to_vec()).unwrap();
    // Over 64 header lines: the careful path parses it.
    let many: String = (0..70).map(|i| format!("X-H{i}: v\r\n")).collect();
    let long = REGISTER.replace("Expires: 7200\r\n", &format!("Expires: 7200\r\n{many}"));
    let careful = Message::parse(long.into_bytes()).unwrap();
    assert_eq!(careful.headers().len(), fast.headers().len() + 70);
    for f in fast.headers().iter() {
        assert!(careful.headers().iter().any(|g| g == f), "{f:?}");
    }
    assert_eq!(careful.headers().branch(), fast.headers().branch());
    assert_eq!(careful.headers().cseq(), fast.headers().cseq());
    let cr = REGISTER.replace("Max-Forwards: 70", "Max-Forwards: 7\r0");
    assert!(matches!(
        Message::parse(cr.into_bytes()),
        Err(ParseError::HeaderLine {
            line: 3,
            reason: "bare CR or LF"
        })
    ));
}

/// RFC 3261 19.1.4's examples, and what registrars do to Contacts they echo.
#[test]
fn uri_equivalence_follows_rfc3261_19_1_4() {
    let same = |a: &str, b: &str| Uri::parse(a).unwrap().equivalent(&Uri::parse(b).unwrap());
    assert!(same(
        "sip:%61lice@atlanta.com;transport=TCP",
        "sip:alice@AtLanTa.CoM;Transport=tcp"
    ));
    assert!(same(
        "sip:carol@chicago.com",
        "sip:carol@chicago.com;newparam=5"
    ));
    assert!(same(
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
    ));
    assert!(same(
        "sip:1001@127.0.0.1:5070;transport=tcp",
        "sip:1001@127.0.0.1:5070"
    ));
    assert!(!same(
        "SIP:ALICE@AtLanTa.CoM;Transport=udp",
        "sip:alice@AtLanTa.CoM;Transport=UDP"
    ));
    assert!(!same("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
    assert!(!same(
        "sip:bob@biloxi.com",
        "sip:bob@biloxi.com;transport=udp;user=phone"
    ));
    assert!(!same(
        "sip:carol@chicago.com",
        "sip:carol@chicago.com;security=on;maddr=1.2.3.4"
    ));
    assert!(!same(
        "sip:1001@127.0.0.1:5070;transport=tcp",
        "sip:1001@127.0.0.1:5070;transport=udp"
    ));
    assert!(!same("sip:1001@127.0.0.1:5070", "sip:1001@127.0.0.1:5071"));
    assert!(!same("sip:1001@127.0.0.1:5070", "sips:1001@127.0.0.1:5070"));
}

/// A `tel:` URI without parameters is a valid URI (RFC 3966).
#[test]
fn tel_uris_without_parameters_parse() {
    let t = Uri::parse("tel:+9001").unwrap();
    assert_eq!(t.scheme(), Scheme::Tel);
    assert_eq!(t.user(), Some("+9001"));
    assert!(t.params().is_empty());
    assert!(Uri::parse("tel:").is_err());
    assert!(Uri::parse("tel:+1;").is_err(), "an empty parameter is not");
}
