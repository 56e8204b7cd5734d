//! A whole lab: SBCs, DNS, CA, instance number and directory.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::thread;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::certs::{make_ca, make_server_cert};
use crate::dns::{Dns, DnsMode};
use crate::error::{LabError, Result};
use crate::instance::{self, Claim};
use crate::mode::{Mode, Transport};
use crate::observe::ObservedRequest;
use crate::process::{group_alive, process_name, signal_group, terminate_group};
use crate::sbc::Sbc;
use crate::zone::{naptr_service, srv_name, Record, Zone};

/// The lab's default domain.
pub const DEFAULT_DOMAIN: &str = "lab.sipfleet.test";

/// Which zone the DNS server serves at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ZonePreset {
    /// [`standard_zone`]: NAPTR -> SRV per transport -> A for every SBC.
    #[default]
    Standard,
    /// [`mixed_transport_zone`]: the guide's mixed-transport table (needs 10 SBCs).
    MixedTransport,
    /// No records (every name NXDOMAIN).
    Empty,
}

/// What to start.
#[derive(Clone, Debug)]
pub struct LabConfig {
    /// Number of SBCs (1..=40), at 127.x.y.11, .12, ...
    pub sbc_count: usize,
    /// `None`: the first free test instance (k >= 1). `Some(0)`: the demo lab.
    pub instance: Option<u32>,
    pub domain: String,
    /// TTL of every DNS answer, seconds.
    pub ttl: u32,
    pub zone: ZonePreset,
    /// Keep the lab directory (logs, configs) after teardown. Also set by
    /// the environment variable `SIPFLEET_LAB_KEEP=1`.
    pub keep_dir: bool,
    /// Each SBC's Kamailio memory: shared memory (`-m`, MB), which holds the
    /// location table and grows with the registered lines, and private
    /// memory per process (`-M`, MB). The defaults fit the tests; a bench
    /// with tens of thousands of lines needs more shared memory.
    pub sbc_memory: SbcMemory,
}

/// Kamailio's memory pools of one SBC, MB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SbcMemory {
    /// `-m`: shared memory (location table, transactions).
    pub shm_mb: u32,
    /// `-M`: private memory of each process.
    pub pkg_mb: u32,
}

impl Default for SbcMemory {
    fn default() -> Self {
        SbcMemory {
            shm_mb: 32,
            pkg_mb: 4,
        }
    }
}

impl SbcMemory {
    /// Enough shared memory for `lines` registered lines: the default 32 MB
    /// plus 2 KiB a line (Kamailio 5.6 uses about 1 KiB of shared memory
    /// per contact in the location table, plus transactions in flight).
    pub fn for_lines(lines: u32) -> Self {
        SbcMemory {
            shm_mb: 32 + lines.div_ceil(512),
            ..SbcMemory::default()
        }
    }
}

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig {
            sbc_count: 3,
            instance: None,
            domain: DEFAULT_DOMAIN.to_string(),
            ttl: 5,
            zone: ZonePreset::Standard,
            keep_dir: false,
            sbc_memory: SbcMemory::default(),
        }
    }
}

impl LabConfig {
    /// Ten SBCs serving the guide's mixed-transport NAPTR example.
    pub fn mixed_transport() -> Self {
        LabConfig {
            sbc_count: 10,
            zone: ZonePreset::MixedTransport,
            ..LabConfig::default()
        }
    }
}

