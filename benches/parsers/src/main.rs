//! Parser benchmark: sipfleet vs rsipstack vs rsip on the same corpus, in the
//! same run (the parsers and the corpus are in `src/lib.rs`).
//!
//! This binary prints the side-by-side table (messages per second and
//! ratios); `cargo bench` runs the same parsers under criterion
//! (`benches/parse.rs`) for per-benchmark statistics. Each round here runs
//! every parser on every message, interleaved, so machine load hits all
//! parsers alike; the figure reported is the median of the rounds.
//!
//! Run: `cargo run --release` in `benches/parsers` (about a minute).
//! `ROUNDS` and `ITERS` environment variables change the effort. For exact
//! instruction counts (what to look at when changing the parser on a loaded
//! machine), see `examples/count.rs`.

use std::hint::black_box;
use std::time::Instant;

use sipfleet_parser_bench::{wire, CORPUS, PARSERS};

fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let iters: usize = std::env::var("ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let cases: Vec<_> = CORPUS
        .iter()
        .map(|(name, text)| (*name, wire(text)))
        .collect();
    // Warm up and check every parser accepts every message.
    for (_, w) in &cases {
        for (_, p) in &PARSERS {
            black_box(p(w));
        }
    }
    // samples[case][parser] = per-round ns/message
    let mut samples = vec![vec![Vec::with_capacity(rounds); PARSERS.len()]; cases.len()];
    for _ in 0..rounds {
        for (ci, (_, w)) in cases.iter().enumerate() {
            for (pi, (_, p)) in PARSERS.iter().enumerate() {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(p(black_box(w)));
                }
                samples[ci][pi].push(t.elapsed().as_nanos() as f64 / iters as f64);
            }
        }
    }
    println!(
        "median of {rounds} rounds x {iters} parses; ns/message (messages/s); ratio = other / sipfleet parse+read"
    );
    for (ci, (name, w)) in cases.iter().enumerate() {
        println!("\n{} ({} bytes)", name, w.len());
        let med: Vec<f64> = samples[ci].iter_mut().map(|s| median(s)).collect();
        for (pi, (parser, _)) in PARSERS.iter().enumerate() {
            println!(
                "  {:<22} {:>8.0} ns  {:>10.0} msg/s  ratio {:>5.2}",
                parser,
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
