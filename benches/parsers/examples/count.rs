//! Instruction-count harness for callgrind: runs one sipfleet function on one
//! corpus message `ITERS` times, so that
//! `valgrind --tool=callgrind --toggle-collect='count::run*' target/release/examples/count read 0`
//! reports instructions per message (divide by `ITERS`, default 1000). The
//! timing binary (`src/main.rs`) is too noisy on a loaded 2-core machine to
//! see a change of a few hundred instructions; this counter is exact.
//!
//! Arguments: `parse` | `read` (parse + the reads of `src/main.rs`) |
//! `rsipstack` | `rsipstack-read` | `rsip` (the other parsers, as the timing
//! binary runs them), then the
//! message index (0 REGISTER, 1 401, 2 200 with 4 Contacts, 3 INVITE, 4 NOTIFY).

use std::hint::black_box;

use bytes::Bytes;
use sipfleet_protocol::message::Message;

#[path = "../src/rsipstack_read.rs"]
mod rsipstack_read;

const CORPUS: [&str; 5] = [
    include_str!("../corpus/register.sip"),
    include_str!("../corpus/unauthorized.sip"),
    include_str!("../corpus/ok_contacts.sip"),
    include_str!("../corpus/invite_sdp.sip"),
    include_str!("../corpus/notify.sip"),
];

fn read(wire: &Bytes) -> usize {
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

fn parse(wire: &Bytes) -> usize {
    let m = Message::parse(wire.clone()).expect("sipfleet parses the corpus");
    m.headers().len()
}

/// rsipstack 0.7's parser, as `src/main.rs` calls it.
fn rsipstack(wire: &Bytes) -> usize {
    match rsipstack::sip::parser::parse_message(wire).expect("rsipstack parses the corpus") {
        rsipstack::sip::SipMessage::Request(r) => r.body.len(),
        rsipstack::sip::SipMessage::Response(r) => r.body.len(),
    }
}

/// rsip 0.4, as `src/main.rs` calls it.
fn rsip(wire: &Bytes) -> usize {
    rsip::SipMessage::try_from(&wire[..])
        .expect("rsip parses the corpus")
        .body()
        .len()
}

#[inline(never)]
fn run(f: fn(&Bytes) -> usize, wire: &Bytes, iters: usize) -> usize {
    let mut n = 0;
    for _ in 0..iters {
        n += f(black_box(wire));
    }
    n
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let f: fn(&Bytes) -> usize = match args.get(1).map(String::as_str) {
        Some("parse") => parse,
        Some("rsipstack") => rsipstack,
        Some("rsipstack-read") => rsipstack_read::parse_and_read,
        Some("rsip") => rsip,
        _ => read,
    };
    let idx: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0);
    let iters: usize = std::env::var("ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let wire = Bytes::from(CORPUS[idx % CORPUS.len()].replace('\n', "\r\n"));
    // One untimed call so lazy statics are initialised outside the count.
    black_box(f(&wire));
    println!("{}", run(f, &wire, iters));
}
