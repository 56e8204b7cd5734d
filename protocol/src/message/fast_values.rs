//! Single-pass validators for the address headers every message carries
//! (Via, From, To, Contact, Route, Record-Route) and for SIP URIs.
//!
//! Why they exist beside [`super::via`], [`super::addr`] and [`super::uri`]:
//! those split a value into parts and then check each part, which looks at
//! most bytes three or four times; here one forward walk over the bytes checks
//! the same grammar and notes the positions the summary keeps (top Via
//! branch, From/To tag). They cover the common spellings only: anything else
//! (IPv6 references, URI headers, escapes in quoted strings, `tel:` URIs,
//! addresses without `<>`, LWS inside sent-protocol...) answers "not mine"
//! (`None`) and the careful validator decides. A `Some` must mean the careful
//! validator accepts the value and finds the same fact; the tests below and
//! `paths_tests.rs` check exactly that.

use super::addr::check_contact_param;
use super::lex::URI_OK;
use super::lex::{is_token, parse_u32, run_of, DNAME, HOST_RUN, PARAM_RUN, PVALUE, TOKEN_RUN};
use super::values::Method;

/// SP or HT (no CR or LF can reach here: the fast path takes no folding).
#[inline(always)]
fn is_sp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

#[inline(always)]
fn skip_sp(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_sp(b[i]) {
        i += 1;
    }
    i
}

/// The index after the closing quote of the quoted string that starts at
/// `i`; `None` when it has an escape (the careful path reads those) or no
/// end.
#[inline(always)]
fn quoted_end(b: &[u8], i: usize) -> Option<usize> {
    let close = i + 1 + super::simd::find2(&b[i + 1..], b'"', b'\\')?;
    (b[close] == b'"').then_some(close + 1)
}

/// The fact of a Via, From or To value: the top branch or the tag, as a
/// slice of the value (`None` when the parameter is absent).
pub(super) type Fact<'v> = Option<&'v str>;

/// Via: every element `SIP/2.0/transport SP host[:port] *(;param)`. Returns
/// the branch of the first element.
pub(super) fn via(v: &str) -> Option<Fact<'_>> {
    let b = v.as_bytes();
    let mut i = 0;
    let mut top = None;
    loop {
        let (end, branch) = via_element(v, i)?;
        if i == 0 {
            top = Some(branch);
        }
        i = end;
        if i == b.len() {
            return top;
        }
        // Only a comma can follow an element here.
        i = skip_sp(b, i + 1);
    }
}

/// One Via element from `i`; returns where it ends (the end of the value or
/// a comma) and its branch.
fn via_element(v: &str, i: usize) -> Option<(usize, Fact<'_>)> {
    let b = v.as_bytes();
    if b.len() < i + 9 || !b[i..i + 4].eq_ignore_ascii_case(b"SIP/") || &b[i + 4..i + 8] != b"2.0/"
    {
        return None;
    }
    let mut j = run_of(b, i + 8, TOKEN_RUN);
    if j == i + 8 || j == b.len() || !is_sp(b[j]) {
        return None;
    }
    // sent-by host: host-name bytes, then ':', ';', SP/HT, ',' or the end.
    let host = skip_sp(b, j);
    j = if b.get(host) == Some(&b'[') {
        ipv6_reference(b, host)?
    } else {
        run_of(b, host, HOST_RUN)
    };
    if j == host || (j < b.len() && !matches!(b[j], b':' | b';' | b',' | b' ' | b'\t')) {
        return None;
    }
    j = skip_sp(b, j);
    if j < b.len() && b[j] == b':' {
        j = port(b, skip_sp(b, j + 1))?;
    }
    let mut branch = None;
    let end = header_params(v, j, |name, value| {
        if name.eq_ignore_ascii_case("branch") {
            if !value.is_some_and(is_token) {
                return false;
            }
            if branch.is_none() {
                branch = value;
            }
        } else if name.eq_ignore_ascii_case("ttl") {
            return value.and_then(parse_u32).is_some_and(|t| t <= 255);
        } else if name.eq_ignore_ascii_case("rport") {
            if let Some(p) = value {
                return parse_u32(p).is_some_and(|p| p <= 65535);
            }
        }
        true
    })?;
    Some((end, branch))
}

/// `1*5DIGIT` up to 65535 from `i`; returns the index after it. (Longer
/// spellings with leading zeros are the careful path's.)
#[inline(always)]
fn port(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    let mut n: u32 = 0;
    while j < b.len() && b[j].is_ascii_digit() && j < i + 5 {
        n = n * 10 + u32::from(b[j] - b'0');
        j += 1;
    }
    (j > i && n <= 65535 && !(j < b.len() && b[j].is_ascii_digit())).then_some(j)
}

