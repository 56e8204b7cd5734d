//! `scripts/lab` as a user runs it: `up` leaves the servers running after
//! the tool exits (they are re-parented to PID 1), `down` returns only when
//! every one of them is gone, zombies included (`pgrep kamailio` right after
//! `lab down` finds nothing of that lab). Its output into a closed pipe
//! (`| head`) ends it quietly.

use std::process::{Command, Output, Stdio};

/// An instance of its own (the demo lab is 0; `Lab::start` picks free ones
/// from 1 up, `lab_lifecycle` uses 199).
const INSTANCE: &str = "198";

fn lab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sipfleet-lab"))
        .args(["--instance", INSTANCE])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Every process (state) in group `pgid`, zombies included.
fn members(pgid: u64) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            let f: Vec<&str> = rest.split_whitespace().collect();
            (f.len() > 3 && f[2] == pgid.to_string()).then(|| f[0].to_string())
        })
        .collect()
}

#[test]
fn down_returns_when_every_server_process_is_gone() {
    let _ = lab(&["down"]);
    let up = lab(&["up", "--sbcs", "2"]);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let state_path = format!("/tmp/sipfleet-lab/{INSTANCE}/state.json");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    let mut groups: Vec<u64> = state["sbcs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["pgid"].as_u64())
        .collect();
    groups.extend(state["dns_pgid"].as_u64());
    assert_eq!(groups.len(), 3, "{state}");

    // Output into a closed pipe: quiet, no panic.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = Command::new(env!("CARGO_BIN_EXE_sipfleet-lab"))
        .args(["--instance", INSTANCE, "status"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(status.status.success(), "{stderr}");

    let down = lab(&["down"]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(String::from_utf8_lossy(&down.stdout).contains("down"));
    for g in groups {
        let left = members(g);
        assert!(
            left.is_empty(),
            "group {g} still has {left:?} after `lab down`"
        );
    }
}
