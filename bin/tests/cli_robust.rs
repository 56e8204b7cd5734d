//! The command line never dies on its input: bad stdin lines are skipped
//! with one error line each, over-long ones are never held in memory, a
//! closed stdout ends a command quietly, out-of-range flags and an empty
//! configuration are usage errors (exit 2). No lab needed: the line's DNS
//! server is unreachable, so it never registers, and the commands that need
//! a call answer with an error line.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const UNREACHABLE: &str = r#"reg.1.address="1001"
reg.1.auth.password="pw1001"
voIpProt.server.1.address="lab.sipfleet.test"
voIpProt.server.1.transport="UDPOnly"
tcpIpApp.dns.server="127.0.0.1:9"
"#;

fn sipfleet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sipfleet"))
}

fn write_config(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn lines_of(reader: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next `sipfleet run:` line on stderr (log records skipped).
fn next_error(rx: &mpsc::Receiver<String>) -> String {
    next_line(rx, "sipfleet run: ", Duration::from_secs(30))
}

/// The next stderr line that contains `needle`, within `limit`; a failure
/// shows every line skipped, so a slow start says what it was doing.
fn next_line(rx: &mpsc::Receiver<String>, needle: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut skipped = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(line) => skipped.push(line),
            Err(e) => panic!(
                "no stderr line with {needle:?} within {limit:?} ({e}); stderr so far:\n{}",
                skipped.join("\n")
            ),
        }
    }
}

/// Peak resident memory of a process, KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A child that is killed when the test ends, panics included: a failed
/// assertion must not leave a `sipfleet run` behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sigterm_and_wait(child: &mut Child) -> std::process::ExitStatus {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bad_stdin_lines_are_skipped_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, "line.cfg", UNREACHABLE);
    let mut running = Running(
        sipfleet()
            .args(["run", "--events", "json", "--config"])
            .arg(&cfg)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let child = &mut running.0;
    let err = lines_of(child.stderr.take().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    // Commands are read once the fleet runs; on a loaded machine a debug
    // build can take a while to get there.
    next_line(&err, "fleet started", Duration::from_secs(60));

    // One byte that is not UTF-8.
    stdin.write_all(b"answer \xff1\n").unwrap();
    stdin.flush().unwrap();
    let e = next_error(&err);
    assert!(e.contains("not UTF-8"), "{e}");
    let before = peak_rss_kib(child.id());

    // A line over the 4 KiB bound.
    stdin.write_all(&[b'a'; 10_000]).unwrap();
    stdin.write_all(b"\n").unwrap();
    stdin.flush().unwrap();
    let e = next_error(&err);
    assert!(
        e.contains("10000 bytes") && e.contains("longer than 4096"),
        "{e}"
    );

    // 64 MiB without a newline: read and dropped, never held.
    let chunk = vec![b'b'; 1 << 20];
    for _ in 0..64 {
        stdin.write_all(&chunk).unwrap();
    }
    stdin.write_all(b"\n").unwrap();
    stdin.flush().unwrap();
    let e = next_error(&err);
    assert!(e.contains(&format!("{} bytes", 64 << 20)), "{e}");
    let grown = peak_rss_kib(child.id()).saturating_sub(before);
    assert!(grown < 24 * 1024, "peak memory grew by {grown} KiB");

    // A tel: URI is refused with the SIP form to use; the line still reads.
    stdin.write_all(b"call 1 tel:+15551234\n").unwrap();
    stdin.flush().unwrap();
    let e = next_error(&err);
    assert!(e.contains("tel: URIs are not supported"), "{e}");
    assert!(e.contains("user=phone"), "{e}");

    // A valid command still works after all of that.
    stdin.write_all(b"answer 1\n").unwrap();
    stdin.flush().unwrap();
    let e = next_error(&err);
    assert!(e.contains("line 1: no call on the line to answer"), "{e}");

    // An error echoing a huge word cuts it.
    let mut huge = b"call 1 ".to_vec();
    huge.extend(std::iter::repeat_n(b'z', 4000));
    huge.push(b'\n');
    stdin.write_all(&huge).unwrap();
    stdin.flush().unwrap();
    let e = next_error(&err);
    assert!(e.len() < 1000, "{} bytes: {e}", e.len());
    assert!(e.contains("bytes)"), "{e}");

    drop(stdin);
    let status = sigterm_and_wait(child);
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn config_check_into_a_closed_pipe_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, "line.cfg", UNREACHABLE);
    for args in [
        vec!["config", "check", cfg.to_str().unwrap()],
        vec!["config", "params"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = sipfleet()
            .args(&args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

#[test]
fn out_of_range_duration_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, "line.cfg", UNREACHABLE);
    for d in ["1e300", "-1", "NaN", "inf", "soon"] {
        let out = sipfleet()
            .args(["run", "--config"])
            .arg(&cfg)
            .arg(format!("--duration={d}"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--duration {d}: {stderr}");
        assert!(!stderr.contains("panicked"), "--duration {d}: {stderr}");
        assert!(stderr.contains("--duration"), "--duration {d}: {stderr}");
    }
}

#[test]
fn a_configuration_without_lines_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write_config(&dir, "empty.cfg", "");
    let servers_only = write_config(
        &dir,
        "servers.cfg",
        "voIpProt.server.1.address=\"lab.sipfleet.test\"\n",
    );
    for cfg in [&empty, &servers_only] {
        let check = sipfleet()
            .args(["config", "check", "--no-env"])
            .arg(cfg)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&check.stderr);
        assert_eq!(check.status.code(), Some(2), "config check: {stderr}");
        assert!(stderr.contains("reg.x.address"), "{stderr}");

        let mut run = sipfleet()
            .args(["run", "--config"])
            .arg(cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = run.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(5) {
                let _ = run.kill();
                let _ = run.wait();
                panic!("sipfleet run with no line did not exit");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut run.stderr.take().unwrap(), &mut stderr).unwrap();
        assert_eq!(status.code(), Some(2), "run: {stderr}");
        assert!(stderr.contains("reg.x.address"), "{stderr}");
    }
}

#[test]
fn config_errors_cut_huge_values() {
    let dir = tempfile::tempdir().unwrap();
    let value = "9".repeat(5_000_000);
    let cfg = write_config(
        &dir,
        "huge.cfg",
        &format!(
            "reg.1.address=\"1001\"\nvoIpProt.server.1.address=\"x.test\"\nvoIpProt.server.1.retryMaxCount=\"{value}\"\n"
        ),
    );
    for args in [vec!["config", "check", "--no-env"], vec!["run", "--config"]] {
        let out = sipfleet()
            .args(&args)
            .arg(&cfg)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr.len() < 2000,
            "{args:?}: {} bytes of stderr",
            stderr.len()
        );
        assert!(stderr.contains("retryMaxCount"), "{args:?}: {stderr}");
        assert!(stderr.contains("bytes)"), "{args:?}: {stderr}");
    }
}

/// Two outputs on one stream are refused before anything starts: a JSON
/// event stream mixed with a trace, a pcap on stdout, or one file for both.
#[test]
fn trace_outputs_that_would_share_a_stream_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("one.cfg");
    std::fs::write(
        &cfg,
        "reg.1.address=\"1001\"\nvoIpProt.server.1.address=\"127.0.0.1\"\n",
    )
    .unwrap();
    let same = dir.path().join("t").to_string_lossy().into_owned();
    for extra in [
        vec!["--events", "json", "--trace", "-"],
        vec!["--events", "text", "--trace", "-"],
        vec!["--events", "log", "--pcap", "-"],
        vec!["--trace", same.as_str(), "--pcap", same.as_str()],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sipfleet"))
            .args(["run", "--duration", "1", "--config"])
            .arg(&cfg)
            .args(&extra)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("sipfleet run:"), "{extra:?}: {err}");
    }
}

