//! Renders a load summary as the HTML report, without the CLI:
//! `cargo run -p sipfleet-cli --example load_report -- SUMMARY.json OUT.html`
//! (what `scripts/report-screenshot` uses).
//!
//! The load modules live in the `sipfleet` binary crate, which an example
//! cannot import, so the files the report needs are included by path.

use std::process::ExitCode;

// Shared source files, at the crate root as their `super::` paths expect;
// the report uses only part of them.
#[allow(dead_code)]
#[path = "../src/load/histogram.rs"]
mod histogram;
#[allow(dead_code)]
#[path = "../src/load/report.rs"]
mod report;
#[allow(dead_code)]
#[path = "../src/load/summary.rs"]
mod summary;
#[allow(dead_code)]
#[path = "../src/load/thresholds.rs"]
mod thresholds;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: load_report SUMMARY.json OUT.html");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(input) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("load_report: cannot read {input}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let summary: summary::Summary = match serde_json::from_str(&text) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("load_report: {input} is not a load summary: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::write(output, report::render_report(&summary)) {
        eprintln!("load_report: cannot write {output}: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
