//! Lab instances: a number, an address block, a directory and a lock.
//!
//! Instance 0 is the demo lab of `scripts/lab up`, on 127.0.0.0/24 (SBCs at
//! 127.0.0.11, .12, ...). Tests take instance k >= 1 on 127.0.(20+k).0/24, so
//! tests and the demo never collide. A test lab holds an exclusive `flock` on
//! `/tmp/sipfleet-lab/<k>.lock` for its lifetime: the kernel releases it when
//! the process dies, so a crashed test leaves its number free, and the next
//! owner first kills the processes the crashed one left behind (their group
//! ids are in `*.pgid` files in the instance directory).

use std::fs::{File, OpenOptions};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::{LabError, Result};
use crate::process::{group_alive, kill_group, process_name};

/// Where all lab instances keep their directories and locks.
pub const BASE_DIR: &str = "/tmp/sipfleet-lab";

/// Highest instance number tests may take.
pub const MAX_INSTANCE: u32 = 200;

/// The address block of instance `k`: the first three octets.
pub fn block(k: u32) -> [u8; 3] {
    if k == 0 {
        [127, 0, 0]
    } else {
        // k <= MAX_INSTANCE keeps 20 + k within a u8.
        [127, 0, (20 + k.min(MAX_INSTANCE)) as u8]
    }
}

/// An address in instance `k`'s block.
pub fn addr(k: u32, last: u8) -> Ipv4Addr {
    let [a, b, c] = block(k);
    Ipv4Addr::new(a, b, c, last)
}

/// The directory of instance `k`.
pub fn dir(k: u32) -> PathBuf {
    Path::new(BASE_DIR).join(k.to_string())
}

/// A claimed instance number; the lock is released on drop.
#[derive(Debug)]
pub(crate) struct Claim {
    pub number: u32,
    _lock: Option<File>,
}

fn try_lock(path: &Path) -> Result<Option<File>> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| LabError::io(format!("open {}", path.display()), e))?;
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(Some(f))
    } else {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Ok(None)
        } else {
            Err(LabError::io(format!("flock {}", path.display()), e))
        }
    }
}

fn ensure_base() -> Result<()> {
    std::fs::create_dir_all(BASE_DIR).map_err(|e| LabError::io(format!("create {BASE_DIR}"), e))
}

/// Claims instance `k` (`Some`) or the first free test instance (`None`),
/// cleans what a previous owner left and returns the claim with a fresh,
/// empty directory. Instance 0 is not locked (its owner, `scripts/lab up`,
/// exits); it is refused while its state file names a live process.
pub(crate) fn claim(k: Option<u32>) -> Result<Claim> {
    ensure_base()?;
    let claim = match k {
        Some(0) => {
            if leftovers_alive(&dir(0)) {
                return Err(LabError::Config(
                    "the demo lab (instance 0) is already up: run `scripts/lab down` first".into(),
                ));
            }
            Claim {
                number: 0,
                _lock: None,
            }
        }
        Some(n) if n > MAX_INSTANCE => {
            return Err(LabError::Config(format!(
                "instance {n} above {MAX_INSTANCE}"
            )))
        }
        Some(n) => match try_lock(&Path::new(BASE_DIR).join(format!("{n}.lock")))? {
            Some(f) => Claim {
                number: n,
                _lock: Some(f),
            },
            None => return Err(LabError::Config(format!("instance {n} is in use"))),
        },
        None => {
            let mut found = None;
            for n in 1..=MAX_INSTANCE {
                if let Some(f) = try_lock(&Path::new(BASE_DIR).join(format!("{n}.lock")))? {
                    found = Some(Claim {
                        number: n,
                        _lock: Some(f),
                    });
                    break;
                }
            }
            found.ok_or(LabError::NoFreeInstance {
                first: 1,
                last: MAX_INSTANCE,
            })?
        }
    };
    let d = dir(claim.number);
    kill_leftovers(&d)?;
    if d.exists() {
        std::fs::remove_dir_all(&d)
            .map_err(|e| LabError::io(format!("remove {}", d.display()), e))?;
    }
    std::fs::create_dir_all(&d).map_err(|e| LabError::io(format!("create {}", d.display()), e))?;
    Ok(claim)
}

/// Process groups recorded in `dir/*.pgid` that still run a lab server.
fn leftover_groups(dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pgid"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|s| s.trim().parse::<u32>().ok())
        .filter(|&pgid| {
            // Only our servers: a recycled pid must never be killed.
            group_alive(pgid)
                && process_name(pgid).is_some_and(|n| n == "kamailio" || n == "dnsmasq")
        })
        .collect()
}

pub(crate) fn leftovers_alive(dir: &Path) -> bool {
    !leftover_groups(dir).is_empty()
}

/// Kills the servers a previous owner of `dir` left running.
pub(crate) fn kill_leftovers(dir: &Path) -> Result<()> {
    for pgid in leftover_groups(dir) {
        kill_group(pgid, None)?;
    }
    Ok(())
}
