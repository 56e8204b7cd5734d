//! The fast path and the careful parser must agree on every input: the fast
//! path may decline a message (the careful path then parses it), but a
//! message it accepts must come out exactly as the careful parser makes it
//! (same start line, header spans, recorded facts and body).

use bytes::Bytes;
use proptest::prelude::*;

use super::parse::{parse, parse_careful};

/// Every message the tests know: the RFC 4475 torture messages and the
/// benchmark corpus.
fn corpus() -> Vec<Vec<u8>> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut out = Vec::new();
    for dir in ["tests/data/rfc4475", "../benches/parsers/corpus"] {
        let path = format!("{root}/{dir}");
        let mut files: Vec<_> = std::fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "dat" || x == "sip"))
            .collect();
        files.sort();
        for f in files {
            let bytes = std::fs::read(&f).unwrap_or_else(|e| panic!("{f:?}: {e}"));
            if f.extension().is_some_and(|x| x == "sip") {
                // The benchmark corpus is stored with LF line ends.
                let text = String::from_utf8(bytes).expect("corpus is text");
                out.push(text.replace('\n', "\r\n").into_bytes());
            } else {
                out.push(bytes);
            }
        }
    }
    assert!(out.len() > 50, "corpus not found");
    out
}

fn leading_crlfs(buf: &[u8]) -> usize {
    let mut start = 0;
    while buf.get(start..start + 2) == Some(b"\r\n") {
        start += 2;
    }
    start
}

/// `parse` (fast path first) and the careful parser give the same result.
fn assert_same(buf: &[u8]) {
    let bytes = Bytes::copy_from_slice(buf);
    let both = format!("{:?}", parse(bytes.clone()));
    let careful = format!("{:?}", parse_careful(bytes, leading_crlfs(buf)));
    assert_eq!(
        both,
        careful,
        "paths disagree on {:?}",
        String::from_utf8_lossy(buf)
    );
}

#[test]
fn every_corpus_message_parses_the_same_on_both_paths() {
    let corpus = corpus();
    let mut fast = 0;
    for m in &corpus {
        assert_same(m);
        if super::fast::parse(&Bytes::copy_from_slice(m), leading_crlfs(m)).is_some() {
            fast += 1;
        }
    }
    // The common messages do take the fast path (else this test would
    // prove nothing): all five of the benchmark's and most valid RFC 4475
    // ones.
    assert!(fast >= 20, "only {fast} messages took the fast path");
}

/// Bytes that matter to the grammar, for mutations.
const EDITS: &[u8] = b" \t;,<>\"\\:@[]=?/\r\n0159aZ.-+*%\x7f\x00\xc3";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6000))]

    /// Near-valid messages (one to four bytes of a real message changed,
    /// inserted or removed) reach both sides of every fast-path check.
    #[test]
    fn mutated_messages_parse_the_same_on_both_paths(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec(
            (any::<prop::sample::Index>(), 0u8..3, prop::sample::select(EDITS.to_vec())),
            1..5,
        ),
    ) {
        let corpus = corpus_cached();
        let mut m = corpus[which.index(corpus.len())].clone();
        for (at, op, byte) in edits {
            if m.is_empty() {
                break;
            }
            let i = at.index(m.len());
            match op {
                0 => m[i] = byte,
                1 => m.insert(i, byte),
                _ => {
                    m.remove(i);
                }
            }
        }
        assert_same(&m);
    }
}

fn corpus_cached() -> &'static [Vec<u8>] {
    static CORPUS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(corpus)
}

/// The fast path skips the headers it neither checks itself nor hands to
/// the careful validator: that is right only while the careful validator
/// does not check them either.
#[test]
fn headers_the_fast_path_skips_are_not_checked_by_the_careful_path_either() {
    use super::parse::{validate, State};
    use super::HeaderName;
    let checked = [
        "Via",
        "From",
        "To",
        "Contact",
        "Route",
        "Record-Route",
        "Call-ID",
        "CSeq",
        "Content-Length",
        "Expires",
        "Max-Forwards",
        "Min-Expires",
        "Retry-After",
        "Date",
    ];
    let all = [
        "Accept",
        "Allow",
        "Allow-Events",
        "Authorization",
        "Call-Info",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Type",
        "Event",
        "Path",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Require",
        "Refer-To",
        "Referred-By",
        "Require",
        "Server",
        "Service-Route",
        "Session-Expires",
        "Subject",
        "Subscription-State",
        "Supported",
        "Unsupported",
        "User-Agent",
        "Warning",
        "WWW-Authenticate",
        "X-Anything",
    ];
    for name in all {
        let h = HeaderName::parse(name.as_bytes());
        assert!(!checked.iter().any(|c| HeaderName::parse(c.as_bytes()) == h));
        let mut st = State::with_capacity(1);
        assert!(
            matches!(validate(h, "\u{1} <<\"garbage", &mut st), Ok(None)),
            "{name} is checked by the careful validator: the fast path must check it too"
        );
    }
    for name in checked {
        let mut st = State::with_capacity(1);
        let h = HeaderName::parse(name.as_bytes());
        assert!(validate(h, "\u{1} <<\"garbage", &mut st).is_err(), "{name}");
    }
}
