//! The lab's DNS server: dnsmasq on a loopback address and port.
//!
//! dnsmasq re-reads only hosts files on SIGHUP, never `srv-host` or
//! `naptr-record`, so every change of the zone or of the mode rewrites the
//! configuration and restarts the server (a gap of a few tens of ms). The
//! readiness check is a hand-written query of a few bytes: the lab must not
//! depend on the resolver under test, and a DNS header is 12 bytes.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::process::{kill_group, log_tail, signal_group, spawn_group};
use crate::zone::Zone;

/// How the DNS server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DnsMode {
    /// Serves the zone.
    Normal,
    /// Every name in the domain is NXDOMAIN.
    NxDomain,
    /// Every name of the zone exists but has no record of any queried type
    /// (NOERROR with an empty answer: NODATA); other names are NXDOMAIN.
    NoData,
    /// Running but stopped (SIGSTOP): queries time out.
    Silent,
    /// Not running: queries get ICMP port unreachable (or time out in
    /// resolvers that ignore ICMP).
    Stopped,
}

#[derive(Debug)]
struct State {
    zone: Zone,
    mode: DnsMode,
    pgid: Option<u32>,
    child: Option<Child>,
}

/// The lab's DNS server.
#[derive(Debug)]
pub struct Dns {
    addr: SocketAddr,
    dir: PathBuf,
    state: Mutex<State>,
}

impl Dns {
    pub(crate) fn new(lab_dir: &Path, addr: SocketAddr, zone: Zone) -> Dns {
        Dns {
            addr,
            dir: lab_dir.join("dns"),
            state: Mutex::new(State {
                zone,
                mode: DnsMode::Stopped,
                pgid: None,
                child: None,
            }),
        }
    }

