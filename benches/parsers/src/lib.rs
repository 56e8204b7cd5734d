//! What the three targets of this bench crate share: the corpus and the
//! parsers under comparison, each as a `fn(&Bytes) -> usize` that returns
//! something derived from what it parsed (so the work cannot be optimised
//! away). The side-by-side table is `src/main.rs`, criterion's statistics
//! `benches/parse.rs`, exact instruction counts `examples/count.rs`.
//!
//! Two figures per parser: `parse` (the message split and, for sipfleet,
//! validated, with the branch/tags/Call-ID/CSeq/Expires recorded), and
//! `parse+read` (then reading what a UA reads: top Via branch, From and To
//! tags, Call-ID, CSeq, first Contact's host, Expires). rsipstack keeps
//! header values as strings and parses them when read, so its parse+read is
//! the like-for-like figure next to sipfleet's.

use bytes::Bytes;
use sipfleet_protocol::message::Message;

mod rsipstack_read;

pub use rsipstack_read::parse_and_read as rsipstack_parse_and_read;

/// The corpus: name and text (LF line ends; [`wire`] makes them CRLF).
pub const CORPUS: [(&str, &str); 5] = [
    ("REGISTER", include_str!("../corpus/register.sip")),
    (
        "401 + WWW-Authenticate",
        include_str!("../corpus/unauthorized.sip"),
    ),
    (
        "200 OK, 4 Contacts",
        include_str!("../corpus/ok_contacts.sip"),
    ),
    ("INVITE + SDP", include_str!("../corpus/invite_sdp.sip")),
    ("NOTIFY", include_str!("../corpus/notify.sip")),
];

/// A corpus text as it goes on the wire.
pub fn wire(text: &str) -> Bytes {
    Bytes::from(text.replace('\n', "\r\n"))
}

pub type Parser = (&'static str, fn(&Bytes) -> usize);

/// Every parser and figure, sipfleet parse+read first (the ratios' base).
pub const PARSERS: [Parser; 5] = [
    ("sipfleet parse+read", sipfleet_parse_and_read),
    ("sipfleet parse", sipfleet_parse),
    ("rsipstack parse+read", rsipstack_parse_and_read),
    ("rsipstack 0.7 parse", rsipstack_parse),
    ("rsip 0.4 parse", rsip_parse),
];

/// sipfleet: parse (which validates Via, From, To, Call-ID, CSeq, Contact,
/// Expires, ...) and read what a UA reads: top Via branch, From/To tags,
/// Call-ID, CSeq, first Contact (its URI host), Expires.
pub fn sipfleet_parse_and_read(wire: &Bytes) -> usize {
    let m = Message::parse(wire.clone()).expect("sipfleet parses the corpus");
    let h = m.headers();
    let mut n = h.branch().ok().flatten().map_or(0, str::len);
    n += h.from_tag().ok().flatten().map_or(0, str::len);
    n += h.to_tag().ok().flatten().map_or(0, str::len);
    n += h.call_id().map_or(0, str::len);
    n += h.cseq().map_or(0, |c| c.seq as usize);
    n += h
        .contacts()
        .next()
        .and_then(Result::ok)
        .map_or(0, |c| c.uri().host().len());
    n += h.expires().ok().flatten().unwrap_or(0) as usize;
    n + m.body().len()
}

/// sipfleet: parse only.
pub fn sipfleet_parse(wire: &Bytes) -> usize {
    let m = Message::parse(wire.clone()).expect("sipfleet parses the corpus");
    m.headers().len()
}

/// rsipstack 0.7: its own parser (headers kept as owned strings, typed
/// lazily).
pub fn rsipstack_parse(wire: &Bytes) -> usize {
    let m = rsipstack::sip::parser::parse_message(wire).expect("rsipstack parses the corpus");
    match m {
        rsipstack::sip::SipMessage::Request(r) => r.body.len(),
        rsipstack::sip::SipMessage::Response(r) => r.body.len(),
    }
}

/// rsip 0.4.
pub fn rsip_parse(wire: &Bytes) -> usize {
    let m = rsip::SipMessage::try_from(&wire[..]).expect("rsip parses the corpus");
    m.body().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every parser takes every corpus message (each panics otherwise).
    #[test]
    fn every_parser_takes_the_whole_corpus() {
        for (_, text) in CORPUS {
            let w = wire(text);
            for (_, parse) in PARSERS {
                parse(&w);
            }
        }
    }
}
