//! `sipfleet load` as a user runs it: the real binary against the real lab
//! (Kamailio + dnsmasq on loopback). A load of 200 lines rides out SBC 1
//! dying and coming back, and its summary, stats file, report and
//! thresholds say so; four shards run as four processes add up, through
//! `sipfleet load merge`, to the same counts as one process; bad input is
//! one line on stderr and exit 2 before anything runs.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sipfleet_lab::{Lab, LabConfig, Mode, Transport};

/// The base configuration: the lab's domain over UDP, registrations of
/// `expires` seconds (refreshed at half), failover at once on ICMP and
/// failback at the next refresh (`failBack.mode=registration`).
fn base(lab: &Lab, dir: &Path, expires: u32) -> PathBuf {
    let path = dir.join("base.cfg");
    std::fs::write(
        &path,
        format!(
            "voIpProt.server.1.address=\"{domain}\"\n\
             voIpProt.server.1.port=\"0\"\n\
             voIpProt.server.1.transport=\"UDPOnly\"\n\
             voIpProt.server.1.expires=\"{expires}\"\n\
             voIpProt.server.1.registerRetry.baseTimeOut=\"10\"\n\
             voIpProt.server.1.failOver.reRegisterOn=\"1\"\n\
             voIpProt.server.1.failOver.failRegistrationOn=\"1\"\n\
             voIpProt.server.1.failOver.failBack.mode=\"registration\"\n\
             voIpProt.SIP.authOptimizedInFailover=\"1\"\n\
             reg.1.displayName=\"Load {{index}}\"\n\
             tcpIpApp.dns.server=\"{dns}\"\n",
            domain = lab.domain(),
            dns = lab.dns_addr()
        ),
    )
    .unwrap();
    path
}

fn sipfleet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sipfleet"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

