//! Parser benchmark: sipfleet vs rsipstack vs rsip on the same corpus, in the
//! same run.
//!
//! This binary prints the side-by-side table (messages per second and
//! ratios); `cargo bench` runs the same parsers under criterion
//! (`benches/parse.rs`) for per-benchmark statistics. Each round here runs
//! every parser on every message, interleaved, so machine load hits all
//! parsers alike; the figure reported is the median of the rounds.
//!
//! Two figures per parser: `parse` (the message split and, for sipfleet,
//! validated, with the branch/tags/Call-ID/CSeq/Expires recorded), and
//! `parse+read` (then reading what a UA reads: top Via branch, From and To
//! tags, Call-ID, CSeq, first Contact's host, Expires). rsipstack keeps
//! header values as strings and parses them when read, so its parse+read is
//! the like-for-like figure next to sipfleet's.
//!
//! Run: `cargo run --release` in `benches/parsers` (about a minute).
//! `ROUNDS` and `ITERS` environment variables change the effort. For exact
//! instruction counts (what to look at when changing the parser on a loaded
//! machine), see `examples/count.rs`.

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use sipfleet_protocol::message::Message;

mod rsipstack_read;

struct Case {
    name: &'static str,
    wire: Bytes,
}

fn corpus() -> Vec<Case> {
    let load = |name: &'static str, text: &str| Case {
        name,
        wire: Bytes::from(text.replace('\n', "\r\n")),
    };
    vec![
        load("REGISTER", include_str!("../corpus/register.sip")),
        load(
            "401 + WWW-Authenticate",
            include_str!("../corpus/unauthorized.sip"),
        ),
        load(
            "200 OK, 4 Contacts",
            include_str!("../corpus/ok_contacts.sip"),
        ),
        load("INVITE + SDP", include_str!("../corpus/invite_sdp.sip")),
        load("NOTIFY", include_str!("../corpus/notify.sip")),
    ]
}

/// sipfleet: parse (which validates Via, From, To, Call-ID, CSeq, Contact,
/// Expires, ...) and read what a UA reads: top Via branch, From/To tags,
/// Call-ID, CSeq, first Contact (its URI host), Expires.
fn sipfleet_parse_and_read(wire: &Bytes) -> usize {
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
fn sipfleet_parse(wire: &Bytes) -> usize {
    let m = Message::parse(wire.clone()).expect("sipfleet parses the corpus");
    m.headers().len()
}

/// rsipstack 0.7: its own parser (headers kept as owned strings, typed
/// lazily).
fn rsipstack_parse(wire: &Bytes) -> usize {
    let m = rsipstack::sip::parser::parse_message(wire).expect("rsipstack parses the corpus");
    match m {
        rsipstack::sip::SipMessage::Request(r) => r.body.len(),
        rsipstack::sip::SipMessage::Response(r) => r.body.len(),
    }
}

/// rsip 0.4.
fn rsip_parse(wire: &Bytes) -> usize {
    let m = rsip::SipMessage::try_from(&wire[..]).expect("rsip parses the corpus");
    m.body().len()
}

type Parser = (&'static str, fn(&Bytes) -> usize);

fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let iters: usize = std::env::var("ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let parsers: [Parser; 5] = [
        ("sipfleet parse+read", sipfleet_parse_and_read),
        ("sipfleet parse", sipfleet_parse),
        ("rsipstack parse+read", rsipstack_read::parse_and_read),
        ("rsipstack 0.7 parse", rsipstack_parse),
        ("rsip 0.4 parse", rsip_parse),
    ];
    let cases = corpus();
    // Warm up and check every parser accepts every message.
    for c in &cases {
        for (_, p) in &parsers {
            black_box(p(&c.wire));
        }
    }
    // samples[case][parser] = per-round ns/message
    let mut samples = vec![vec![Vec::with_capacity(rounds); parsers.len()]; cases.len()];
    for _ in 0..rounds {
        for (ci, c) in cases.iter().enumerate() {
            for (pi, (_, p)) in parsers.iter().enumerate() {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(p(black_box(&c.wire)));
                }
                samples[ci][pi].push(t.elapsed().as_nanos() as f64 / iters as f64);
            }
        }
    }
    println!(
        "median of {rounds} rounds x {iters} parses; ns/message (messages/s); ratio = other / sipfleet parse+read"
    );
    for (ci, c) in cases.iter().enumerate() {
        println!("\n{} ({} bytes)", c.name, c.wire.len());
        let med: Vec<f64> = samples[ci].iter_mut().map(|s| median(s)).collect();
        for (pi, (name, _)) in parsers.iter().enumerate() {
            println!(
                "  {:<22} {:>8.0} ns  {:>10.0} msg/s  ratio {:>5.2}",
                name,
                med[pi],
                1e9 / med[pi],
                med[pi] / med[0]
            );
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
