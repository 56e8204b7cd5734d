use std::collections::BTreeMap;

use super::super::histogram;
use super::*;

fn sample() -> Summary {
    let text = include_str!("../../../tests/data/load-summary-sample.json");
    serde_json::from_str(text).unwrap()
}

/// Every `<svg>...</svg>` of the page, parsed as XML.
fn svgs(html: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        let Some(len) = rest[start..].find("</svg>") else {
            panic!("unterminated svg");
        };
        let svg = &rest[start..start + len + "</svg>".len()];
        roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("svg is not well-formed: {e}"));
        out.push(svg.to_string());
        rest = &rest[start + len..];
    }
    out
}

fn minimal() -> Summary {
    Summary {
        schema: SCHEMA.into(),
        started_unix_ms: 0,
        duration_ms: 0,
        requested_duration_ms: None,
        interrupted: false,
        shards: vec![],
        lines: LineCounts::default(),
        registrations: RegistrationStats {
            registers_per_registration: f64::NAN,
            ..Default::default()
        },
        register_latency_ms: Histogram::default(),
        failovers: vec![],
        failbacks: vec![],
        calls: CallStats::default(),
        timeline: vec![],
        faults: vec![],
        thresholds: vec![],
    }
}

#[test]
fn sample_report_has_figures_plots_and_tables() {
    let s = sample();
    let html = render_report(&s);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    // Offline: nothing is fetched.
    for external in ["http://", "https://", "<script", "<link", "@import", "url("] {
        let allowed = external == "http://"
            && html.matches("http://").count() == html.matches("http://www.w3.org").count();
        assert!(allowed || !html.contains(external), "{external}");
    }
    let svgs = svgs(&html);
    assert_eq!(svgs.len(), 4, "registered, rate, latency, histogram");
    for id in [
        "plot-registered",
        "plot-rate",
        "plot-latency",
        "plot-histogram",
        "figures",
        "thresholds",
        "waves",
        "moves",
        "faults",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
    }
    // Both SBCs in the legend of (a), and the waves on (a)-(c).
    assert!(svgs[0].contains("127.0.0.11:5060") && svgs[0].contains("127.0.0.12:5060"));
    for svg in &svgs[..3] {
        assert!(svg.contains("failover 60 s"), "{svg:.200}");
        assert!(svg.contains("failover 92 s"));
        assert!(svg.contains("failback 185 s"));
    }
    assert!(svgs[3].contains("p99 489 ms") && svgs[3].contains("p50 50 ms"));
    // Figures.
    assert!(html.contains("98.00 %"));
    assert!(html.contains("50 / 489 ms"));
    assert!(html.contains("9800 / 9800"));
    assert!(html.contains(">2.12<"));
    // Thresholds coloured.
    assert_eq!(html.matches("<tr class=\"pass\">").count(), 3);
    assert_eq!(html.matches("<tr class=\"fail\">").count(), 1);
    assert!(html.contains("3 of 4 passed"));
    // Faults: 3 waves, and the 40 raw entries.
    assert!(html.contains("icmp 6533") && html.contains("timeout 3267"));
    assert_eq!(
        html.matches("<tr><td class=\"num\">").count(),
        3 + s.faults.len()
    );
}

#[test]
fn strings_from_the_summary_are_escaped() {
    let mut s = sample();
    let evil = "<script>alert(\"x\")</script>&'";
    for p in &mut s.timeline {
        if let Some(n) = p.registered_by_sbc.remove("127.0.0.12:5060") {
            p.registered_by_sbc.insert(evil.into(), n);
        }
    }
    s.faults[0].reason = evil.into();
    s.faults[0].to = evil.into();
    s.failovers[0].from = evil.into();
    s.thresholds[0].expr = evil.into();
    s.thresholds[0].note = Some(evil.into());
    s.registrations.failures_by_reason.insert(evil.into(), 1);
    s.shards[0].first_user = evil.into();
    let html = render_report(&s);
    assert!(!html.contains("<script"), "raw markup leaked");
    assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"));
    // Plotters escapes the SVG legend; the SVG still parses.
    assert_eq!(svgs(&html).len(), 4);
}