/// The child's stderr, line by line, on a channel (the plain progress
/// lines: stderr is not a terminal).
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads progress lines until one satisfies `pred` (or `limit` passes);
/// every line read is kept in `seen`.
fn wait_line(
    rx: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    limit: Duration,
    pred: impl Fn(&str) -> bool,
) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = pred(&line);
                seen.push(line);
                if hit {
                    return true;
                }
            }
            Err(_) => return false,
        }
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(started.elapsed() < limit, "did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// 200 lines; SBC 1 dies once all are registered there, and comes back
/// once all have failed over to SBC 2; SIGTERM once all are back. The
/// summary tells the story: the failover wave (ICMP, SBC 1 → SBC 2), the
/// failback wave, every line registered on SBC 1 at the end; the stats
/// file has one row a second; the thresholds pass (exit 0), and the same
/// summary merged under a threshold it fails exits 2 and says which.
#[test]
fn load_rides_out_an_sbc_failure_and_reports_it() {
    let lab = Lab::start(LabConfig {
        sbc_count: 2,
        ..LabConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = base(&lab, dir.path(), 10);
    let (summary, stats, report) = (
        dir.path().join("summary.json"),
        dir.path().join("stats.csv"),
        dir.path().join("report.html"),
    );
    let sbc1 = lab.sbc(1).addr(Transport::Udp).to_string();
    let sbc2 = lab.sbc(2).addr(Transport::Udp).to_string();
    let mut child = sipfleet()
        .args(["load", "--lines", "200", "--users", "20000.."])
        .args(["--password-pattern", "pw{user}"])
        .args(["--calls-per-line-per-hour", "36", "--hold", "2"])
        .arg("--call-to")
        .arg(format!("sip:9001@{}", lab.domain()))
        .args(["--threshold", "registered_ratio>=0.999"])
        .args(["--threshold", "failovers>=200"])
        .args(["--threshold", "failbacks>=200"])
        .arg("--config")
        .arg(&cfg)
        .arg("--stats")
        .arg(&stats)
        .arg("--summary")
        .arg(&summary)
        .arg("--report")
        .arg(&report)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stderr_lines(&mut child);
    let mut seen = Vec::new();
    let all_on = |sbc: &str| {
        let needle = format!("[{sbc} 200]");
        move |l: &str| l.contains("registered 200/200") && l.contains(&needle)
    };
    let story = |seen: &[String]| seen.join("\n");
    assert!(
        wait_line(&rx, &mut seen, Duration::from_secs(10), all_on(&sbc1)),
        "every line registers on SBC 1:\n{}",
        story(&seen)
    );
    lab.set_mode(1, Mode::Dead).unwrap();
    assert!(
        wait_line(&rx, &mut seen, Duration::from_secs(12), all_on(&sbc2)),
        "every line fails over to SBC 2:\n{}",
        story(&seen)
    );
    lab.set_mode(1, Mode::Ok).unwrap();
    assert!(
        wait_line(&rx, &mut seen, Duration::from_secs(12), all_on(&sbc1)),
        "every line fails back to SBC 1:\n{}",
        story(&seen)
    );
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = wait_exit(&mut child, Duration::from_secs(15));
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
        seen.push(line);
    }
    assert_eq!(status.code(), Some(0), "{}", story(&seen));

    let s = read_json(&summary);
    let all = story(&seen);
    assert_eq!(s["schema"], "sipfleet.load.summary/1");
    let lines = &s["lines"];
    assert_eq!(count(&lines["configured"]), 200, "{all}");
    assert_eq!(count(&lines["ever_registered"]), 200);
    assert_eq!(count(&lines["registered_at_end"]), 200);
    assert_eq!(count(&lines["never_registered"]), 0);
    assert_eq!(count(&lines["registered_by_sbc_at_end"][&sbc1]), 200);
    assert_eq!(s["shards"][0]["first_user"], "20000");
    assert_eq!(s["shards"][0]["last_user"], "20199");
    let regs = &s["registrations"];
    assert_eq!(count(&regs["registers_by_purpose"]["initial"]), 200);
    assert!(count(&regs["registers_by_purpose"]["failover"]) >= 200);
    assert!(count(&regs["registers_by_purpose"]["failback"]) >= 200);
    assert!(count(&regs["registers_by_purpose"]["unregister"]) >= 200);
    assert!(count(&regs["registered"]) >= 600, "{regs}");
    // Every failover was ICMP from SBC 1 to SBC 2; every failback back.
    let moves = |key: &str| s[key].as_array().unwrap().clone();
    let failovers = moves("failovers");
    assert!(!failovers.is_empty());
    for m in &failovers {
        assert_eq!(
            (m["reason"].as_str(), m["from"].as_str(), m["to"].as_str()),
            (Some("icmp"), Some(sbc1.as_str()), Some(sbc2.as_str())),
            "{m}"
        );
    }
    let failbacks = moves("failbacks");
    assert_eq!(failbacks.len(), 1, "{failbacks:?}");
    assert_eq!(failbacks[0]["from"], sbc2.as_str());
    assert_eq!(failbacks[0]["to"], sbc1.as_str());
    // The fault timeline: failover waves that moved every line (lines on
    // a call may meet the dead SBC first, in a wave of their own), then
    // failback waves.
    let faults = moves("faults");
    let waves = |kind: &str| -> Vec<Value> {
        faults
            .iter()
            .filter(|f| f["kind"] == kind)
            .cloned()
            .collect()
    };
    let (over, back) = (waves("failover"), waves("failback"));
    assert!(!over.is_empty() && !back.is_empty(), "{faults:#?}");
    assert!(
        over.iter().map(|f| count(&f["lines"])).sum::<u64>() >= 200,
        "{faults:#?}"
    );
    assert!(over.iter().all(|f| f["reason"] == "icmp"), "{faults:#?}");
    assert!(
        count(&over[0]["t_ms"]) < count(&back[0]["t_ms"]),
        "{faults:#?}"
    );
    for f in &faults {
        assert!(count(&f["last_t_ms"]) >= count(&f["t_ms"]), "{f}");
        assert!((1..=200).contains(&count(&f["lines"])), "{f}");
    }
    // Latency: at least every initial registration, failover and failback.
    let latency = &s["register_latency_ms"];
    assert!(count(&latency["count"]) >= 600, "{latency}");
    assert!(count(&latency["p50"]) <= count(&latency["p99"]));
    assert!(!latency["hdr_v2_base64"].as_str().unwrap().is_empty());
    // Calls were placed and answered by the SBC.
    assert!(count(&s["calls"]["attempted"]) > 0, "{}", s["calls"]);
    assert!(count(&s["calls"]["answered"]) > 0, "{}", s["calls"]);
    // The thresholds as given, all passed.
    let th = s["thresholds"].as_array().unwrap();
    assert_eq!(th.len(), 3);
    assert!(th.iter().all(|t| t["passed"] == true), "{th:?}");
    assert_eq!(th[0]["expr"], "registered_ratio>=0.999");

    // The stats file: a header and one row per second, on the second.
    let csv = std::fs::read_to_string(&stats).unwrap();
    let mut rows = csv.lines();
    assert!(rows.next().unwrap().starts_with("t_ms,registered,"));
    let rows: Vec<Vec<&str>> = rows.map(|r| r.split(',').collect()).collect();
    let timeline = s["timeline"].as_array().unwrap();
    assert_eq!(rows.len(), timeline.len());
    assert!(rows.len() >= 8, "{csv}");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[0], ((i as u64 + 1) * 1000).to_string(), "{csv}");
    }
    assert!(rows.iter().any(|r| r[10] == format!("{sbc2}=200")), "{csv}");
    // The last row is after the un-REGISTERs: nobody registered.
    assert_eq!(rows.last().unwrap()[1], "0", "{csv}");

    // The report is written.
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains("<html") || html.contains("<!DOCTYPE"),
        "{html}"
    );

    // The same summary under a threshold it fails: exit 2, and why.
    let out = sipfleet()
        .args(["load", "merge"])
        .arg(&summary)
        .args(["--threshold", "failovers<1"])
        .arg("--summary")
        .arg(dir.path().join("merged.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("threshold failed: failovers<1"), "{err}");
    let merged = read_json(&dir.path().join("merged.json"));
    assert_eq!(merged["thresholds"][0]["passed"], false);
    assert_eq!(merged["lines"], s["lines"]);
}

/// A run whose threshold fails exits 2, lists the failed threshold (and
/// only it) on stderr, and still writes the summary with every result.
#[test]
fn a_failed_threshold_exits_2_after_the_run() {
    let lab = Lab::start(LabConfig {
        sbc_count: 1,
        ..LabConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = base(&lab, dir.path(), 60);
    let summary = dir.path().join("s.json");
    let out = sipfleet()
        .args([
            "load",
            "--users",
            "1000..=1004",
            "--password-pattern",
            "pw{user}",
        ])
        .args(["--duration", "2", "--interval", "500ms"])
        .args(["--threshold", "registered_ratio>=1"])
        .args(["--threshold", "max_register_ms<0"])
        .arg("--config")
        .arg(&cfg)
        .arg("--summary")
        .arg(&summary)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("threshold failed: max_register_ms<0"), "{err}");
    assert!(!err.contains("threshold failed: registered_ratio"), "{err}");
    let s = read_json(&summary);
    assert_eq!(count(&s["lines"]["configured"]), 5);
    assert_eq!(count(&s["lines"]["registered_at_end"]), 5);
    assert_eq!(s["thresholds"][0]["passed"], true);
    assert_eq!(s["thresholds"][1]["passed"], false);
    // Half-second buckets.
    assert_eq!(s["timeline"][0]["t_ms"], 500);
}

fn shard_run(cfg: &Path, summary: &Path, shard: Option<&str>, env_index: Option<u32>) -> Child {
    let mut cmd = sipfleet();
    cmd.args(["load", "--lines", "200", "--users", "20000.."])
        .args(["--password-pattern", "pw{user}", "--duration", "4"])
        .arg("--config")
        .arg(cfg)
        .arg("--summary")
        .arg(summary)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(shard) = shard {
        cmd.args(["--shard", shard]);
    }
    if let Some(index) = env_index {
        cmd.args(["--shards", "4"])
            .env("JOB_COMPLETION_INDEX", index.to_string());
    }
    cmd.spawn().unwrap()
}

fn finished(child: Child) -> Output {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    out
}

/// Four shards of 50 lines, four processes at once (one of them told its
/// index by JOB_COMPLETION_INDEX, as in a Kubernetes indexed Job), merged,
/// count what one process of 200 lines counts.
#[test]
fn four_shards_merged_count_as_one_run() {
    let lab = Lab::start(LabConfig {
        sbc_count: 1,
        ..LabConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // One hour: no refresh within the run, so every count is exact.
    let cfg = base(&lab, dir.path(), 3600);
    let whole = dir.path().join("whole.json");
    finished(shard_run(&cfg, &whole, None, None));

    let parts: Vec<PathBuf> = (0..4)
        .map(|i| dir.path().join(format!("summary-{i}.json")))
        .collect();
    let children: Vec<Child> = (0..4u32)
        .map(|i| {
            let shard = format!("{i}/4");
            match i {
                3 => shard_run(&cfg, &parts[3], None, Some(3)),
                _ => shard_run(&cfg, &parts[i as usize], Some(&shard), None),
            }
        })
        .collect();
    for child in children {
        finished(child);
    }
    for (i, part) in parts.iter().enumerate() {
        let s = read_json(part);
        let shard = &s["shards"][0];
        assert_eq!(count(&shard["index"]), i as u64);
        assert_eq!(count(&shard["count"]), 4);
        assert_eq!(count(&shard["lines"]), 50);
        assert_eq!(shard["first_user"], (20000 + 50 * i).to_string());
        assert_eq!(shard["last_user"], (20049 + 50 * i).to_string());
    }
    let merged = dir.path().join("merged.json");
    let out = sipfleet()
        .args(["load", "merge"])
        .args(&parts)
        .arg("--summary")
        .arg(&merged)
        .args(["--threshold", "registered_ratio>=1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (m, w) = (read_json(&merged), read_json(&whole));
    assert_eq!(m["shards"].as_array().unwrap().len(), 4);
    for key in [
        "configured",
        "ever_registered",
        "registered_at_end",
        "never_registered",
    ] {
        assert_eq!(m["lines"][key], w["lines"][key], "lines.{key}");
    }
    assert_eq!(count(&m["lines"]["configured"]), 200);
    assert_eq!(count(&m["lines"]["registered_at_end"]), 200);
    assert_eq!(
        m["lines"]["registered_by_sbc_at_end"],
        w["lines"]["registered_by_sbc_at_end"]
    );
    assert_eq!(
        m["registrations"]["registered"],
        w["registrations"]["registered"]
    );
    assert_eq!(
        m["registrations"]["registers_by_purpose"],
        w["registrations"]["registers_by_purpose"]
    );
    assert_eq!(
        count(&m["registrations"]["registers_by_purpose"]["initial"]),
        200
    );
    assert_eq!(
        m["register_latency_ms"]["count"],
        w["register_latency_ms"]["count"]
    );
    assert_eq!(m["thresholds"][0]["passed"], true);
}

/// Bad input: one line saying what is wrong, exit 2, before any line runs
/// (no lab is needed to see it).
#[test]
fn bad_input_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("users.csv");
    std::fs::write(&csv, "user,password\n1001,pw1\n1002\n").unwrap();
    let cfg = dir.path().join("base.cfg");
    std::fs::write(
        &cfg,
        "voIpProt.server.1.address=\"lab.test\"\nreg.2.address=\"1002\"\n",
    )
    .unwrap();
    let users = ["--users", "20000..", "--lines", "5"];
    let long_pattern = format!("{}{{user}}", "p".repeat(300));
    let csv_arg = csv.to_str().unwrap();
    let cfg_arg = cfg.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--users", "20000..", "--lines", "5", "--threshold", "p99<"],
            "--threshold \"p99<\"",
        ),
        (vec!["--users-csv", csv_arg], "users.csv: row 3: 1 fields"),
        (
            vec!["--users", "20000..", "--lines", "0"],
            "--lines must be at least 1",
        ),
        (
            vec!["--users", "20000..", "--lines", "5", "--shard", "4/4"],
            "--shard \"4/4\"",
        ),
        (vec!["--users", "1..=2", "--shard", "2/3"], "has no lines"),
        (
            vec![
                "--users",
                "20000..",
                "--lines",
                "5",
                "--password-pattern",
                "pw{usr}",
            ],
            "unknown placeholder {usr}",
        ),
        (vec!["--lines", "5"], "give the users"),
        (
            vec!["--users", "20000..", "--lines", "5", "--config", cfg_arg],
            "remove the keys of reg.2",
        ),
        (
            vec!["--users", "20000..", "--lines", "5", "--stats", "s.txt"],
            ".csv or .jsonl",
        ),
        (
            vec![
                "--users",
                "20000..",
                "--lines",
                "5",
                "--calls-per-line-per-hour",
                "5",
            ],
            "needs --call-to",
        ),
        // Outputs that could not be written at the end are refused first.
        (
            vec!["--users", "20000..", "--lines", "5", "--summary", "/nonexistent/s.json"],
            "--summary /nonexistent/s.json: no directory /nonexistent",
        ),
        (
            vec!["--users", "20000..", "--lines", "5", "--report", "/tmp"],
            "--report /tmp: is a directory",
        ),
        (
            vec![
                "--users", "20000..", "--lines", "5", "--summary", "x.json", "--report", "x.json",
            ],
            "--summary and --report name the same file",
        ),
        // A generated value out of range: the first error names the flag
        // and the line, the others are counted, not repeated.
        (
            vec![
                "--users",
                "20000..",
                "--lines",
                "5",
                "--domain",
                "lab.test",
                "--password-pattern",
                &long_pattern,
            ],
            "--password-pattern:1: reg.1.auth.password=\"***\" is not allowed; allowed: text of at most 255 characters (and 4 more configuration errors)",
        ),
    ];
    for (args, expected) in cases {
        let started = Instant::now();
        let out = sipfleet().arg("load").args(&args).output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.starts_with("sipfleet load: "), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {expected:?} in {err}");
        assert!(started.elapsed() < Duration::from_secs(5), "{args:?}");
    }
    // Flags clap checks itself: its error first, exit 2.
    for (args, expected) in [
        (vec!["--transport", "sctp"], "unknown transport \"sctp\""),
        (vec!["--rate", "fast"], "--rate"),
        (vec!["--duration", "soon"], "--duration"),
        (vec!["--interval", "1ms"], "at least 10ms"),
    ] {
        let out = sipfleet()
            .arg("load")
            .args(users)
            .args(&args)
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        let first = err.lines().next().unwrap_or_default();
        assert!(first.contains(expected), "{args:?}: {first}");
    }
    // merge: a file that is not a summary.
    let out = sipfleet()
        .args(["load", "merge", csv_arg])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("not a load summary"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// A signal before `--duration` ends the run cleanly, but it is not a
/// pass: exit 3, and the summary says it was interrupted and what was
/// asked. (Nothing answers at 127.0.0.1:9: no lab needed.)
#[test]
fn a_run_cut_short_by_a_signal_exits_3_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("base.cfg");
    std::fs::write(
        &cfg,
        "voIpProt.server.1.address=\"127.0.0.1\"\nvoIpProt.server.1.port=\"9\"\n",
    )
    .unwrap();
    let summary = dir.path().join("summary.json");
    let child = sipfleet()
        .args([
            "load",
            "--lines",
            "3",
            "--users",
            "20000..",
            "--duration",
            "60",
        ])
        .arg("--config")
        .arg(&cfg)
        .arg("--summary")
        .arg(&summary)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("interrupted by a signal before --duration"),
        "{err}"
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["interrupted"], true);
    assert_eq!(s["requested_duration_ms"], 60_000);
    assert!(
        s["duration_ms"].as_u64().unwrap() < 10_000,
        "{}",
        s["duration_ms"]
    );
}
