//! `cargo bench` in `benches/parsers`: each parser on each corpus message,
//! with criterion's statistics (confidence intervals, outliers) and its
//! throughput in messages per second. The side-by-side table with ratios
//! is `cargo run --release` (`src/main.rs`), which interleaves the parsers so
//! that machine load hits them alike.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sipfleet_protocol::message::Message;

#[path = "../src/rsipstack_read.rs"]
mod rsipstack_read;

const CORPUS: [(&str, &str); 5] = [
    ("register", include_str!("../corpus/register.sip")),
    ("401", include_str!("../corpus/unauthorized.sip")),
    ("200-4-contacts", include_str!("../corpus/ok_contacts.sip")),
    ("invite-sdp", include_str!("../corpus/invite_sdp.sip")),
    ("notify", include_str!("../corpus/notify.sip")),
];

/// sipfleet: parse, then the reads a UA does (as `src/main.rs`).
fn sipfleet_read(wire: &Bytes) -> usize {
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

fn sipfleet_parse(wire: &Bytes) -> usize {
    Message::parse(wire.clone())
        .expect("sipfleet parses the corpus")
        .headers()
        .len()
}

fn rsipstack_parse(wire: &Bytes) -> usize {
    match rsipstack::sip::parser::parse_message(wire).expect("rsipstack parses the corpus") {
        rsipstack::sip::SipMessage::Request(r) => r.body.len(),
        rsipstack::sip::SipMessage::Response(r) => r.body.len(),
    }
}

fn rsip_parse(wire: &Bytes) -> usize {
    rsip::SipMessage::try_from(&wire[..])
        .expect("rsip parses the corpus")
        .body()
        .len()
}

type Parser = (&'static str, fn(&Bytes) -> usize);

fn parsers(c: &mut Criterion) {
    let parsers: [Parser; 5] = [
        ("sipfleet parse+read", sipfleet_read),
        ("sipfleet parse", sipfleet_parse),
        ("rsipstack parse+read", rsipstack_read::parse_and_read),
        ("rsipstack parse", rsipstack_parse),
        ("rsip parse", rsip_parse),
    ];
    for (name, text) in CORPUS {
        let wire = Bytes::from(text.replace('\n', "\r\n"));
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(1));
        for (parser, f) in parsers {
            group.bench_with_input(BenchmarkId::from_parameter(parser), &wire, |b, w| {
                b.iter(|| f(std::hint::black_box(w)))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, parsers);
criterion_main!(benches);