    pub(crate) fn attach(
        lab_dir: &Path,
        addr: SocketAddr,
        zone: Zone,
        mode: DnsMode,
        pgid: Option<u32>,
    ) -> Dns {
        Dns {
            addr,
            dir: lab_dir.join("dns"),
            state: Mutex::new(State {
                zone,
                mode,
                pgid,
                child: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the server listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The zone currently configured (served in `Normal` mode).
    pub fn zone(&self) -> Zone {
        self.lock().zone.clone()
    }

    /// The current mode.
    pub fn mode(&self) -> DnsMode {
        self.lock().mode
    }

    /// Process group of dnsmasq while running.
    pub fn pgid(&self) -> Option<u32> {
        self.lock().pgid
    }

    /// dnsmasq's log (every query is logged).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("dnsmasq.log")
    }

    fn pgid_file(&self) -> PathBuf {
        self.dir.with_extension("pgid")
    }

    /// Every query the server received so far (across restarts), in order,
    /// without the lab's own readiness probes. Lets a test count how often a
    /// client resolves a name.
    pub fn queries(&self) -> Result<Vec<DnsQuery>> {
        let path = self.log_path();
        let text = match std::fs::read(&path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(LabError::io(format!("read {}", path.display()), e)),
        };
        Ok(text
            .lines()
            .filter_map(DnsQuery::parse)
            .filter(|q| q.name != PROBE_NAME)
            .collect())
    }

    /// Replaces the zone and restarts the server with it (unless the mode is
    /// `Stopped`, which stays stopped).
    pub fn set_zone(&self, zone: Zone) -> Result<()> {
        let mut st = self.lock();
        st.zone = zone;
        let mode = st.mode;
        self.apply(&mut st, mode, true)
    }

    /// Edits the zone with `f` and restarts the server with the result.
    pub fn update(&self, f: impl FnOnce(&mut Zone)) -> Result<()> {
        let mut zone = self.zone();
        f(&mut zone);
        self.set_zone(zone)
    }

    /// Removes every record named `name`; returns how many were removed.
    pub fn remove_name(&self, name: &str) -> Result<usize> {
        let mut n = 0;
        self.update(|z| n = z.remove_name(name))?;
        Ok(n)
    }

    /// Switches the mode.
    pub fn set_mode(&self, mode: DnsMode) -> Result<()> {
        let mut st = self.lock();
        self.apply(&mut st, mode, false)
    }

    /// Stops the server (`DnsMode::Stopped`).
    pub fn stop(&self) -> Result<()> {
        self.set_mode(DnsMode::Stopped)
    }

    /// (Re)starts the server serving the zone (`DnsMode::Normal`).
    pub fn start(&self) -> Result<()> {
        self.set_mode(DnsMode::Normal)
    }

    /// Puts the server in `mode`; `reload` forces a restart (new zone) even
    /// when a running server could just be stopped or continued.
    fn apply(&self, st: &mut State, mode: DnsMode, reload: bool) -> Result<()> {
        if !reload && mode == DnsMode::Silent && st.mode != DnsMode::Stopped && st.pgid.is_some() {
            if let Some(pgid) = st.pgid {
                signal_group(pgid, libc::SIGSTOP)?;
            }
            st.mode = mode;
            return Ok(());
        }
        self.kill(st)?;
        match mode {
            DnsMode::Stopped => Ok(()),
            DnsMode::Silent => {
                self.spawn(st, DnsMode::Normal)?;
                if let Some(pgid) = st.pgid {
                    signal_group(pgid, libc::SIGSTOP)?;
                }
                st.mode = DnsMode::Silent;
                Ok(())
            }
            DnsMode::Normal | DnsMode::NxDomain | DnsMode::NoData => self.spawn(st, mode),
        }
    }

    fn kill(&self, st: &mut State) -> Result<()> {
        if let Some(pgid) = st.pgid.take() {
            kill_group(pgid, st.child.as_mut())?;
        }
        if let Some(mut c) = st.child.take() {
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(self.pgid_file());
        st.mode = DnsMode::Stopped;
        Ok(())
    }

    fn render(&self, zone: &Zone, mode: DnsMode) -> String {
        let mut lines = vec![
            format!("port={}", self.addr.port()),
            format!("listen-address={}", self.addr.ip()),
            "bind-interfaces".to_string(),
            "no-resolv".to_string(),
            "no-hosts".to_string(),
            "no-poll".to_string(),
            "no-negcache".to_string(),
            "cache-size=0".to_string(),
            "log-queries".to_string(),
            format!("log-facility={}", self.log_path().display()),
            format!("local-ttl={}", zone.ttl),
            format!("neg-ttl={}", zone.ttl),
            format!("local=/{}/", zone.domain),
        ];
        match mode {
            DnsMode::Normal | DnsMode::Silent => lines.extend(zone.dnsmasq_lines()),
            DnsMode::NoData => lines.extend(
                zone.names()
                    .into_iter()
                    .map(|n| format!("txt-record={n},\"sipfleet lab: no data\"")),
            ),
            DnsMode::NxDomain | DnsMode::Stopped => {}
        }
        lines.join("\n") + "\n"
    }

    fn spawn(&self, st: &mut State, mode: DnsMode) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| LabError::io(format!("create {}", self.dir.display()), e))?;
        let conf = self.dir.join("dnsmasq.conf");
        std::fs::write(&conf, self.render(&st.zone, mode))
            .map_err(|e| LabError::io(format!("write {}", conf.display()), e))?;
        let mut cmd = Command::new("dnsmasq");
        cmd.arg("--keep-in-foreground")
            .arg(format!("--conf-file={}", conf.display()))
            .arg(format!(
                "--pid-file={}",
                self.dir.join("dnsmasq.pid").display()
            ))
            .arg("--user=root")
            .arg("--group=root");
        let child = spawn_group(cmd, "dnsmasq", &self.dir.join("dnsmasq.out"))?;
        let pgid = child.id();
        std::fs::write(self.pgid_file(), pgid.to_string())
            .map_err(|e| LabError::io("write pgid file", e))?;
        st.pgid = Some(pgid);
        st.child = Some(child);
        st.mode = mode;
        self.wait_ready(st)
    }

    fn wait_ready(&self, st: &mut State) -> Result<()> {
        let timeout = Duration::from_secs(10);
        let started = Instant::now();
        let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| LabError::io("bind DNS probe", e))?;
        sock.connect(self.addr)
            .map_err(|e| LabError::io("connect DNS probe", e))?;
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(|e| LabError::io("DNS probe timeout", e))?;
        let mut id: u16 = 0x5a00;
        let mut buf = [0u8; 512];
        while started.elapsed() < timeout {
            if let Some(child) = st.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    st.pgid = None;
                    st.child = None;
                    st.mode = DnsMode::Stopped;
                    let mut log = log_tail(&self.dir.join("dnsmasq.out"), 1500);
                    log.push_str(&log_tail(&self.log_path(), 1500));
                    return Err(LabError::Exited {
                        what: format!("dnsmasq on {}", self.addr),
                        status: status.to_string(),
                        log,
                    });
                }
            }
            id = id.wrapping_add(1);
            if sock.send(&probe_query(id, PROBE_NAME)).is_ok() {
                if let Ok(n) = sock.recv(&mut buf) {
                    if n >= 12 && buf[..2] == id.to_be_bytes() {
                        return Ok(());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(LabError::NotReady {
            what: format!("dnsmasq on {}", self.addr),
            waited_ms: timeout.as_millis() as u64,
            log: log_tail(&self.dir.join("dnsmasq.out"), 2000),
        })
    }

    /// Kills the server (teardown).
    pub(crate) fn shutdown(&self) -> Result<()> {
        let mut st = self.lock();
        self.kill(&mut st)
    }

    /// Forgets the process without killing it (persistent labs).
    pub(crate) fn detach(&self) {
        self.lock().child = None;
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let owned = self.lock().child.is_some();
        if owned {
            let _ = self.shutdown();
        }
    }
}

/// The name the readiness probe asks for (never a real name).
const PROBE_NAME: &str = "lab-probe.invalid";

/// One query seen by the lab's DNS server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsQuery {
    /// Record type as dnsmasq names it: `A`, `SRV`, `NAPTR`, ...
    pub rtype: String,
    pub name: String,
    pub from: std::net::IpAddr,
}

impl DnsQuery {
    /// Parses dnsmasq's `... query[SRV] NAME from IP` log line.
    fn parse(line: &str) -> Option<DnsQuery> {
        let rest = &line[line.find("query[")? + 6..];
        let (rtype, rest) = rest.split_once("] ")?;
        let (name, from) = rest.split_once(" from ")?;
        Some(DnsQuery {
            rtype: rtype.to_string(),
            name: name.to_string(),
            from: from.trim().parse().ok()?,
        })
    }
}

/// A DNS query for the A record of `name`: 12-byte header (RD set), one
/// question.
pub(crate) fn probe_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(32 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(label.len().min(63) as u8);
        q.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_query_log_lines() {
        let q = DnsQuery::parse(
            "Nov 25 00:44:41 dnsmasq[3052]: query[SRV] _sip._udp.lab.sipfleet.test from 127.0.0.1",
        )
        .unwrap();
        assert_eq!(q.rtype, "SRV");
        assert_eq!(q.name, "_sip._udp.lab.sipfleet.test");
        assert_eq!(q.from, std::net::IpAddr::from([127, 0, 0, 1]));
        assert!(DnsQuery::parse("Nov 25 dnsmasq[1]: config x is <SRV>").is_none());
    }

    #[test]
    fn probe_query_is_a_well_formed_a_question() {
        let q = probe_query(0x1234, "ab.c");
        assert_eq!(&q[..2], &[0x12, 0x34]);
        assert_eq!(&q[12..], &[2, b'a', b'b', 1, b'c', 0, 0, 1, 0, 1]);
    }
}
