//! One lab SBC: a Kamailio instance on one loopback address.
//!
//! The configuration is `lab/kamailio.cfg` with placeholders filled in. Each
//! SBC has its own directory (config, TLS files, ctl socket, pid file, log),
//! runs in its own process group, and is switched between fault modes by a
//! shared variable (`kamcmd pv.shvSet`, which keeps registrations) or by
//! signals to its group (silent, dead).

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::certs::CertFiles;
use crate::error::{LabError, Result};
use crate::lab::SbcMemory;
use crate::mode::{Mode, Transport};
use crate::observe::{parse_log, ObservedRequest};
use crate::process::{kill_group, log_tail, run_tool, signal_group, spawn_group};

/// The SBC script; placeholders `@@NAME@@` are filled per SBC.
const TEMPLATE: &str = include_str!("../../../lab/kamailio.cfg");

/// How long an SBC may take to answer its first probe.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Kamailio's module directory on this machine.
fn module_dir() -> Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = vec![
        "/usr/lib/x86_64-linux-gnu/kamailio/modules".into(),
        "/usr/lib/aarch64-linux-gnu/kamailio/modules".into(),
        "/usr/lib/kamailio/modules".into(),
        "/usr/lib64/kamailio/modules".into(),
    ];
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        candidates.extend(entries.flatten().map(|e| e.path().join("kamailio/modules")));
    }
    candidates
        .into_iter()
        .find(|d| d.join("tm.so").exists() && d.join("tls.so").exists())
        .ok_or_else(|| LabError::MissingBinary {
            binary: "kamailio modules (tm.so, tls.so)".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })
}

/// Mutable part of an SBC, behind a mutex so a `Lab` can be shared.
#[derive(Debug)]
struct State {
    mode: Mode,
    /// Process group id (= pid of the Kamailio main process) while running.
    pgid: Option<u32>,
    /// The main process when this process started it (not after `attach`).
    child: Option<Child>,
}

/// One SBC of a lab. Indexes start at 1 (`sbc1`).
#[derive(Debug)]
pub struct Sbc {
    index: usize,
    ip: Ipv4Addr,
    host: String,
    domain: String,
    dir: PathBuf,
    memory: SbcMemory,
    state: Mutex<State>,
}

