//! Server processes in their own process groups.
//!
//! Kamailio forks children that own the sockets, so every server is started
//! in a new session (`setsid`) and always signalled as a whole group: a
//! SIGSTOP of the group makes the SBC silent, a SIGKILL of the group closes
//! all its sockets at once (UDP then answers with ICMP port unreachable, TCP
//! with RST). A stopped group is sent SIGCONT before it is killed so that no
//! process lingers in the stopped state.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};

/// Spawns `cmd` as the leader of a new session and process group, with its
/// stdout and stderr appended to `log`. Returns the child; its pid is the
/// process group id.
///
/// The calling process becomes a child subreaper (`PR_SET_CHILD_SUBREAPER`):
/// when a killed Kamailio main process leaves its children behind, they are
/// re-parented to us instead of PID 1, so `kill_group` can reap them at once
/// and no zombie outlives a lab (PID 1 of a container may reap slowly).
pub(crate) fn spawn_group(mut cmd: Command, binary: &str, log: &Path) -> Result<Child> {
    // SAFETY: prctl with an integer argument; failure only costs slow reaping.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| LabError::io(format!("open log {}", log.display()), e))?;
    let err = out
        .try_clone()
        .map_err(|e| LabError::io(format!("dup log {}", log.display()), e))?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            LabError::MissingBinary {
                binary: binary.to_string(),
                source: e,
            }
        } else {
            LabError::io(format!("spawn {binary}"), e)
        }
    })
}

/// Sends `sig` to every process of group `pgid`. A group that no longer
/// exists is not an error.
pub(crate) fn signal_group(pgid: u32, sig: libc::c_int) -> Result<()> {
    let Ok(pgid_t) = libc::pid_t::try_from(pgid) else {
        return Err(LabError::Config(format!(
            "process group {pgid} out of range"
        )));
    };
    if pgid_t <= 1 {
        return Err(LabError::Config(format!("refusing to signal group {pgid}")));
    }
    // SAFETY: plain syscall with a negative pid = process group.
    let rc = unsafe { libc::kill(-pgid_t, sig) };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            return Err(LabError::io(format!("signal {sig} to group {pgid}"), e));
        }
    }
    Ok(())
}

/// True while any process of group `pgid` exists (zombies included).
pub(crate) fn group_alive(pgid: u32) -> bool {
    let Ok(pgid_t) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    // SAFETY: signal 0 only checks for existence.
    pgid_t > 1 && unsafe { libc::kill(-pgid_t, 0) } == 0
}

/// (state, parent pid) of every process in group `pgid`, from /proc.
fn group_members(pgid: u32) -> Vec<(String, u32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|stat| {
            // "pid (comm) state ppid pgrp ...": comm may hold spaces and ')'.
            let (_, rest) = stat.rsplit_once(')')?;
            let f: Vec<&str> = rest.split_whitespace().collect();
            (f.len() > 3 && f[2] == pgid.to_string())
                .then(|| (f[0].to_string(), f[1].parse().unwrap_or(0)))
        })
        .collect()
}

/// True while group `pgid` has a process that is not a zombie. Killed
/// Kamailio children are zombies until their parent reaps them, which can
/// take a second when that is PID 1 of a container; a zombie holds no
/// sockets, so it does not count.
pub(crate) fn group_has_live(pgid: u32) -> bool {
    group_members(pgid)
        .iter()
        .any(|(state, _)| state != "Z" && state != "X")
}

/// Kills the whole group (SIGCONT first, then SIGKILL), reaps `child` when we
/// own it, and waits up to 3 s until no live process of the group is left.
pub(crate) fn kill_group(pgid: u32, child: Option<&mut Child>) -> Result<()> {
    signal_group(pgid, libc::SIGCONT)?;
    signal_group(pgid, libc::SIGKILL)?;
    let mut child = child;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if let Some(c) = child.as_deref_mut() {
            // Reap the leader so it does not stay in the group as a zombie.
            let _ = c.try_wait();
        }
        reap_group(pgid);
        if !group_has_live(pgid) {
            // Zombies that were still being re-parented to us when we
            // looked. Only our own descendants can be reaped here; others
            // (a lab started by another process) are left to PID 1.
            let me = std::process::id();
            let ours = child.is_some() || group_members(pgid).iter().any(|(_, ppid)| *ppid == me);
            let settle = Instant::now() + Duration::from_millis(200);
            while ours && group_alive(pgid) && Instant::now() < settle {
                reap_group(pgid);
                thread::sleep(Duration::from_millis(2));
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(LabError::Tool {
                tool: "kill".into(),
                detail: format!("process group {pgid} still alive 3 s after SIGKILL"),
            });
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// How long `terminate_group` waits for the exited processes of a group to
/// be reaped by their parent (PID 1 for the servers of a lab started by a
/// process that has since exited).
const REAP_WAIT: Duration = Duration::from_secs(5);

/// Stops group `pgid` for good and returns only once no process of it is
/// left, zombies included (`pgrep` lists those): SIGCONT (a silent SBC is
/// stopped) and SIGTERM, up to `grace` for the group to exit on its own
/// (Kamailio's main process then reaps its children itself), SIGKILL to
/// whatever is left, then up to 5 s for the exited processes to be reaped.
/// A group still present after that is an error naming it.
pub(crate) fn terminate_group(pgid: u32, grace: Duration) -> Result<()> {
    signal_group(pgid, libc::SIGCONT)?;
    signal_group(pgid, libc::SIGTERM)?;
    let deadline = Instant::now() + grace;
    while group_has_live(pgid) && Instant::now() < deadline {
        reap_group(pgid);
        thread::sleep(Duration::from_millis(10));
    }
    if group_has_live(pgid) {
        signal_group(pgid, libc::SIGKILL)?;
    }
    let deadline = Instant::now() + REAP_WAIT;
    loop {
        reap_group(pgid);
        if !group_alive(pgid) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let left = group_members(pgid);
            return Err(LabError::Tool {
                tool: "kill".into(),
                detail: format!(
                    "process group {pgid} still has {} process(es) (state, parent) {left:?} \
                     {} s after it was stopped",
                    left.len(),
                    REAP_WAIT.as_secs()
                ),
            });
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Reaps every exited child of ours in group `pgid` (orphans re-parented to
/// us as subreaper). Never blocks; touches no other child.
fn reap_group(pgid: u32) {
    let Ok(pgid_t) = libc::pid_t::try_from(pgid) else {
        return;
    };
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own children of one process group.
        let rc = unsafe { libc::waitpid(-pgid_t, &mut status, libc::WNOHANG) };
        if rc <= 0 {
            return;
        }
    }
}

/// The name (`/proc/PID/comm`) of a process, if it exists.
pub(crate) fn process_name(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The last `max` bytes of a log file, for error messages.
pub(crate) fn log_tail(path: &Path, max: u64) -> String {
    let Ok(mut f) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Runs a tool to completion, failing with its stderr when it exits non-zero.
pub(crate) fn run_tool(mut cmd: Command, binary: &str) -> Result<String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            LabError::MissingBinary {
                binary: binary.to_string(),
                source: e,
            }
        } else {
            LabError::io(format!("run {binary}"), e)
        }
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(LabError::Tool {
            tool: binary.to_string(),
            detail: format!(
                "{}: {}{}",
                out.status,
                stdout,
                String::from_utf8_lossy(&out.stderr)
            ),
        });
    }
    Ok(stdout)
}