/// Header parameters from `i`: optional SP/HT, then nothing, or `;` params
/// (`name [= value]`, value a token-ish run or a quoted string without
/// escapes), SP/HT allowed around `;` and `=`. Stops at the end of the value
/// or at a comma (the caller decides whether one may follow); `check` sees
/// each parameter and may refuse it. Returns where it stopped.
#[inline(always)]
fn header_params<'v>(
    v: &'v str,
    mut i: usize,
    mut check: impl FnMut(&'v str, Option<&'v str>) -> bool,
) -> Option<usize> {
    let b = v.as_bytes();
    i = skip_sp(b, i);
    if i == b.len() || b[i] == b',' {
        return Some(i);
    }
    if b[i] != b';' {
        return None;
    }
    loop {
        i = skip_sp(b, i + 1);
        let name_start = i;
        i = run_of(b, i, TOKEN_RUN);
        if i == name_start {
            return None;
        }
        let name = &v[name_start..i];
        i = skip_sp(b, i);
        let mut value = None;
        if i < b.len() && b[i] == b'=' {
            i = skip_sp(b, i + 1);
            let v_start = i;
            if i < b.len() && b[i] == b'"' {
                i = quoted_end(b, i)?;
            } else {
                i = run_of(b, i, PVALUE);
                if i == v_start {
                    return None;
                }
            }
            value = Some(&v[v_start..i]);
            i = skip_sp(b, i);
        }
        if !check(name, value) {
            return None;
        }
        if i == b.len() || b[i] == b',' {
            return Some(i);
        }
        if b[i] != b';' {
            return None;
        }
    }
}

/// Call-ID (a trimmed value): not empty, no byte at or below SP, no DEL;
/// eight bytes per step.
pub(super) fn call_id(v: &str) -> Option<&str> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOP: u64 = 0x8080_8080_8080_8080;
    let b = v.as_bytes();
    if b.is_empty() {
        return None;
    }
    let mut words = b.chunks_exact(8);
    for w in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(w);
        let x = u64::from_le_bytes(bytes);
        // Some byte below 0x21, or some byte equal to 0x7f (exact as a
        // yes/no, the usual word tricks).
        let low = x.wrapping_sub(ONES * 0x21) & !x & TOP;
        let y = x ^ (ONES * 0x7f);
        let del = y.wrapping_sub(ONES) & !y & TOP;
        if low | del != 0 {
            return None;
        }
    }
    words
        .remainder()
        .iter()
        .all(|&c| c > b' ' && c != 0x7f)
        .then_some(v)
}

/// CSeq: `1*10DIGIT` below 2^31, SP/HT, a method token.
pub(super) fn cseq(v: &str) -> Option<(u32, Method)> {
    let b = v.as_bytes();
    let mut i = 0;
    let mut n: u64 = 0;
    while i < b.len() && b[i].is_ascii_digit() && i < 10 {
        n = n * 10 + u64::from(b[i] - b'0');
        i += 1;
    }
    if i == 0 || n >= 1 << 31 || i == b.len() || !is_sp(b[i]) {
        return None;
    }
    let m = skip_sp(b, i);
    if run_of(b, m, TOKEN_RUN) != b.len() || m == b.len() {
        return None;
    }
    Some((n as u32, Method::parse(&v[m..]).ok()?))
}

/// From / To: one `[display-name] <sip-uri> *(;param)`; returns the first
/// `tag` value.
pub(super) fn from_to(v: &str) -> Option<Fact<'_>> {
    let mut tag: Option<Fact<'_>> = None;
    let end = name_addr(v, 0, |name, value| {
        if tag.is_none() && name.eq_ignore_ascii_case("tag") {
            tag = Some(value);
        }
        true
    })?;
    (end == v.len()).then_some(tag.flatten())
}

/// Contact: `*`, or a comma list of addresses whose `expires` and `q`
/// parameters are checked.
pub(super) fn contact(v: &str) -> Option<()> {
    if v == "*" {
        return Some(());
    }
    list(v, |name, value| match name.len() {
        // Only `expires` and `q` carry a checked meaning (as in
        // `check_contact_param`, inlined for the common `expires`).
        7 if name.eq_ignore_ascii_case("expires") => value.and_then(parse_u32).is_some(),
        1 => check_contact_param(name, value).is_ok(),
        _ => true,
    })
}

