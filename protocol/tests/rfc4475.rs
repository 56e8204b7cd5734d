//! RFC 4475 torture tests against `sipfleet_protocol::message`.
//!
//! The expected values below are written from the RFC's messages (the files in
//! `tests/data/rfc4475`, byte for byte the RFC's), not taken from the parser.
//! Every file of `MANIFEST.tsv` must have an entry here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sipfleet_protocol::message::{HeaderName, Message, Method, ParseError, Scheme};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/rfc4475")
}

fn load(file: &str) -> Vec<u8> {
    std::fs::read(data_dir().join(file)).unwrap()
}

/// `(file, class)` from the manifest.
fn manifest() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(data_dir().join("MANIFEST.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols[0].to_owned(), cols[2].to_owned())
        })
        .collect()
}

enum Start {
    Req(&'static str, &'static str),
    Resp(u16, &'static str),
}

struct Valid {
    file: &'static str,
    start: Start,
    /// (transport, host, port, branch) of every Via, top first.
    vias: Vec<(&'static str, String, Option<u16>, Option<String>)>,
    from: (&'static str, Option<&'static str>),
    to: (&'static str, Option<&'static str>),
    call_id: &'static str,
    cseq: (u32, &'static str),
    content_length: Option<u32>,
    body_len: usize,
}

fn via(
    t: &'static str,
    host: &str,
    port: Option<u16>,
    branch: Option<&str>,
) -> (&'static str, String, Option<u16>, Option<String>) {
    (t, host.to_owned(), port, branch.map(str::to_owned))
}

fn valid_expectations() -> Vec<Valid> {
    let mut longreq_vias: Vec<_> = (1..=33)
        .rev()
        .map(|n| via("TCP", &format!("sip{n}.example.com"), None, None))
        .collect();
    longreq_vias.push(via(
        "TCP",
        "host.example.com",
        None,
        Some(&format!("very{}branchvalue", "long".repeat(50))),
    ));
    vec![
        Valid {
            file: "wsinv.dat",
            start: Start::Req("INVITE", "sip:vivekg@chair-dnrc.example.com;unknownparam"),
            vias: vec![
                via("UDP", "192.0.2.2", None, Some("390skdjuw")),
                via("TCP", "spindle.example.com", None, Some("z9hG4bK9ikj8")),
                via("UDP", "192.168.255.111", None, Some("z9hG4bK30239")),
            ],
            from: ("sip:jdrosen@example.com", Some("98asjd8")),
            to: ("sip:vivekg@chair-dnrc.example.com", Some("1918181833n")),
            call_id: "wsinv.ndaksdj@192.0.2.1",
            cseq: (9, "INVITE"),
            content_length: Some(150),
            body_len: 150,
        },
        Valid {
            file: "intmeth.dat",
            start: Start::Req(
                "!interesting-Method0123456789_*+`.%indeed'~",
                "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
            ),
            vias: vec![via("TCP", "host1.example.com", None, Some("z9hG4bK-.!%66*_+`'~"))],
            from: ("sip:mundane@example.com", Some("_token~1'+`*%!-.")),
            to: ("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com", None),
            call_id: "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{",
            cseq: (139122385, "!interesting-Method0123456789_*+`.%indeed'~"),
            content_length: Some(0),
            body_len: 0,
        },
        Valid {
            file: "esc01.dat",
            start: Start::Req("INVITE", "sip:sips%3Auser%40example.com@example.net"),
            vias: vec![via("UDP", "host5.example.net", None, Some("z9hG4bKkdjuw"))],
            from: ("sip:I%20have%20spaces@example.net", Some("938")),
            to: ("sip:%75se%72@example.com", None),
            call_id: "esc01.239409asdfakjkn23onasd0-3234",
            cseq: (234234, "INVITE"),
            content_length: Some(150),
            body_len: 150,
        },
        Valid {
            file: "escnull.dat",
            start: Start::Req("REGISTER", "sip:example.com"),
            vias: vec![via("UDP", "host5.example.com", None, Some("z9hG4bKkdjuw"))],
            from: ("sip:null-%00-null@example.com", Some("839923423")),
            to: ("sip:null-%00-null@example.com", None),
            call_id: "escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd",
            cseq: (14398234, "REGISTER"),
            content_length: Some(0),
            body_len: 0,
        },
        Valid {
            file: "esc02.dat",
            start: Start::Req("RE%47IST%45R", "sip:registrar.example.com"),
            vias: vec![via("TCP", "host.example.com", None, Some("z9hG4bK209%fzsnel234"))],
            from: ("sip:resource@example.com", Some("f232jadfj23")),
            to: ("sip:resource@example.com", None),
            call_id: "esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf",
            cseq: (29344, "RE%47IST%45R"),
            content_length: Some(0),
            body_len: 0,
        },
        Valid {
            file: "lwsdisp.dat",
            start: Start::Req("OPTIONS", "sip:user@example.com"),
            vias: vec![via("UDP", "funky.example.com", None, Some("z9hG4bKkdjuw"))],
            from: ("sip:caller@example.com", Some("323")),
            to: ("sip:user@example.com", None),
            call_id: "lwsdisp.1234abcd@funky.example.com",
            cseq: (60, "OPTIONS"),
            content_length: Some(0),
            body_len: 0,
        },
        Valid {
            file: "longreq.dat",
            start: Start::Req("INVITE", "sip:user@example.com"),
            vias: longreq_vias,
            from: (
                "sip:amazinglylongcallernameamazinglylongcallernameamazinglylongcallernameamazinglylongcallernameamazinglylongcallername@example.net",
                Some("12982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982424"),
            ),
            to: (
                "sip:user@example.com:6000;unknownparam1=verylonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglongvalue;longparamnamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamename=shortvalue;verylonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglongParameterNameWithNoValue",
                None,
            ),
            call_id: "longreq.onereallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallylongcallid",
            cseq: (3882340, "INVITE"),
            content_length: Some(150),
            body_len: 150,
        },
        Valid {
            file: "dblreq.dat",
            start: Start::Req("REGISTER", "sip:example.com"),
            vias: vec![via("UDP", "192.0.2.125", None, Some("z9hG4bKkdjuw23492"))],
            from: ("sip:j.user@example.com", Some("43251j3j324")),
            to: ("sip:j.user@example.com", None),
            call_id: "dblreq.0ha0isndaksdj99sdfafnl3lk233412",
            cseq: (8, "REGISTER"),
            content_length: Some(0),
            body_len: 0,
        },
        Valid {
            file: "semiuri.dat",
            start: Start::Req("OPTIONS", "sip:user;par=u%40example.net@example.com"),
            vias: vec![via("UDP", "192.0.2.1", None, Some("z9hG4bKkdjuw"))],
            from: ("sip:caller@example.org", Some("33242")),
            to: ("sip:j_user@example.com", None),
            call_id: "semiuri.0ha0isndaksdj",
            cseq: (8, "OPTIONS"),
            content_length: Some(0),
            body_len: 0,
        },
        Valid {
            file: "transports.dat",
            start: Start::Req("OPTIONS", "sip:user@example.com"),
            vias: vec![
                via("UDP", "t1.example.com", None, Some("z9hG4bKkdjuw")),
                via("SCTP", "t2.example.com", None, Some("z9hG4bKklasjdhf")),
                via("TLS", "t3.example.com", None, Some("z9hG4bK2980unddj")),
                via("UNKNOWN", "t4.example.com", None, Some("z9hG4bKasd0f3en")),
                via("TCP", "t5.example.com", None, Some("z9hG4bK0a9idfnee")),
            ],
            from: ("sip:caller@example.com", Some("323")),
            to: ("sip:user@example.com", None),
            call_id: "transports.kijh4akdnaqjkwendsasfdj",
            cseq: (60, "OPTIONS"),
            content_length: Some(0),
            body_len: 0,
        },
        Valid {
            file: "mpart01.dat",
            start: Start::Req("MESSAGE", "sip:kumiko@example.org"),
            vias: vec![via(
                "UDP",
                "127.0.0.1",
                Some(5070),
                Some("z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-"),
            )],
            from: ("sip:fluffy@example.com", Some("2fb0dcc9")),
            to: ("sip:kumiko@example.org", None),
            call_id: "3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..",
            cseq: (1, "MESSAGE"),
            content_length: Some(553),
            body_len: 553,
        },
        Valid {
            file: "unreason.dat",
            start: Start::Resp(200, "= 2**3 * 5**2 но сто девяносто девять - простое"),
            vias: vec![via("UDP", "192.0.2.198", None, Some("z9hG4bK1324923"))],
            from: ("sip:user@example.com", Some("11141343")),
            to: ("sip:user@example.edu", Some("2229")),
            call_id: "unreason.1234ksdfak3j2erwedfsASdf",
            cseq: (35, "INVITE"),
            content_length: Some(154),
            body_len: 154,
        },
        Valid {
            file: "noreason.dat",
            start: Start::Resp(100, ""),
            vias: vec![via("UDP", "192.0.2.105", None, Some("z9hG4bK2398ndaoe"))],
            from: ("sip:user@example.com", Some("39ansfi3")),
            to: ("sip:user@example.edu", Some("902jndnke3")),
            call_id: "noreason.asndj203insdf99223ndf",
            cseq: (35, "INVITE"),
            content_length: Some(0),
            body_len: 0,
        },
        Valid {
            file: "inv2543.dat",
            start: Start::Req("INVITE", "sip:UserB@example.com"),
            vias: vec![via("UDP", "iftgw.example.com", None, None)],
            from: ("sip:+13035551111@ift.client.example.net;user=phone", None),
            // addr-spec form: `;user=phone` is a header parameter here (RFC 3261 20.10).
            to: ("sip:+16505552222@ss1.example.net", None),
            call_id: "inv2543.1717@ift.client.example.com",
            cseq: (56, "INVITE"),
            content_length: None,
            body_len: 105,
        },
    ]
}

fn check_valid(v: &Valid) {
    let raw = load(v.file);
    let msg = Message::parse(raw.clone()).unwrap_or_else(|e| panic!("{}: {e}", v.file));
    let f = v.file;
    match (&v.start, &msg) {
        (Start::Req(method, uri), Message::Request(r)) => {
            assert_eq!(r.method().as_str(), *method, "{f}");
            assert_eq!(r.uri_str(), *uri, "{f}");
            r.uri().unwrap();
        }
        (Start::Resp(code, reason), Message::Response(r)) => {
            assert_eq!(r.status().as_u16(), *code, "{f}");
            assert_eq!(r.reason(), *reason, "{f}");
        }
        _ => panic!("{f}: wrong kind of message"),
    }
    let h = msg.headers();
    let vias: Vec<_> = h
        .vias()
        .map(|v| {
            let v = v.unwrap();
            (
                v.transport(),
                v.host().to_owned(),
                v.port(),
                v.branch().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(vias, v.vias, "{f}: Via");
    assert_eq!(
        h.branch().unwrap().map(str::to_owned),
        v.vias[0].3,
        "{f}: top branch"
    );
    assert_eq!(h.from_tag().unwrap(), v.from.1, "{f}: From tag");
    assert_eq!(h.to_tag().unwrap(), v.to.1, "{f}: To tag");
    let from = h.from().unwrap();
    assert_eq!((from.uri().as_str(), from.tag()), v.from, "{f}: From");
    let to = h.to().unwrap();
    assert_eq!((to.uri().as_str(), to.tag()), v.to, "{f}: To");
    assert_eq!(h.call_id().unwrap(), v.call_id, "{f}: Call-ID");
    let cseq = h.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method.as_str()), v.cseq, "{f}: CSeq");
    assert_eq!(
        h.content_length().unwrap(),
        v.content_length,
        "{f}: Content-Length"
    );
    assert_eq!(msg.body().len(), v.body_len, "{f}: body");
    // The body is the tail of the declared length right after the blank line.
    let start = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(
        &msg.body()[..],
        &raw[start..start + v.body_len],
        "{f}: body bytes"
    );
    // Serialize and parse again: same message.
    let again = Message::parse(msg.to_bytes()).unwrap_or_else(|e| panic!("{f} re-parse: {e}"));
    assert_eq!(again, msg, "{f}: round trip");
}

/// What each invalid message must be rejected for.
fn invalid_expectations() -> BTreeMap<&'static str, fn(&ParseError) -> bool> {
    use HeaderName as H;
    use ParseError as E;
    let mut m: BTreeMap<&'static str, fn(&ParseError) -> bool> = BTreeMap::new();
    m.insert(
        "badinv01.dat",
        |e| matches!(e, E::Header { header: H::Via, reason } if reason.contains("parameter")),
    );
    m.insert("clerr.dat", |e| {
        matches!(e, E::BodyTruncated { declared: 9999, .. })
    });
    m.insert("ncl.dat", |e| {
        matches!(
            e,
            E::Header {
                header: H::ContentLength,
                ..
            }
        )
    });
    m.insert("scalar02.dat", |e| {
        matches!(
            e,
            E::Header {
                header: H::CSeq,
                ..
            }
        )
    });
    m.insert("scalarlg.dat", |e| {
        matches!(
            e,
            E::Header {
                header: H::CSeq,
                ..
            }
        )
    });
    m.insert(
        "quotbal.dat",
        |e| matches!(e, E::Header { header: H::To, reason } if reason.contains("quoted")),
    );
    m.insert(
        "ltgtruri.dat",
        |e| matches!(e, E::RequestUri(r) if r.contains("<>")),
    );
    m.insert(
        "lwsruri.dat",
        |e| matches!(e, E::StartLine(r) if r.contains("white space")),
    );
    m.insert(
        "lwsstart.dat",
        |e| matches!(e, E::StartLine(r) if r.contains("white space")),
    );
    m.insert(
        "trws.dat",
        |e| matches!(e, E::StartLine(r) if r.contains("white space")),
    );
    m.insert(
        "escruri.dat",
        |e| matches!(e, E::RequestUri(r) if r.contains("headers")),
    );
    m.insert("baddate.dat", |e| {
        matches!(
            e,
            E::Header {
                header: H::Date,
                ..
            }
        )
    });
    m.insert(
        "regbadct.dat",
        |e| matches!(e, E::Header { header: H::Contact, reason } if reason.contains("<>")),
    );
    m.insert(
        "badaspec.dat",
        |e| matches!(e, E::Header { header: H::To, reason } if reason.contains("white space")),
    );
    m.insert(
        "baddn.dat",
        |e| matches!(e, E::Header { header: H::From, reason } if reason.contains("display name")),
    );
    m.insert("badvers.dat", |e| matches!(e, E::Version));
    m.insert("mismatch01.dat", |e| matches!(e, E::CSeqMethodMismatch));
    m.insert("mismatch02.dat", |e| matches!(e, E::CSeqMethodMismatch));
    m.insert("bigcode.dat", |e| matches!(e, E::StatusCode(_)));
    m
}

/// What a UA reads from each semantically odd (but well-formed) message.
fn semantic_expectations() -> BTreeMap<&'static str, fn(&Message)> {
    let mut m: BTreeMap<&'static str, fn(&Message)> = BTreeMap::new();
    m.insert("badbranch.dat", |m| {
        assert_eq!(m.headers().top_via().unwrap().branch(), Some("z9hG4bK"))
    });
    m.insert("insuf.dat", |m| {
        let h = m.headers();
        assert_eq!(
            h.call_id(),
            Err(ParseError::MissingHeader(HeaderName::CallId))
        );
        assert_eq!(
            h.from().unwrap_err(),
            ParseError::MissingHeader(HeaderName::From)
        );
        assert_eq!(
            h.to().unwrap_err(),
            ParseError::MissingHeader(HeaderName::To)
        );
    });
    m.insert("unkscm.dat", |m| {
        let uri = m.as_request().unwrap().uri().unwrap();
        assert_eq!(uri.scheme(), Scheme::Other("nobodyKnowsThisScheme"));
    });
    m.insert("novelsc.dat", |m| {
        let uri = m.as_request().unwrap().uri().unwrap();
        assert_eq!(uri.scheme(), Scheme::Other("soap.beep"));
        assert_eq!(uri.opaque(), "//192.0.2.103:3002");
    });
    m.insert("unksm2.dat", |m| {
        let h = m.headers();
        assert_eq!(h.to().unwrap().uri().scheme(), Scheme::Other("isbn"));
        assert_eq!(h.from().unwrap().uri().scheme(), Scheme::Other("http"));
        let c = h.contacts().next().unwrap().unwrap();
        assert_eq!(c.uri().as_str(), "name:John_Smith");
    });
    m.insert("bext01.dat", |m| {
        let req: Vec<_> = m.headers().require().collect();
        assert_eq!(req, ["nothingSupportsThis", "nothingSupportsThisEither"]);
    });
    m.insert("invut.dat", |m| {
        let ct = m.headers().content_type().unwrap().unwrap();
        assert_eq!(ct.value(), "application/unknownformat");
        assert_eq!(m.body().len(), 40);
    });
    m.insert("regaut01.dat", |m| {
        let a = m.headers().authorization().next().unwrap().unwrap();
        assert_eq!(a.scheme(), "NoOneKnowsThisScheme");
        assert_eq!(a.param("opaque-data"), Some("here"));
    });
    m.insert("multi01.dat", |m| {
        let h = m.headers();
        assert_eq!(h.count(HeaderName::CSeq), 2);
        assert_eq!(h.count(HeaderName::CallId), 2);
        assert_eq!(h.count(HeaderName::From), 2);
        assert_eq!(h.count(HeaderName::To), 2);
        assert_eq!(h.count(HeaderName::MaxForwards), 2);
    });
    m.insert("mcl01.dat", |m| {
        assert_eq!(m.headers().count(HeaderName::ContentLength), 2);
        // The first Content-Length frames the body; a UA rejects it anyway.
        assert_eq!(&m.body()[..], b"There's no wa");
    });
    m.insert("bcast.dat", |m| {
        let vias: Vec<_> = m.headers().vias().map(|v| v.unwrap().host()).collect();
        assert_eq!(vias, ["192.0.2.198", "255.255.255.255"]);
    });
    m.insert("zeromf.dat", |m| {
        assert_eq!(m.headers().max_forwards().unwrap(), Some(0))
    });
    m.insert("cparam01.dat", |m| {
        let c = m.headers().contacts().next().unwrap().unwrap();
        assert_eq!(c.uri().as_str(), "sip:+19725552222@gw1.example.net");
        assert!(c.params().contains("unknownparam"));
    });
    m.insert("cparam02.dat", |m| {
        let c = m.headers().contacts().next().unwrap().unwrap();
        assert!(c.uri().params().contains("unknownparam"));
        assert!(c.params().is_empty());
    });
    m.insert("regescrt.dat", |m| {
        let c = m.headers().contacts().next().unwrap().unwrap();
        assert_eq!(c.uri().headers(), Some("Route=%3Csip:sip.example.com%3E"));
    });
    m.insert("sdp01.dat", |m| {
        assert_eq!(
            m.headers().get(HeaderName::Accept),
            Some("text/nobodyKnowsThis")
        );
        assert_eq!(
            m.headers().content_type().unwrap().unwrap().value(),
            "application/sdp"
        );
    });
    m
}

#[test]
fn rfc4475_torture_messages() {
    let valid = valid_expectations();
    let invalid = invalid_expectations();
    let semantic = semantic_expectations();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (file, class) in manifest() {
        match class.as_str() {
            "valid" => {
                let v = valid
                    .iter()
                    .find(|v| v.file == file)
                    .unwrap_or_else(|| panic!("{file}: no expectation"));
                check_valid(v);
            }
            "invalid" => {
                let check = invalid
                    .get(file.as_str())
                    .unwrap_or_else(|| panic!("{file}: no expectation"));
                match Message::parse(load(&file)) {
                    Ok(_) => panic!("{file}: invalid message parsed"),
                    Err(e) => assert!(check(&e), "{file}: unexpected error {e:?}"),
                }
            }
            "semantic" => {
                let check = semantic
                    .get(file.as_str())
                    .unwrap_or_else(|| panic!("{file}: no expectation"));
                let msg = Message::parse(load(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
                check(&msg);
            }
            other => panic!("{file}: unknown class {other}"),
        }
        *counts.entry(class).or_default() += 1;
    }
    println!("RFC 4475 messages checked per class: {counts:?}");
    assert_eq!(counts.get("valid"), Some(&valid.len()));
    assert_eq!(counts.get("invalid"), Some(&invalid.len()));
    assert_eq!(counts.get("semantic"), Some(&semantic.len()));
}

#[test]
fn invalid_requests_still_say_what_to_answer() {
    // A UA answers an invalid request with 400 and the reason; the Display of
    // the error is that reason.
    let e = Message::parse(load("badaspec.dat")).unwrap_err();
    assert_eq!(e.to_string(), "bad To header: white space inside <URI>");
    let e = Message::parse(load("mismatch02.dat")).unwrap_err();
    assert_eq!(e.to_string(), "CSeq method differs from the request method");
    let _ = Method::Invite;
}