/// The standard zone over `sbcs` (host name, address), in SBC order:
/// - `A` for every host;
/// - `_sip._udp`, `_sip._tcp` (port 5060) and `_sips._tcp` (port 5061) SRV
///   under `domain`, SBC n with priority 10*n and weight 50;
/// - NAPTR at `domain`: order 10 `SIP+D2U`, 20 `SIP+D2T`, 30 `SIPS+D2T`.
pub fn standard_zone(domain: &str, ttl: u32, sbcs: &[(String, Ipv4Addr)]) -> Zone {
    let mut z = Zone::new(domain, ttl);
    for (host, ip) in sbcs {
        z.push(Record::a(host.clone(), *ip));
    }
    for (order, t) in [
        (10, Transport::Udp),
        (20, Transport::Tcp),
        (30, Transport::Tls),
    ] {
        let name = srv_name(t, domain);
        z.push(Record::naptr(
            domain,
            order,
            10,
            naptr_service(t),
            name.clone(),
        ));
        for (i, (host, _)) in sbcs.iter().enumerate() {
            let prio = u16::try_from((i + 1) * 10).unwrap_or(u16::MAX);
            z.push(Record::srv(name.clone(), prio, 50, t.port(), host.clone()));
        }
    }
    z
}

/// The guide's table "DNSNaptr Records for Mixed Transports" on loopback:
/// its ten rows, top to bottom, are SBCs 1..=10 (`sbcs[0..10]`).
///
/// | NAPTR (order/pref, service) | SRV name | SRV prio/weight | SBC |
/// |---|---|---|---|
/// | a. 50/10 SIP+D2T  | `_sip._tcp.poly-sbc.DOMAIN`      | 100/50 | 1, 2 |
/// | b. 100/10 SIP+D2T | `_sip._tcp.poly-sbc-int.DOMAIN`  | 100/50 | 3, 4 |
/// | c. 150/10 SIPS+D2T| `_sips._tcp.poly-sbc-ext.DOMAIN` | 140, 240, 340, 440 /50 | 5..8 |
/// | d. 200/10 SIP+D2U | `_sip._udp.poly-sbc-bak.DOMAIN`  | 140, 240 /50 | 9, 10 |
///
/// The guide gives rows a and b the same SRV name; here b gets its own
/// (`poly-sbc-int`) so the two records stay distinct, as the guide's
/// selection order (1 then 2) requires.
pub fn mixed_transport_zone(domain: &str, ttl: u32, sbcs: &[(String, Ipv4Addr)]) -> Result<Zone> {
    if sbcs.len() < 10 {
        return Err(LabError::Config(format!(
            "the mixed-transport zone needs 10 SBCs, the lab has {}",
            sbcs.len()
        )));
    }
    let mut z = Zone::new(domain, ttl);
    for (host, ip) in sbcs {
        z.push(Record::a(host.clone(), *ip));
    }
    /// (NAPTR order, transport, SRV label, [(SBC slot, SRV priority)]).
    type Row<'a> = (u16, Transport, &'a str, &'a [(usize, u16)]);
    let rows: [Row; 4] = [
        (50, Transport::Tcp, "poly-sbc", &[(0, 100), (1, 100)]),
        (100, Transport::Tcp, "poly-sbc-int", &[(2, 100), (3, 100)]),
        (
            150,
            Transport::Tls,
            "poly-sbc-ext",
            &[(4, 140), (5, 240), (6, 340), (7, 440)],
        ),
        (200, Transport::Udp, "poly-sbc-bak", &[(8, 140), (9, 240)]),
    ];
    for (order, t, label, members) in rows {
        let name = srv_name(t, &format!("{label}.{domain}"));
        z.push(Record::naptr(
            domain,
            order,
            10,
            naptr_service(t),
            name.clone(),
        ));
        for &(i, prio) in members {
            z.push(Record::srv(
                name.clone(),
                prio,
                50,
                t.port(),
                sbcs[i].0.clone(),
            ));
        }
    }
    Ok(z)
}

#[derive(Serialize, Deserialize)]
struct SbcRecord {
    index: usize,
    ip: Ipv4Addr,
    mode: Mode,
    pgid: Option<u32>,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    instance: u32,
    domain: String,
    dns_addr: SocketAddr,
    dns_mode: DnsMode,
    dns_pgid: Option<u32>,
    zone: Zone,
    sbcs: Vec<SbcRecord>,
}

