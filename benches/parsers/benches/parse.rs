//! `cargo bench` in `benches/parsers`: each parser on each corpus message,
//! with criterion's statistics (confidence intervals, outliers) and its
//! throughput in messages per second. The side-by-side table with ratios
//! is `cargo run --release` (`src/main.rs`), which interleaves the parsers so
//! that machine load hits them alike.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sipfleet_parser_bench::{wire, CORPUS, PARSERS};

fn parsers(c: &mut Criterion) {
    for (name, text) in CORPUS {
        let wire = wire(text);
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(1));
        for (parser, f) in PARSERS {
            group.bench_with_input(BenchmarkId::from_parameter(parser), &wire, |b, w| {
                b.iter(|| f(std::hint::black_box(w)))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, parsers);
criterion_main!(benches);
