//! Labs clean up after themselves: on drop, on panic, with stopped
//! (silent) processes, and in parallel threads that never collide with each
//! other or with the demo lab. Missing tools are errors, not skips.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sipfleet_lab::tools::{require, Sipp};
use sipfleet_lab::{DnsMode, Lab, LabConfig, LabError, Mode, Transport};

/// Group ids of a lab and a marker file in its directory, to check after it
/// is gone. (The directory itself may be re-created at once by a parallel
/// test that takes the freed instance number; the marker would not be.)
fn footprint(lab: &Lab) -> (Vec<u32>, PathBuf) {
    let mut groups: Vec<u32> = lab.sbcs().iter().filter_map(|s| s.pgid()).collect();
    groups.extend(lab.dns().pgid());
    let marker = lab.dir().join("teardown-marker");
    std::fs::write(&marker, "x").unwrap();
    (groups, marker)
}

/// True when process group `pgid` has any process left, zombies included.
fn group_running(pgid: u32) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        f.len() > 3 && f[2] == pgid.to_string()
    })
}

fn assert_gone(groups: &[u32], marker: &std::path::Path) {
    for &g in groups {
        assert!(!group_running(g), "process group {g} survived teardown");
    }
    assert!(!marker.exists(), "{} survived teardown", marker.display());
}

#[test]
fn drop_kills_every_process_including_stopped_ones_and_removes_the_directory() {
    let lab = Lab::start(LabConfig::default()).unwrap();
    let (groups, marker) = footprint(&lab);
    assert_eq!(groups.len(), 4, "3 SBCs and the DNS server");
    assert!(groups.iter().all(|&g| group_running(g)));
    lab.set_mode(1, Mode::Silent).unwrap();
    lab.set_mode(2, Mode::Dead).unwrap();
    lab.dns().set_mode(DnsMode::Silent).unwrap();
    let started = Instant::now();
    drop(lab);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "teardown took {:?}",
        started.elapsed()
    );
    assert_gone(&groups, &marker);
}

#[test]
fn a_panicking_test_still_tears_its_lab_down() {
    let seen: Mutex<Option<(Vec<u32>, PathBuf)>> = Mutex::new(None);
    let result = std::panic::catch_unwind(|| {
        let lab = Lab::start(LabConfig {
            sbc_count: 1,
            ..LabConfig::default()
        })
        .unwrap();
        lab.set_mode(1, Mode::Silent).unwrap();
        *seen.lock().unwrap() = Some(footprint(&lab));
        panic!("a failing assertion in a test");
    });
    assert!(result.is_err());
    let (groups, marker) = seen.lock().unwrap().take().unwrap();
    assert_eq!(groups.len(), 2);
    assert_gone(&groups, &marker);
}

#[test]
fn parallel_labs_get_their_own_addresses_ports_and_registrars() {
    let labs: Vec<(u32, String, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let lab = Lab::start(LabConfig {
                        sbc_count: 1,
                        ..LabConfig::default()
                    })
                    .unwrap();
                    let sipp = Sipp::for_lab(&lab, "register.xml", 1, Transport::Udp, "1001");
                    let run = sipp.run().unwrap();
                    assert!(run.success(), "{}", run.errors);
                    assert_eq!(lab.received(1).unwrap().len(), 2);
                    (
                        lab.instance(),
                        lab.sbc(1).ip().to_string(),
                        lab.dns_addr().to_string(),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, (inst, ip, dns)) in labs.iter().enumerate() {
        assert!(*inst >= 1, "tests never take the demo instance 0");
        assert!(
            !ip.starts_with("127.0.0."),
            "tests never use the demo block: {ip}"
        );
        for other in &labs[i + 1..] {
            assert_ne!(inst, &other.0);
            assert_ne!(ip, &other.1);
            assert_ne!(dns, &other.2);
        }
    }
}

#[test]
fn a_missing_tool_is_an_error_that_says_how_to_install_it() {
    let err = require("sipfleet-no-such-tool").unwrap_err();
    assert!(matches!(err, LabError::MissingBinary { .. }));
    assert!(err.to_string().contains("scripts/lab-install"), "{err}");
    for tool in [
        "kamailio", "kamcmd", "dnsmasq", "sipp", "openssl", "dig", "baresip",
    ] {
        require(tool).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn lab_install_is_a_fast_no_op_when_everything_is_installed() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab-install");
    let started = Instant::now();
    let out = std::process::Command::new(&script).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("installing"));
}

#[test]
fn a_persistent_lab_outlives_its_handle_and_is_found_again_and_destroyed() {
    // What `scripts/lab up|sbc|down` do, on an instance of its own.
    const INSTANCE: u32 = 199;
    let lab = Lab::start(LabConfig {
        sbc_count: 2,
        instance: Some(INSTANCE),
        ..LabConfig::default()
    })
    .unwrap();
    let (groups, _) = footprint(&lab);
    lab.persist().unwrap();
    assert!(
        groups.iter().all(|&g| group_running(g)),
        "persist must not kill"
    );

    let lab = Lab::attach(INSTANCE).unwrap();
    assert_eq!(lab.sbcs().len(), 2);
    lab.set_mode(2, Mode::Dead).unwrap();
    lab.set_mode(2, Mode::Ok).unwrap();
    lab.set_mode(1, Mode::Silent).unwrap();
    drop(lab);

    let lab = Lab::attach(INSTANCE).unwrap();
    assert_eq!(lab.sbc(1).mode(), Mode::Silent);
    assert_eq!(lab.sbc(2).mode(), Mode::Ok);
    let mut all = groups.clone();
    all.extend(lab.sbc(2).pgid());
    let dir = lab.dir().to_path_buf();
    lab.destroy().unwrap();
    for g in all {
        let deadline = Instant::now() + Duration::from_secs(3);
        // Not our children: PID 1 reaps the zombies, so wait for that.
        while group_running(g) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!group_running(g), "group {g} survived destroy");
    }
    assert!(!dir.exists());
    assert!(Lab::attach(INSTANCE).is_err());
}