/// A fleet whose refreshes alone need more than `sipfleet.register.rate`
/// is told so at start (the lines would lapse in turn), and one within
/// the rate is not. Nothing listens on the address: the warning comes
/// before any answer, and the run stops after 0 s.
#[test]
fn refreshes_that_outrun_the_pacer_are_warned_about_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = |expires: u32| {
        let mut text = format!(
            "voIpProt.server.1.address=\"127.0.0.1\"\nvoIpProt.server.1.port=\"9\"\n\
             voIpProt.server.1.expires=\"{expires}\"\nsipfleet.register.rate=\"50\"\n"
        );
        for n in 1..=1000 {
            text.push_str(&format!("reg.{n}.address=\"{}\"\n", 20_000 + n));
        }
        text
    };
    for (expires, warned) in [(20, true), (3600, false)] {
        let cfg = write_config(&dir, &format!("fleet-{expires}.cfg"), &fleet(expires));
        let out = sipfleet()
            .args([
                "run",
                "--duration",
                "0",
                "--shutdown-timeout-ms",
                "100",
                "--config",
            ])
            .arg(&cfg)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert_eq!(
            stderr.contains("refreshes need more than sipfleet.register.rate"),
            warned,
            "expires {expires}: {stderr}"
        );
        if warned {
            // 1,000 lines refreshing every 10 s: 100/s against 50/s.
            assert!(stderr.contains("refreshes_per_s: 100"), "{stderr}");
        }
    }
}
