//! The load report in a real browser: headless Chromium loads the report
//! of the checked-in sample run, its DOM must hold the figures and the four
//! plots, and its screenshot must be a real picture (what
//! `scripts/report-screenshot` makes for `docs/load-report.png`).
//!
//! Needs `chromium` (Debian's, installed by `scripts/lab-install`), or the
//! browser named by `SIPFLEET_CHROMIUM`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// The report lives in the `sipfleet` binary crate, which a test cannot
// import: its source files are included by path, at the crate root as
// their `super::` paths expect; this test uses only part of them (their
// unit tests, compiled in with them, run here a second time).
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

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/load-summary-sample.json"
);

fn chromium() -> String {
    std::env::var("SIPFLEET_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// Runs headless Chromium with `args` on `url`, within a minute; its
/// stdout (through a file: a dumped DOM is larger than a pipe's buffer,
/// and Chromium would block on it before exiting).
fn run_chromium(profile: &Path, args: &[&str], url: &str) -> String {
    let stdout_path = profile.with_extension("stdout");
    let stdout = std::fs::File::create(&stdout_path).expect("create stdout file");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): install it with scripts/lab-install",
                chromium()
            )
        });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "chromium failed: {status:?}");
    std::fs::read_to_string(&stdout_path).expect("chromium's stdout")
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(
        png.len() > 24 && png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG"
    );
    assert_eq!(&png[12..16], b"IHDR");
    let be = |i: usize| u32::from_be_bytes([png[i], png[i + 1], png[i + 2], png[i + 3]]);
    (be(16), be(20))
}

#[test]
fn sample_report_renders_in_headless_chromium() {
    let text = std::fs::read_to_string(SAMPLE).expect("sample summary");
    let summary: summary::Summary = serde_json::from_str(&text).expect("sample parses");
    let dir = tempfile::tempdir().expect("tempdir");
    let html = dir.path().join("report.html");
    std::fs::write(&html, report::render_report(&summary)).expect("write report");
    let url = format!("file://{}", html.display());
    let profile = dir.path().join("profile");

    let dom = run_chromium(&profile, &["--dump-dom"], &url);
    assert_eq!(dom.matches("<svg").count(), 4, "four plots in the DOM");
    for id in [
        "figures",
        "thresholds",
        "plot-registered",
        "plot-rate",
        "plot-latency",
        "plot-histogram",
        "waves",
        "faults",
    ] {
        assert!(
            dom.contains(&format!("id=\"{id}\"")),
            "#{id} missing from the DOM"
        );
    }
    for text in [
        "98.00 %",
        "50 / 489 ms",
        "9800 / 9800",
        "127.0.0.11:5060",
        "127.0.0.12:5060",
        "failover 60 s",
        "failback 185 s",
        "FAIL",
    ] {
        assert!(dom.contains(text), "{text:?} missing from the DOM");
    }
    // The SVG was parsed as SVG, not as text: its paths are elements.
    assert!(dom.matches("<path").count() + dom.matches("<polyline").count() >= 8);

    let png = dir.path().join("report.png");
    run_chromium(
        &profile,
        &[
            "--window-size=1280,2200",
            &format!("--screenshot={}", png.display()),
        ],
        &url,
    );
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert_eq!(png_size(&bytes), (1280, 2200));
    // A blank page of that size compresses to a few KB; plots, tables and
    // text make well over 50 KB.
    assert!(
        bytes.len() > 50_000,
        "screenshot is only {} bytes: an empty page?",
        bytes.len()
    );
}