/// A running lab. Dropping it kills every server it started (also while a
/// test panics) and removes its directory.
#[derive(Debug)]
pub struct Lab {
    instance: u32,
    dir: PathBuf,
    domain: String,
    sbcs: Vec<Sbc>,
    dns: Dns,
    ca: PathBuf,
    keep_dir: bool,
    /// A demo lab outlives this handle (`scripts/lab`).
    persistent: bool,
    /// Next local port handed out by `local_endpoint`.
    next_port: AtomicU16,
    _claim: Option<Claim>,
}

/// First port of `Lab::local_endpoint`.
const FIRST_LOCAL_PORT: u16 = 15060;

/// The demo lab's DNS port and address; test instance k uses port 5300 + k.
fn dns_addr(k: u32) -> SocketAddr {
    SocketAddr::new(
        instance::addr(k, 2).into(),
        5300 + u16::try_from(k).unwrap_or(0),
    )
}

/// How long `Lab::destroy` lets a server shut down on SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

impl Lab {
    /// Starts a lab: CA and certificates, every SBC (in parallel) and the
    /// DNS server, and waits until all answer.
    pub fn start(config: LabConfig) -> Result<Lab> {
        if config.sbc_count == 0 || config.sbc_count > 40 {
            return Err(LabError::Config(format!(
                "sbc_count {} outside 1..=40",
                config.sbc_count
            )));
        }
        let claim = instance::claim(config.instance)?;
        let k = claim.number;
        let dir = instance::dir(k);
        let keep_dir =
            config.keep_dir || std::env::var("SIPFLEET_LAB_KEEP").is_ok_and(|v| v == "1");
        let ca = make_ca(&dir)?;
        let mut sbcs = Vec::with_capacity(config.sbc_count);
        let mut hosts = Vec::with_capacity(config.sbc_count);
        for i in 1..=config.sbc_count {
            let ip = instance::addr(k, 10 + i as u8);
            let host = format!("sbc{i}.{}", config.domain);
            let cert = make_server_cert(&dir, &ca, &format!("sbc{i}"), &host, ip)?;
            sbcs.push(Sbc::prepare(
                &dir,
                i,
                ip,
                &config.domain,
                &cert,
                &ca.cert,
                config.sbc_memory,
            )?);
            hosts.push((host, ip));
        }
        let zone = match config.zone {
            ZonePreset::Standard => standard_zone(&config.domain, config.ttl, &hosts),
            ZonePreset::MixedTransport => mixed_transport_zone(&config.domain, config.ttl, &hosts)?,
            ZonePreset::Empty => Zone::new(config.domain.clone(), config.ttl),
        };
        let lab = Lab {
            instance: k,
            dns: Dns::new(&dir, dns_addr(k), zone),
            dir,
            domain: config.domain,
            sbcs,
            ca: ca.cert,
            keep_dir,
            persistent: false,
            next_port: AtomicU16::new(FIRST_LOCAL_PORT),
            _claim: Some(claim),
        };
        // From here on, Drop cleans up whatever fails.
        for sbc in &lab.sbcs {
            sbc.start()?;
        }
        lab.dns.start()?;
        thread::scope(|s| {
            let waits: Vec<_> = lab
                .sbcs
                .iter()
                .map(|sbc| s.spawn(move || sbc.wait_ready()))
                .collect();
            waits
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(LabError::Config("probe thread panicked".into())))
                })
                .collect::<Result<Vec<()>>>()
        })?;
        Ok(lab)
    }

    /// The instance number (0 = demo lab).
    pub fn instance(&self) -> u32 {
        self.instance
    }

    /// The lab's directory (configs, certificates, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The SIP domain (also the digest realm).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// All SBCs, `sbcs()[0]` being SBC 1.
    pub fn sbcs(&self) -> &[Sbc] {
        &self.sbcs
    }

    /// SBC `i` (1-based).
    ///
    /// # Panics
    /// When `i` is not in `1..=sbc_count` (a bug in the test).
    pub fn sbc(&self, i: usize) -> &Sbc {
        self.try_sbc(i).unwrap_or_else(|e| panic!("{e}"))
    }

    /// SBC `i` (1-based), or an error.
    pub fn try_sbc(&self, i: usize) -> Result<&Sbc> {
        i.checked_sub(1)
            .and_then(|j| self.sbcs.get(j))
            .ok_or(LabError::NoSuchSbc(i))
    }

    /// Switches SBC `i` (1-based) to `mode`.
    pub fn set_mode(&self, i: usize, mode: Mode) -> Result<()> {
        self.try_sbc(i)?.set_mode(mode)
    }

    /// Requests SBC `i` received so far.
    pub fn received(&self, i: usize) -> Result<Vec<ObservedRequest>> {
        self.try_sbc(i)?.received()
    }

    /// The DNS server.
    pub fn dns(&self) -> &Dns {
        &self.dns
    }

    /// Where the DNS server listens.
    pub fn dns_addr(&self) -> SocketAddr {
        self.dns.addr()
    }

    /// A fresh local address for a test's client (SIPp, sockets): the lab's
    /// own client address (x.y.z.100 in its block) with a port no other
    /// caller of this lab got. Tests in other labs use other blocks.
    pub fn local_endpoint(&self) -> SocketAddr {
        let port = self.next_port.fetch_add(1, Ordering::Relaxed);
        SocketAddr::new(self.client_ip().into(), port)
    }

    /// The lab's client address (x.y.z.100 in its block).
    pub fn client_ip(&self) -> Ipv4Addr {
        instance::addr(self.instance, 100)
    }

    /// The CA certificate (PEM) that signed every SBC certificate.
    pub fn ca_cert_path(&self) -> &Path {
        &self.ca
    }

    /// Kills everything now (what Drop does), reporting errors.
    pub fn shutdown(&self) -> Result<()> {
        let mut first_err = None;
        for sbc in &self.sbcs {
            if let Err(e) = sbc.stop() {
                first_err.get_or_insert(e);
            }
        }
        if let Err(e) = self.dns.shutdown() {
            first_err.get_or_insert(e);
        }
        first_err.map_or(Ok(()), Err)
    }

    fn state_path(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    fn save_state(&self) -> Result<()> {
        let state = StateFile {
            instance: self.instance,
            domain: self.domain.clone(),
            dns_addr: self.dns.addr(),
            dns_mode: self.dns.mode(),
            dns_pgid: self.dns.pgid(),
            zone: self.dns.zone(),
            sbcs: self
                .sbcs
                .iter()
                .map(|s| SbcRecord {
                    index: s.index(),
                    ip: s.ip(),
                    mode: s.mode(),
                    pgid: s.pgid(),
                })
                .collect(),
        };
        let path = Self::state_path(&self.dir);
        let text = serde_json::to_string_pretty(&state).map_err(|e| LabError::State {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        std::fs::write(&path, text)
            .map_err(|e| LabError::io(format!("write {}", path.display()), e))
    }

    /// Leaves the lab running after this handle is dropped (the demo lab of
    /// `scripts/lab up`); `Lab::attach` finds it again.
    pub fn persist(mut self) -> Result<()> {
        self.persistent = true;
        self.save_state()
        // Drop detaches the processes and saves the state again.
    }

    /// A handle on the persistent lab of `instance` (0 = demo). Changes made
    /// through it are saved when it is dropped; it never kills on drop.
    pub fn attach(instance: u32) -> Result<Lab> {
        let dir = instance::dir(instance);
        let path = Self::state_path(&dir);
        let text = std::fs::read_to_string(&path).map_err(|e| LabError::State {
            path: path.clone(),
            detail: format!("{e} (is the lab up? run `scripts/lab up`)"),
        })?;
        let st: StateFile = serde_json::from_str(&text).map_err(|e| LabError::State {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        let live = |pgid: Option<u32>, name: &str| {
            pgid.filter(|&p| group_alive(p) && process_name(p).is_some_and(|n| n == name))
        };
        let sbcs = st
            .sbcs
            .iter()
            .map(|r| {
                let pgid = live(r.pgid, "kamailio");
                let mode = if pgid.is_some() { r.mode } else { Mode::Dead };
                Sbc::attach(&dir, r.index, r.ip, &st.domain, mode, pgid)
            })
            .collect();
        let dns_pgid = live(st.dns_pgid, "dnsmasq");
        let dns_mode = if dns_pgid.is_some() {
            st.dns_mode
        } else {
            DnsMode::Stopped
        };
        Ok(Lab {
            instance: st.instance,
            ca: dir.join("ca.pem"),
            dns: Dns::attach(&dir, st.dns_addr, st.zone, dns_mode, dns_pgid),
            dir,
            domain: st.domain,
            sbcs,
            keep_dir: true,
            persistent: true,
            next_port: AtomicU16::new(FIRST_LOCAL_PORT),
            _claim: None,
        })
    }

    /// Stops a persistent lab for good and removes its directory. Returns
    /// only when every server process is gone (not even a zombie left), or
    /// with an error naming what is left after a bounded wait; the
    /// directory is removed either way.
    pub fn destroy(self) -> Result<()> {
        let groups: Vec<u32> = self
            .sbcs
            .iter()
            .filter_map(Sbc::pgid)
            .chain(self.dns.pgid())
            .collect();
        // Every group is told first, so they shut down side by side.
        let mut first_err = None;
        for &p in &groups {
            if let Err(e) =
                signal_group(p, libc::SIGCONT).and_then(|()| signal_group(p, libc::SIGTERM))
            {
                first_err.get_or_insert(e);
            }
        }
        for &p in &groups {
            if let Err(e) = terminate_group(p, STOP_GRACE) {
                first_err.get_or_insert(e);
            }
        }
        let dir = self.dir.clone();
        drop(self);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            first_err.get_or_insert(LabError::io(format!("remove {}", dir.display()), e));
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.persistent {
            for sbc in &self.sbcs {
                sbc.detach();
            }
            self.dns.detach();
            if self.dir.exists() {
                let _ = self.save_state();
            }
            return;
        }
        let _ = self.shutdown();
        if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The password of lab user `user`: `"pw" + user` (no table needed).
pub fn password_for(user: &str) -> String {
    format!("pw{user}")
}

/// True for the users the SBCs accept: 1000-1999, 20000-29999 (fleets
/// up to 10,000 lines) and 100000-199999 (up to 100,000).
pub fn is_lab_user(user: &str) -> bool {
    user.parse::<u32>().is_ok_and(|n| {
        (1000..=1999).contains(&n)
            || (20000..=29999).contains(&n)
            || (100_000..=199_999).contains(&n)
    }) && !user.starts_with('0')
}

/// Path of a SIPp scenario shipped in `lab/sipp/`.
pub fn sipp_scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../lab/sipp")
        .join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lab_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Lab>();
    }

    #[test]
    fn lab_users_and_passwords() {
        assert_eq!(password_for("1001"), "pw1001");
        for u in ["1000", "1999", "20000", "29999", "100000", "199999"] {
            assert!(is_lab_user(u), "{u}");
        }
        for u in ["999", "2000", "19999", "30000", "01000", "x"] {
            assert!(!is_lab_user(u), "{u}");
        }
    }

    #[test]
    fn mixed_transport_zone_needs_ten_sbcs() {
        let hosts: Vec<(String, Ipv4Addr)> = (1..=9)
            .map(|i| (format!("sbc{i}.d"), Ipv4Addr::new(127, 0, 0, 10 + i)))
            .collect();
        assert!(mixed_transport_zone("d", 5, &hosts).is_err());
    }

    #[test]
    fn instance_blocks_never_overlap_the_demo() {
        assert_eq!(instance::addr(0, 11), Ipv4Addr::new(127, 0, 0, 11));
        assert_eq!(instance::addr(1, 11), Ipv4Addr::new(127, 0, 21, 11));
        assert_eq!(dns_addr(0).to_string(), "127.0.0.2:5300");
        assert_eq!(dns_addr(3).to_string(), "127.0.23.2:5303");
    }
}