/// Route / Record-Route: a comma list of addresses.
pub(super) fn route(v: &str) -> Option<()> {
    list(v, |_, _| true)
}

fn list<'v>(v: &'v str, mut check: impl FnMut(&'v str, Option<&'v str>) -> bool) -> Option<()> {
    let b = v.as_bytes();
    let mut i = 0;
    loop {
        i = name_addr(v, i, &mut check)?;
        if i == b.len() {
            return Some(());
        }
        i = skip_sp(b, i + 1);
    }
}

/// One `[display-name] <sip-uri> *(;param)` from `i`; returns where it ends
/// (the end of the value or a comma).
#[inline(always)]
fn name_addr<'v>(
    v: &'v str,
    mut i: usize,
    check: impl FnMut(&'v str, Option<&'v str>) -> bool,
) -> Option<usize> {
    let b = v.as_bytes();
    if i < b.len() && b[i] == b'"' {
        i = skip_sp(b, quoted_end(b, i)?);
    } else {
        i = run_of(b, i, DNAME);
    }
    if i >= b.len() || b[i] != b'<' {
        return None;
    }
    let gt = sip_uri(b, i + 1)?;
    if gt == b.len() || b[gt] != b'>' {
        return None;
    }
    header_params(v, gt + 1, check)
}

/// A `sip:` or `sips:` URI (any case) from `i`, without `?headers` or IPv6
/// references: `[userinfo@] host [:port] *(;param)`. Returns the index of the
/// first byte after it, which the caller checks is its delimiter (`>`, SP).
pub(super) fn sip_uri(b: &[u8], i: usize) -> Option<usize> {
    let scheme_len = if b.len() > i + 4 && b[i..i + 4].eq_ignore_ascii_case(b"sip:") {
        4
    } else if b.len() > i + 5 && b[i..i + 5].eq_ignore_ascii_case(b"sips:") {
        5
    } else {
        return None;
    };
    let start = i + scheme_len;
    // The userinfo ends at the first '@'; without one, the host starts here.
    let mut j = run_of(b, start, URI_OK);
    let host = if j < b.len() && b[j] == b'@' {
        if j == start || b[start] == b':' {
            return None;
        }
        j + 1
    } else {
        start
    };
    j = if b.get(host) == Some(&b'[') {
        ipv6_reference(b, host)?
    } else {
        run_of(b, host, HOST_RUN)
    };
    if j == host {
        return None;
    }
    if j < b.len() && b[j] == b':' {
        j = port(b, j + 1)?;
    }
    while j < b.len() && b[j] == b';' {
        j = param_run(b, j + 1)?;
        if j < b.len() && b[j] == b'=' {
            j = param_run(b, j + 1)?;
        }
    }
    Some(j)
}

/// `[` hex digits, `:` and `.` `]` from `i` (at the `[`); returns the index
/// after the `]`.
fn ipv6_reference(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() && (b[j].is_ascii_hexdigit() || b[j] == b':' || b[j] == b'.') {
        j += 1;
    }
    (j > i + 1 && b.get(j) == Some(&b']')).then_some(j + 1)
}

/// A non-empty run of URI paramchars from `i`.
#[inline(always)]
fn param_run(b: &[u8], i: usize) -> Option<usize> {
    let j = run_of(b, i, PARAM_RUN);
    (j > i).then_some(j)
}

#[cfg(test)]
mod tests {
    use super::super::addr::NameAddr;
    use super::super::lex::ListIter;
    use super::super::uri::Uri;
    use super::super::via::Via;
    use super::*;
    use proptest::prelude::*;

