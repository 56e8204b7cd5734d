//! Property tests: the parser never panics on arbitrary or mutated input, and
//! whatever it accepts serializes to bytes that parse back to an equal message.
//! The framer never panics either and frames what it is given losslessly.

use bytes::Bytes;
use proptest::prelude::*;
use sipfleet_protocol::framing::{Frame, StreamFramer};
use sipfleet_protocol::message::Message;

fn seeds() -> Vec<Vec<u8>> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/rfc4475");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dat"))
        .collect();
    files.sort();
    let mut out: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    out.push(
        b"REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1;rport, SIP/2.0/TLS p.example.com;received=192.0.2.1\r\n\
From: \"A, B\" <sip:a@example.com;transport=tcp>;tag=x\r\n\
To: <sips:a@example.com>\r\n\
Call-ID: 1@2\r\n\
CSeq: 1 REGISTER\r\n\
Contact: <sip:a@192.0.2.1>;expires=60;q=0.5, <tel:+123;phone-context=x>\r\n\
WWW-Authenticate: Digest realm=\"r\", nonce=\"n,o\", qop=\"auth\"\r\n\
Retry-After: 5 (x)\r\n\
Content-Length: 3\r\n\r\nabc"
            .to_vec(),
    );
    out
}

/// Parse; if accepted, serialize and parse again: the result must be equal,
/// and serializing that must give the same bytes (a fixed point).
fn check_round_trip(input: Vec<u8>) {
    if let Ok(m) = Message::parse(input) {
        let wire = m.to_bytes();
        let again = Message::parse(wire.clone())
            .unwrap_or_else(|e| panic!("serialized message does not parse: {e}\n{wire:?}"));
        assert_eq!(again, m);
        assert_eq!(again.to_bytes(), wire);
        // Typed accessors must not panic either.
        let h = m.headers();
        // The O(1) reads agree with parsing the header.
        assert_eq!(h.branch().ok(), h.top_via().ok().map(|v| v.branch()));
        assert_eq!(h.from_tag().ok(), h.from().ok().map(|a| a.tag()));
        assert_eq!(h.to_tag().ok(), h.to().ok().map(|a| a.tag()));
        let again_h = again.headers();
        assert_eq!(again_h.branch().ok(), h.branch().ok());
        let _ = h.top_via().map(|v| v.branch());
        let _ = h.vias().count();
        let _ = h.from().map(|a| a.tag());
        let _ = h.to().map(|a| a.uri().params().iter().count());
        let _ = h.call_id();
        let _ = h.cseq();
        let _ = h.contacts().count();
        let _ = h.routes().count();
        let _ = h.record_routes().count();
        let _ = h.expires();
        let _ = h.max_forwards();
        let _ = h.retry_after();
        let _ = h.content_type();
        let _ = h.event();
        let _ = h.subscription_state();
        for c in h.www_authenticate().flatten() {
            let _ = c.params().count();
            let _ = c.param("nonce");
        }
        let _ = h.authorization().count();
        let _ = h.allow().count();
        let _ = h.call_info().count();
        if let Some(r) = m.as_request() {
            let _ = r.uri();
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
    Splice(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop::sample::select(vec![
        b'\r', b'\n', b' ', b'\t', b':', b';', b',', b'"', b'<', b'>', b'@', b'=', b'?', b'[',
        b']', b'\\', b'%', b'0', b'9', 0x00, 0xff, 0xc3,
    ]);
    prop_oneof![
        (any::<usize>(), interesting.clone()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), interesting).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            prop::sample::select(vec![
                b"\r\n ".to_vec(),
                b"\r\n\r\n".to_vec(),
                b";;".to_vec(),
                b",,".to_vec(),
                b"<sip:".to_vec(),
                b"\"".to_vec(),
                b"Content-Length: 99999\r\n".to_vec(),
                b"99999999999999999999".to_vec(),
                b"[::1]".to_vec(),
                b"\xe2\x82".to_vec(),
            ])
        )
            .prop_map(|(i, s)| Mutation::Splice(i, s)),
    ]
}

fn apply(mut v: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let n = v.len();
        match m {
            Mutation::Flip(i, b) if n > 0 => v[i % n] = *b,
            Mutation::Insert(i, b) => v.insert(i % (n + 1), *b),
            Mutation::Delete(i) if n > 0 => {
                v.remove(i % n);
            }
            Mutation::Truncate(i) => v.truncate(i % (n + 1)),
            Mutation::Splice(i, s) => {
                let at = i % (n + 1);
                v.splice(at..at, s.iter().copied());
            }
            _ => {}
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_that_parse_round_trip(input in prop::collection::vec(any::<u8>(), 0..600)) {
        check_round_trip(input);
    }

    #[test]
    fn arbitrary_text_lines_that_parse_round_trip(
        lines in prop::collection::vec("[ -~]{0,40}", 0..12),
        body in prop::collection::vec(any::<u8>(), 0..20),
    ) {
        let mut input = b"INVITE sip:a@b SIP/2.0\r\n".to_vec();
        for l in &lines {
            input.extend_from_slice(l.as_bytes());
            input.extend_from_slice(b"\r\n");
        }
        input.extend_from_slice(b"\r\n");
        input.extend_from_slice(&body);
        check_round_trip(input);
    }

    #[test]
    fn mutated_messages_never_panic_and_round_trip(
        seed in prop::sample::select(seeds()),
        muts in prop::collection::vec(mutation(), 1..6),
    ) {
        check_round_trip(apply(seed, &muts));
    }

    #[test]
    fn framer_never_panics_and_loses_nothing(
        seed in prop::sample::select(seeds()),
        muts in prop::collection::vec(mutation(), 0..4),
        cuts in prop::collection::vec(1usize..64, 1..40),
    ) {
        let input = apply(seed, &muts);
        let mut f = StreamFramer::default();
        let mut out: Vec<u8> = Vec::new();
        let mut pos = 0;
        let mut failed = false;
        for c in cuts.iter().cycle() {
            if pos >= input.len() {
                break;
            }
            let end = (pos + c).min(input.len());
            f.push(&input[pos..end]);
            pos = end;
            loop {
                match f.poll() {
                    Ok(Some(fr)) => out.extend_from_slice(&fr.wire_bytes()),
                    Ok(None) => break,
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            if failed {
                break;
            }
        }
        if !failed {
            // Everything framed plus what is still buffered is the input.
            prop_assert_eq!(out.len() + f.buffered(), input.len());
            prop_assert_eq!(&out[..], &input[..out.len()]);
        }
    }
}

#[test]
fn every_seed_round_trips() {
    let mut accepted = 0;
    for s in seeds() {
        if Message::parse(s.clone()).is_ok() {
            accepted += 1;
        }
        check_round_trip(s);
    }
    assert!(accepted >= 30, "only {accepted} seeds parsed");
    assert_eq!(Frame::Ping.wire_bytes(), Bytes::from_static(b"\r\n\r\n"));
}
