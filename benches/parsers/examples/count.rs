//! Instruction-count harness for callgrind: runs one parser on one corpus
//! message `ITERS` times, so that
//! `valgrind --tool=callgrind --toggle-collect='count::run*' target/release/examples/count read 0`
//! reports instructions per message (divide by `ITERS`, default 1000). The
//! timing binary (`src/main.rs`) is too noisy on a loaded 2-core machine to
//! see a change of a few hundred instructions; this counter is exact.
//!
//! Arguments: `parse` | `read` (sipfleet parse, or parse + the reads of the
//! table) | `rsipstack` | `rsipstack-read` | `rsip` (the other parsers, as
//! the table runs them), then the message index (0 REGISTER, 1 401, 2 200
//! with 4 Contacts, 3 INVITE, 4 NOTIFY).

use std::hint::black_box;

use bytes::Bytes;
use sipfleet_parser_bench::{
    rsip_parse, rsipstack_parse, rsipstack_parse_and_read, sipfleet_parse, sipfleet_parse_and_read,
    wire, CORPUS,
};

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
        Some("parse") => sipfleet_parse,
        Some("rsipstack") => rsipstack_parse,
        Some("rsipstack-read") => rsipstack_parse_and_read,
        Some("rsip") => rsip_parse,
        _ => sipfleet_parse_and_read,
    };
    let idx: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0);
    let iters: usize = std::env::var("ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let wire = wire(CORPUS[idx % CORPUS.len()].1);
    // One untimed call so lazy statics are initialised outside the count.
    black_box(f(&wire));
    println!("{}", run(f, &wire, iters));
}