#[test]
fn empty_summary_renders_with_notes() {
    let html = render_report(&minimal());
    assert!(html.contains("id=\"no-timeline\""));
    assert!(html.contains("No data"));
    assert!(svgs(&html).is_empty());
    assert!(html.contains("no registration completed"));
    assert!(html.contains("No threshold was given"));
    assert!(html.contains("No failover or failback"));
    assert!(html.contains("n/a"), "NaN and 0/0 ratios read n/a");
    assert!(html.contains("1970-01-01 00:00:00 UTC"));
}

#[test]
fn one_point_timeline_and_zero_latency_render() {
    let mut s = minimal();
    s.timeline.push(TimelinePoint {
        t_ms: 1000,
        registered_by_sbc: BTreeMap::from([("a:5060".into(), 3)]),
        registered: 3,
        registers: 6,
        register_rate: f64::NAN,
        latency_p50_ms: 20,
        latency_p99_ms: 30,
        ..Default::default()
    });
    let mut h = histogram::new_histogram();
    h.record(0).unwrap();
    s.register_latency_ms = histogram::encode(&h);
    let html = render_report(&s);
    assert_eq!(svgs(&html).len(), 4);
}

#[test]
fn a_corrupt_histogram_becomes_a_note() {
    let mut s = sample();
    s.register_latency_ms.hdr_v2_base64 = "garbage!".into();
    let html = render_report(&s);
    assert_eq!(svgs(&html).len(), 3);
    assert!(html.contains("<p class=\"note\" id=\"plot-histogram\">"));
    assert!(html.contains("not base64"));
}

#[test]
fn histogram_with_far_outliers_says_what_is_cut() {
    let mut s = sample();
    let mut h = histogram::decode(&s.register_latency_ms).unwrap();
    h.record_n(600_000, 3).unwrap();
    s.register_latency_ms = histogram::encode(&h);
    let html = render_report(&s);
    let svgs = svgs(&html);
    assert!(svgs[3].contains("3 beyond"), "{}", &svgs[3][..200]);
    assert!(svgs[3].contains("up to 600"));
}

#[test]
fn helpers_format_for_people() {
    assert_eq!(utc(0), "1970-01-01 00:00:00");
    assert_eq!(utc(951_782_400_000 + 3_723_000), "2000-02-29 01:02:03");
    assert_eq!(utc(1_780_000_000_000), "2026-05-28 20:26:40");
    assert_eq!(number(f64::NAN, 2), "n/a");
    assert_eq!(number(2.1247, 2), "2.12");
    assert_eq!(number(3.0, 4), "3");
    assert_eq!(percent(1, 0), "n/a");
    assert_eq!(percent(999, 1000), "99.90 %");
    assert_eq!(duration(450), "450 ms");
    assert_eq!(duration(9_997), "10.0 s");
    assert_eq!(duration(301_500), "5 min 1 s");
    assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
}

#[test]
fn many_waves_keep_their_labels_within_four_rows() {
    let mut s = sample();
    s.faults = (0..60)
        .map(|k| FaultEntry {
            t_ms: 10_000 + k * 4_000,
            last_t_ms: 10_500 + k * 4_000,
            kind: if k % 2 == 0 { "failover" } else { "failback" }.into(),
            reason: "icmp".into(),
            from: "127.0.0.11:5060".into(),
            to: "127.0.0.12:5060".into(),
            lines: 10,
        })
        .collect();
    let html = render_report(&s);
    let svgs = svgs(&html);
    // 60 waves 4 s apart on a 300 s axis: labels (about 11 s wide) fit
    // three to four rows; the rest are left out rather than piled up.
    let labels = svgs[0].matches(">\nfailover ").count() + svgs[0].matches(">\nfailback ").count();
    assert!((12..60).contains(&labels), "{labels} labels");
    assert_eq!(
        html.matches("<td>failover</td><td>127.0.0.11:5060</td>")
            .count(),
        30
    );
}