impl Sbc {
    /// Prepares the files of SBC `index` in `lab_dir/sbc<index>` (not started).
    pub(crate) fn prepare(
        lab_dir: &Path,
        index: usize,
        ip: Ipv4Addr,
        domain: &str,
        cert: &CertFiles,
        ca: &Path,
        memory: SbcMemory,
    ) -> Result<Sbc> {
        let dir = lab_dir.join(format!("sbc{index}"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| LabError::io(format!("create {}", dir.display()), e))?;
        let tls = format!(
            "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n\
             private_key = {}\ncertificate = {}\nca_list = {}\n\n\
             [client:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n",
            cert.key.display(),
            cert.cert.display(),
            ca.display()
        );
        let path = dir.join("tls.cfg");
        std::fs::write(&path, tls)
            .map_err(|e| LabError::io(format!("write {}", path.display()), e))?;
        Ok(Sbc {
            index,
            ip,
            host: format!("sbc{index}.{domain}"),
            domain: domain.to_string(),
            dir,
            memory,
            state: Mutex::new(State {
                mode: Mode::Dead,
                pgid: None,
                child: None,
            }),
        })
    }

    /// Re-creates the handle of a running SBC of a persistent lab (whose
    /// SBCs run with the default memory: `scripts/lab` never changes it).
    pub(crate) fn attach(
        lab_dir: &Path,
        index: usize,
        ip: Ipv4Addr,
        domain: &str,
        mode: Mode,
        pgid: Option<u32>,
    ) -> Sbc {
        Sbc {
            index,
            ip,
            host: format!("sbc{index}.{domain}"),
            domain: domain.to_string(),
            dir: lab_dir.join(format!("sbc{index}")),
            memory: SbcMemory::default(),
            state: Mutex::new(State {
                mode,
                pgid,
                child: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data: recover it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// 1-based number of this SBC.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Its loopback address.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// Its host name in the lab's DNS and certificate, e.g. `sbc1.lab.sipfleet.test`.
    pub fn host_name(&self) -> &str {
        &self.host
    }

    /// Its address for `transport` (UDP/TCP 5060, TLS 5061).
    pub fn addr(&self, transport: Transport) -> SocketAddr {
        SocketAddr::new(self.ip.into(), transport.port())
    }

    /// Its current mode.
    pub fn mode(&self) -> Mode {
        self.lock().mode
    }

    /// Process group of its Kamailio while running.
    pub fn pgid(&self) -> Option<u32> {
        self.lock().pgid
    }

    /// The Kamailio log (observations and errors).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("kamailio.log")
    }

    fn ctl_socket(&self) -> PathBuf {
        self.dir.join("ctl.sock")
    }

    fn pgid_file(&self) -> PathBuf {
        self.dir.with_extension("pgid")
    }

    /// Every request this SBC received so far, in arrival order (across
    /// restarts: the log is appended to).
    pub fn received(&self) -> Result<Vec<ObservedRequest>> {
        let path = self.log_path();
        match std::fs::read(&path) {
            Ok(bytes) => Ok(parse_log(&String::from_utf8_lossy(&bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(LabError::io(format!("read {}", path.display()), e)),
        }
    }

    fn render(&self, mode: Mode) -> Result<PathBuf> {
        let cfg = TEMPLATE
            .replace("@@NAME@@", &format!("sbc{}", self.index))
            .replace("@@IP@@", &self.ip.to_string())
            .replace("@@HOST@@", &self.host)
            .replace("@@DOMAIN@@", &self.domain)
            .replace("@@MODPATH@@", &module_dir()?.display().to_string())
            .replace("@@DIR@@", &self.dir.display().to_string())
            .replace("@@MODE@@", &mode.shv().to_string())
            .replace("@@RETRY_AFTER@@", &mode.retry_after().to_string());
        let path = self.dir.join("kamailio.cfg");
        std::fs::write(&path, cfg)
            .map_err(|e| LabError::io(format!("write {}", path.display()), e))?;
        Ok(path)
    }

    /// Starts Kamailio with its script in `mode` (not Silent/Dead); does not wait.
    fn spawn(&self, st: &mut State, mode: Mode) -> Result<()> {
        let cfg = self.render(mode)?;
        let _ = std::fs::remove_file(self.ctl_socket());
        // Kamailio refuses to start while the pid in its pid file exists; a
        // killed main process may still be an unreaped zombie (PID 1 reaps
        // it when the lab was started by another process, e.g. scripts/lab).
        let _ = std::fs::remove_file(self.dir.join("kamailio.pid"));
        let mut cmd = Command::new("kamailio");
        cmd.arg("-f")
            .arg(&cfg)
            .arg("-P")
            .arg(self.dir.join("kamailio.pid"))
            .arg("-Y")
            .arg(&self.dir)
            .args(["-DD", "-E"])
            .args(["-m", &self.memory.shm_mb.to_string()])
            .args(["-M", &self.memory.pkg_mb.to_string()]);
        let child = spawn_group(cmd, "kamailio", &self.log_path())?;
        let pgid = child.id();
        std::fs::write(self.pgid_file(), pgid.to_string())
            .map_err(|e| LabError::io("write pgid file", e))?;
        st.pgid = Some(pgid);
        st.child = Some(child);
        st.mode = mode;
        Ok(())
    }

    /// Starts in mode `Ok` without waiting (the lab starts all SBCs, then
    /// waits for each).
    pub(crate) fn start(&self) -> Result<()> {
        let mut st = self.lock();
        self.spawn(&mut st, Mode::Ok)
    }

    /// Waits until the SBC answers a probe OPTIONS on UDP.
    pub(crate) fn wait_ready(&self) -> Result<()> {
        let mut st = self.lock();
        self.wait_ready_locked(&mut st)
    }

    fn wait_ready_locked(&self, st: &mut State) -> Result<()> {
        let started = Instant::now();
        let what = format!("SBC {} ({})", self.index, self.ip);
        let sock =
            UdpSocket::bind("127.0.0.1:0").map_err(|e| LabError::io("bind probe socket", e))?;
        sock.connect(self.addr(Transport::Udp))
            .map_err(|e| LabError::io("connect probe socket", e))?;
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(|e| LabError::io("probe timeout", e))?;
        let local = sock
            .local_addr()
            .map_err(|e| LabError::io("probe address", e))?;
        let mut buf = [0u8; 2048];
        let mut n = 0u32;
        while started.elapsed() < START_TIMEOUT {
            if let Some(child) = st.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    st.pgid = None;
                    st.child = None;
                    st.mode = Mode::Dead;
                    return Err(LabError::Exited {
                        what,
                        status: status.to_string(),
                        log: log_tail(&self.log_path(), 2000),
                    });
                }
            }
            n += 1;
            let probe = format!(
                "OPTIONS sip:{ip}:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {local};rport;branch=z9hG4bK-labprobe-{n}\r\n\
                 From: <sip:lab-probe@{local}>;tag=probe\r\nTo: <sip:{ip}>\r\nCall-ID: labprobe-{n}@{local}\r\n\
                 CSeq: {n} OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                ip = self.ip
            );
            // ICMP unreachable (not yet bound) shows as an error: retry.
            if sock.send(probe.as_bytes()).is_ok() {
                if let Ok(len) = sock.recv(&mut buf) {
                    if buf[..len].starts_with(b"SIP/2.0 200") {
                        return Ok(());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(LabError::NotReady {
            what,
            waited_ms: START_TIMEOUT.as_millis() as u64,
            log: log_tail(&self.log_path(), 2000),
        })
    }

    fn kamcmd_set(&self, name: &str, value: i64) -> Result<()> {
        let mut cmd = Command::new("kamcmd");
        cmd.arg("-s")
            .arg(format!("unix:{}", self.ctl_socket().display()))
            .args(["pv.shvSet", name, "int", &value.to_string()]);
        // kamcmd exits 0 on RPC errors: check what it printed.
        let out = run_tool(cmd, "kamcmd")?;
        if out.contains("Ok") {
            Ok(())
        } else {
            Err(LabError::Tool {
                tool: "kamcmd".into(),
                detail: format!("pv.shvSet {name} on SBC {}: {}", self.index, out.trim()),
            })
        }
    }

    /// One of Kamailio's statistics now (`kamcmd stats.get_statistics`,
    /// module `kex`), e.g. `usrloc:registered_users` (AORs in the location
    /// table) or `registrar:accepted_regs` (REGISTERs answered 2xx). They
    /// count from the start of this Kamailio process: a restart (`Dead`
    /// then `Ok`) zeroes them.
    pub fn statistic(&self, name: &str) -> Result<u64> {
        // Kamailio 5.6 answers a `group:name` query with nothing; it
        // answers `group:` with every statistic of the group, one
        // `group:name = value` a line.
        let query = name
            .split_once(':')
            .map_or(name, |(g, _)| &name[..=g.len()]);
        let mut cmd = Command::new("kamcmd");
        cmd.arg("-s")
            .arg(format!("unix:{}", self.ctl_socket().display()))
            .args(["stats.get_statistics", query]);
        let out = run_tool(cmd, "kamcmd")?;
        out.lines()
            .find_map(|l| {
                let (n, v) = l.split_once('=')?;
                (n.trim() == name).then(|| v.trim().parse().ok())?
            })
            .ok_or_else(|| LabError::Tool {
                tool: "kamcmd".into(),
                detail: format!(
                    "stats.get_statistics {name} on SBC {}: {}",
                    self.index,
                    out.trim()
                ),
            })
    }

    /// The contacts registered for `user` on this SBC now (empty when the
    /// user is not registered). Read from Kamailio's location table.
    pub fn contacts(&self, user: &str) -> Result<Vec<String>> {
        let mut cmd = Command::new("kamcmd");
        cmd.arg("-s")
            .arg(format!("unix:{}", self.ctl_socket().display()))
            .args(["ul.lookup", "location", &format!("s:{user}")]);
        let out = run_tool(cmd, "kamcmd")?;
        if out.contains("AOR not found") {
            return Ok(Vec::new());
        }
        if !out.contains("AoR:") {
            return Err(LabError::Tool {
                tool: "kamcmd".into(),
                detail: format!("ul.lookup {user} on SBC {}: {}", self.index, out.trim()),
            });
        }
        Ok(out
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Address: "))
            .map(str::to_string)
            .collect())
    }

    fn stop_locked(&self, st: &mut State) -> Result<()> {
        if let Some(pgid) = st.pgid.take() {
            kill_group(pgid, st.child.as_mut())?;
        }
        if let Some(mut c) = st.child.take() {
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(self.pgid_file());
        st.mode = Mode::Dead;
        Ok(())
    }

    /// Forgets the process without killing it (persistent labs).
    pub(crate) fn detach(&self) {
        self.lock().child = None;
    }

    /// Kills the SBC (teardown); the same as `set_mode(Mode::Dead)`.
    pub(crate) fn stop(&self) -> Result<()> {
        let mut st = self.lock();
        self.stop_locked(&mut st)
    }

    /// Switches the fault mode. Registrations survive every switch except to
    /// and from `Dead` (a restarted SBC has an empty location table).
    pub fn set_mode(&self, mode: Mode) -> Result<()> {
        let mut st = self.lock();
        let current = st.mode;
        match mode {
            Mode::Dead => return self.stop_locked(&mut st),
            Mode::Silent => {
                if current == Mode::Dead {
                    self.spawn(&mut st, Mode::Ok)?;
                    self.wait_ready_locked(&mut st)?;
                }
                if let Some(pgid) = st.pgid {
                    signal_group(pgid, libc::SIGSTOP)?;
                }
                st.mode = Mode::Silent;
            }
            Mode::Ok | Mode::Error503 { .. } | Mode::Reject => {
                if current == Mode::Dead {
                    self.spawn(&mut st, mode)?;
                    return self.wait_ready_locked(&mut st);
                }
                if current == Mode::Silent {
                    if let Some(pgid) = st.pgid {
                        signal_group(pgid, libc::SIGCONT)?;
                    }
                }
                self.kamcmd_set("retry_after", i64::from(mode.retry_after()))?;
                self.kamcmd_set("mode", i64::from(mode.shv()))?;
                st.mode = mode;
            }
        }
        Ok(())
    }
}

impl Drop for Sbc {
    fn drop(&mut self) {
        // Only SBCs this process started are killed on drop; an attached
        // handle (scripts/lab) leaves the persistent lab running.
        let owned = self.lock().child.is_some();
        if owned {
            let _ = self.stop();
        }
    }
}