    /// The careful validators' verdicts, for comparison.
    fn careful_via(v: &str) -> Result<Fact<'_>, &'static str> {
        let mut top = None;
        for e in ListIter::new(v) {
            let (_, branch) = Via::parse_with_branch(e)?;
            top.get_or_insert(branch);
        }
        Ok(top.flatten())
    }
    fn careful_from_to(v: &str) -> Result<Fact<'_>, &'static str> {
        NameAddr::parse_with_tag(v).map(|(_, t)| t)
    }
    fn careful_contact(v: &str) -> Result<(), &'static str> {
        if v.trim() == "*" {
            return Ok(());
        }
        for e in ListIter::new(v) {
            NameAddr::parse_contact(e, true)?;
        }
        Ok(())
    }
    fn careful_route(v: &str) -> Result<(), &'static str> {
        for e in ListIter::new(v) {
            NameAddr::parse(e)?;
        }
        Ok(())
    }

    /// `fast` accepting means `careful` accepts with the same fact; also
    /// the pointer of a fact must be the same slice.
    fn agree_fact(v: &str) {
        if let Some(f) = via(v) {
            let c = careful_via(v).unwrap_or_else(|e| panic!("Via {v:?}: fast ok, careful {e}"));
            assert_eq!(f.map(str::as_ptr), c.map(str::as_ptr), "Via {v:?}");
            assert_eq!(f, c, "Via {v:?}");
        }
        if let Some(f) = from_to(v) {
            let c =
                careful_from_to(v).unwrap_or_else(|e| panic!("From {v:?}: fast ok, careful {e}"));
            assert_eq!(f.map(str::as_ptr), c.map(str::as_ptr), "From {v:?}");
        }
        if contact(v).is_some() {
            careful_contact(v).unwrap_or_else(|e| panic!("Contact {v:?}: fast ok, careful {e}"));
        }
        if route(v).is_some() {
            careful_route(v).unwrap_or_else(|e| panic!("Route {v:?}: fast ok, careful {e}"));
        }
    }

    #[test]
    fn common_values_take_the_fast_path() {
        let v = "SIP/2.0/UDP bobspc.biloxi.example.com:5060;branch=z9hG4bKnashds7;rport";
        assert_eq!(via(v), Some(Some("z9hG4bKnashds7")));
        let v = "SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK1;received=10.0.0.2;rport=5062, SIP/2.0/UDP h:5060;branch=z9hG4bK2";
        assert_eq!(via(v), Some(Some("z9hG4bK1")));
        assert_eq!(via("SIP/2.0/UDP h"), Some(None));
        assert_eq!(
            via("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1"),
            Some(Some("z9hG4bK1"))
        );
        assert_eq!(
            contact("\"Bob desk\" <sip:bob@[2001:db8::7]:5070>;expires=300;q=0.7"),
            Some(())
        );
        assert_eq!(
            from_to("Bob <sip:bob@biloxi.example.com>;tag=456248"),
            Some(Some("456248"))
        );
        assert_eq!(
            from_to("\"Bob B.\" <sips:bob@b.example.com:5061;transport=tls>"),
            Some(None)
        );
        assert_eq!(from_to("<sip:b.example.com>;TAG=x;tag=y"), Some(Some("x")));
        let c = "<sip:bob@192.0.2.4:5060;transport=udp;line=abc123>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=1;expires=3600";
        assert_eq!(contact(c), Some(()));
        assert_eq!(contact("<sip:a@h>;expires=60, <sip:b@h>;q=0.5"), Some(()));
        assert_eq!(contact("*"), Some(()));
        assert_eq!(
            route("<sip:p1.example.com;lr>, <sip:p2.example.com;lr>"),
            Some(())
        );
        for v in [
            "SIP/2.0/UDP h;branch=z9hG4bK1",
            "Bob <sip:bob@biloxi.example.com>;tag=456248",
            c,
        ] {
            agree_fact(v);
        }
    }

    #[test]
    fn unusual_or_bad_values_are_left_to_the_careful_validators() {
        for v in [
            "SIP / 2.0 / UDP h",
            "SIP/2.0/UDP [2001:db8::1;branch=z9hG4bK1",
            "SIP/2.0/UDP []:5060;branch=z9hG4bK1",
            "SIP/2.0/UDP h;branch=\"quoted\"",
            "SIP/2.0/UDP h;ttl=256",
            "SIP/2.0/UDP h;rport=70000",
            "SIP/2.0/UDP h:70000",
            "SIP/2.0/UDP h,",
            "SIP/2.0/UDP h;;branch=z9hG4bK1",
        ] {
            assert_eq!(via(v), None, "{v}");
        }
        for v in [
            "sip:bob@biloxi.example.com;tag=1",
            "\"B\\\"ob\" <sip:bob@b>",
            "<tel:+15551234>",
            "<sip:bob@b?Subject=x>",
            "<sip:@b>",
            "<sip:bob@b",
            "<sip:bob@b>, <sip:c@d>",
            "<sip:bob@b> junk",
            "B@b <sip:bob@b>",
        ] {
            assert_eq!(from_to(v), None, "{v}");
        }
        assert_eq!(contact("<sip:a@h>;expires=soon"), None);
        assert_eq!(contact("<sip:a@h>;q=2"), None);
        assert_eq!(contact("<sip:a@h>, , <sip:b@h>"), None);
        assert_eq!(contact("<sip:a@h>,"), None);
    }

    #[test]
    fn call_id_agrees_with_the_careful_check() {
        use super::super::headers::validate_call_id;
        let mut values = vec![
            "843817637684230@998sdasdh09".to_owned(),
            "a".to_owned(),
            "".to_owned(),
            "é@x".to_owned(),
        ];
        for bad in [0u8, 9, 0x20, 0x7f, 0x1f, b'\r'] {
            for at in 0..20 {
                let mut v = vec![b'k'; 20];
                v[at] = bad;
                values.push(String::from_utf8(v).expect("ASCII"));
            }
        }
        for v in &values {
            let t = v.trim_matches([' ', '\t', '\r', '\n']);
            assert_eq!(call_id(t).is_some(), validate_call_id(t).is_ok(), "{v:?}");
        }
    }

    #[test]
    fn cseq_agrees_with_the_careful_parser() {
        use super::super::values::CSeq;
        assert_eq!(cseq("1826 REGISTER").map(|c| c.0), Some(1826));
        for v in [
            "1826 REGISTER",
            "0 INVITE",
            "2147483647 ACK",
            "2147483648 ACK",
            "1 FOO-bar",
            "1",
            "1 ",
            "INVITE",
            "1INVITE",
            "1 INVITE x",
            "00000000001 BYE",
            "1\tBYE",
            "-1 BYE",
        ] {
            if let Some((seq, method)) = cseq(v) {
                let c = CSeq::parse(v).unwrap_or_else(|e| panic!("{v}: fast ok, careful {e}"));
                assert_eq!((c.seq, c.method), (seq, method), "{v}");
            }
        }
    }

    #[test]
    fn sip_uris_agree_with_the_uri_parser() {
        for u in [
            "sip:a@h",
            "SIP:a:pw@h:5060;transport=tcp;lr",
            "sips:h",
            "sip:user;phone-context=x@h",
            "sip:a,b@h;maddr=239.255.255.1",
            "sip:a@b@c",
            "sip:h:99999",
            "sip:h;",
            "sip:h;=x",
            "sip:h;a=",
            "sip:a@[::1]:5060;lr",
            "sip:[::1",
            "sip:[]",
            "sip:[::g]",
        ] {
            let fast = sip_uri(u.as_bytes(), 0).is_some_and(|e| e == u.len());
            if fast {
                Uri::parse(u).unwrap_or_else(|e| panic!("{u}: fast ok, careful {e}"));
            }
        }
    }

    /// Values built from the pieces the grammar cares about, so that the
    /// generator reaches both sides of every check.
    fn piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "SIP/2.0/",
            "UDP",
            "TCP",
            " ",
            "\t",
            "h",
            "a.b-c",
            ":",
            "5060",
            "99999",
            "0",
            ";",
            "=",
            "branch",
            "z9hG4bK",
            "ttl",
            "255",
            "256",
            "rport",
            "tag",
            "expires",
            "q",
            "0.5",
            "1.000",
            "2",
            ",",
            "<",
            ">",
            "sip:",
            "SIPS:",
            "tel:",
            "@",
            "\"",
            "\\",
            "[",
            "]",
            "::1",
            "?",
            "x=y",
            "Bob",
            "lr",
            "+sip.instance",
            "é",
            "*",
            "/",
            "",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn fast_acceptance_implies_careful_acceptance(parts in prop::collection::vec(piece(), 0..24)) {
            let v: String = parts.concat();
            let v = v.trim_matches([' ', '\t']);
            agree_fact(v);
        }

        #[test]
        fn likely_values_agree(
            dn in prop::sample::select(vec!["", "Bob ", "\"A B\" ", "\"\" "]),
            user in prop::sample::select(vec!["", "bob@", "a:pw@", "u;x=1@"]),
            host in prop::sample::select(vec!["h", "10.0.0.1", "a.example.com", "[::1]"]),
            port in prop::sample::select(vec!["", ":5060", ":0", ":65536"]),
            uparams in prop::sample::select(vec!["", ";lr", ";transport=tcp;lr", ";x"]),
            hparams in prop::sample::select(vec!["", ";tag=1", " ; tag = 2 ", ";expires=10;q=0.1", ";tag", ";a=\"q,x\""]),
            more in prop::sample::select(vec!["", ", <sip:z@y>", ",<sip:z@y>;tag=9", ", SIP/2.0/TCP y;branch=z9hG4bKb"]),
        ) {
            let addr = format!("{dn}<sip:{user}{host}{port}{uparams}>{hparams}{more}");
            agree_fact(addr.trim());
            let v = format!("SIP/2.0/UDP {host}{port}{hparams};branch=z9hG4bKa{more}");
            agree_fact(&v);
        }
    }
}
