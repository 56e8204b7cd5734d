//! sipfleet against SIPp, side by side on one lab SBC (issue 15's bench; it
//! prints figures and asserts nothing). `scripts/bench-vs-sipp [N] [udp|tcp]
//! [RATE]` builds it in release with the `sipfleet` binary and runs it.
//!
//! Both clients register N lab users (20000 and up) once each, REGISTER →
//! 401 → REGISTER with digest credentials → 200, over one socket (SIPp
//! `-t u1`/`t1`, sipfleet's one flow per SBC), against one Kamailio SBC
//! sized for N ([`SbcMemory::for_lines`]):
//!
//! - **SIPp**: `lab/sipp/register_fleet.xml` with an injection file of the N
//!   users and their `[authentication ...]`, `-m N -r RATE -rp 1000`: one
//!   registration started every 1/RATE s.
//! - **sipfleet**: the release `sipfleet run` binary with a generated
//!   configuration of N lines (server: the SBC's address, so no DNS) and
//!   `--events json` on a pipe this bench reads, counting `registered`
//!   events. With `sipfleet.register.rate` in this build's schema, the
//!   configuration sets it to RATE; otherwise the fleet registers unpaced
//!   (every line at once), and the output says so.
//!
//! sipfleet runs as a child process, like SIPp, rather than in this process:
//! its CPU figure is then the whole client (start-up, event serialization
//! and the write to a reader included) and nothing of the bench's own
//! bookkeeping, measured the same way for both (`wait4`'s rusage).
//!
//! Three rounds, the two clients interleaved (the order alternates between
//! rounds, so neither always runs on a warmer machine). Before every run
//! the SBC is restarted: an empty location table, zeroed statistics, and
//! the same starting point for both. Per run:
//!
//! - **client CPU per registration**: user + system time of the client
//!   process (`wait4` rusage, µs resolution; sipfleet is killed with
//!   SIGKILL once every line registered, so its un-REGISTERs at shutdown
//!   are not counted) / registrations completed.
//!   The table also shows it less the CPU of a 1-line run of the same
//!   client (start-up, fixed costs), divided by the same registrations;
//! - **registrations completed**: AORs in the SBC's location table at the
//!   end (`usrloc:registered_users`; the users are distinct, so it counts
//!   each completed registration once, duplicated 200s not);
//! - **REGISTERs per registration**: REGISTERs the SBC logged during the
//!   run (challenged ones and retransmissions included) / registrations;
//! - **SBC CPU**: on-CPU time of every Kamailio process of the SBC
//!   (`/proc/PID/task/*/schedstat`, ns) from the client's start until it
//!   was done;
//! - **time to all registered**: from spawning the client until the last
//!   line's `registered` event (sipfleet) or SIPp's exit after its N calls;
//! - **RSS per line**: sipfleet's resident set with every line registered
//!   (VmRSS), SIPp's peak (rusage maxrss: it holds no line once its call
//!   ended), each less the same figure of a 1-line run, / N;
//! - **receive-buffer errors**: datagrams the SBC's UDP socket dropped
//!   (`/proc/net/udp` `drops`; a fresh socket each run) and the system's
//!   `Udp RcvbufErrors` delta (`/proc/net/snmp`: any socket, the client's
//!   included).
//!
//! Then a table: min / median / max over the rounds for each client, and the
//! ratio sipfleet / SIPp per round (min / median / max), in Markdown.
//!
//! Runs as root with the lab installed (`scripts/lab-install`). The lab's
//! addresses are per instance, but on a shared machine run it alone:
//! `flock /tmp/sipfleet-lab.lock scripts/bench-vs-sipp 10000`.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sipfleet::protocol::config::schema;
use sipfleet_lab::tools::require;
use sipfleet_lab::{password_for, sipp_scenario, Lab, LabConfig, Mode, SbcMemory, Transport};

type BoxError = Box<dyn std::error::Error>;

const FIRST_USER: u32 = 20_000;
/// Lab users 20000-29999.
/// Lab users 100000-199999, for runs past 10,000 lines.
const FIRST_USER_LARGE: u32 = 100_000;
const MAX_LINES: u32 = 100_000;
/// Rounds when `BENCH_ROUNDS` does not say (a 100,000-line round takes
/// minutes).
const ROUNDS: usize = 3;
const DEFAULT_RATE: u32 = 8_000;
/// The rate key another change brings; set when this build's schema has it.
const RATE_KEY: &str = "sipfleet.register.rate";

fn main() -> Result<(), BoxError> {
    let args = Args::parse()?;
    let sipfleet_bin = sipfleet_binary()?;
    let sipp_bin = require("sipp")?;
    let paced = schema::specs().iter().any(|s| s.template == RATE_KEY);

    let lab = Lab::start(LabConfig {
        sbc_count: 1,
        sbc_memory: SbcMemory::for_lines(args.lines),
        ..LabConfig::default()
    })?;
    let work = tempfile::Builder::new().prefix("bench-vs-sipp").tempdir()?;
    let sbc_ip = lab.sbc(1).ip();
    let bench = Bench {
        lab: &lab,
        args: &args,
        sipfleet_bin: &sipfleet_bin,
        sipp_bin: &sipp_bin,
        work: work.path(),
        sbc: SocketAddr::new(sbc_ip.into(), args.transport.port()),
        limit: Duration::from_secs(60 + u64::from(args.lines / args.rate.max(1))),
    };
    bench.write_inputs(paced)?;

    println!(
        "{} lines over {}, one Kamailio SBC at {} (shm {} MB), {} rounds",
        args.lines,
        args.transport,
        bench.sbc,
        SbcMemory::for_lines(args.lines).shm_mb,
        args.rounds
    );
    println!(
        "SIPp: -m {} -r {} -rp 1000 (one registration every {:.0} µs)",
        args.lines,
        args.rate,
        1e6 / f64::from(args.rate.max(1))
    );
    if paced {
        println!("sipfleet: {RATE_KEY}={}", args.rate);
    } else {
        println!(
            "sipfleet: UNPACED (this build has no {RATE_KEY}: every line starts registering at once)"
        );
    }

    let base_sipp = bench.run(Client::Sipp, 1)?;
    let base_fleet = bench.run(Client::Sipfleet, 1)?;
    println!(
        "1-line runs (baselines): SIPp CPU {:.1} ms, peak RSS {} KiB; sipfleet CPU {:.1} ms, RSS {} KiB",
        base_sipp.cpu.as_secs_f64() * 1e3,
        base_sipp.rss_kib,
        base_fleet.cpu.as_secs_f64() * 1e3,
        base_fleet.rss_kib
    );

    let mut runs: Vec<(Client, Figures)> = Vec::new();
    for round in 1..=args.rounds {
        let order = if round % 2 == 1 {
            [Client::Sipp, Client::Sipfleet]
        } else {
            [Client::Sipfleet, Client::Sipp]
        };
        for client in order {
            let sample = bench.run(client, args.lines)?;
            let base = match client {
                Client::Sipp => &base_sipp,
                Client::Sipfleet => &base_fleet,
            };
            let figures = Figures::of(&sample, base, args.lines);
            println!(
                "round {round} {:<8} {}",
                client.name(),
                sample.describe(&figures)
            );
            runs.push((client, figures));
        }
    }
    print_table(&runs);
    Ok(())
}

struct Args {
    lines: u32,
    transport: Transport,
    rate: u32,
    rounds: usize,
}

impl Args {
    /// The first lab user: 20000 up to 10,000 lines, 100000 above.
    fn first_user(&self) -> u32 {
        if self.lines <= 10_000 {
            FIRST_USER
        } else {
            FIRST_USER_LARGE
        }
    }
}

impl Args {
    fn parse() -> Result<Args, BoxError> {
        let mut args = std::env::args().skip(1);
        let lines: u32 = match args.next() {
            Some(n) => n.parse().map_err(|e| format!("N {n:?}: {e}"))?,
            None => 1000,
        };
        if !(1..=MAX_LINES).contains(&lines) {
            return Err(format!(
                "N must be 1..={MAX_LINES} (lab users 20000-29999, 100000-199999)"
            )
            .into());
        }
        let transport = match args.next().as_deref() {
            None | Some("udp") => Transport::Udp,
            Some("tcp") => Transport::Tcp,
            Some(other) => return Err(format!("transport {other:?}: udp or tcp").into()),
        };
        let rate: u32 = match args.next() {
            Some(r) => r.parse().map_err(|e| format!("RATE {r:?}: {e}"))?,
            None => DEFAULT_RATE,
        };
        if rate == 0 {
            return Err("RATE must be at least 1 registration per second".into());
        }
        let rounds = match std::env::var("BENCH_ROUNDS") {
            Ok(r) => r
                .parse()
                .ok()
                .filter(|r| *r >= 1)
                .ok_or_else(|| format!("BENCH_ROUNDS {r:?}: a number of rounds, 1 or more"))?,
            Err(_) => ROUNDS,
        };
        Ok(Args {
            lines,
            transport,
            rate,
            rounds,
        })
    }
}

/// The `sipfleet` binary: `$SIPFLEET_BIN`, else the one cargo built next
/// to this example (`target/release/examples/..` → `target/release`).
fn sipfleet_binary() -> Result<PathBuf, BoxError> {
    if let Some(path) = std::env::var_os("SIPFLEET_BIN") {
        return Ok(path.into());
    }
    let exe = std::env::current_exe()?;
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("sipfleet"))
        .filter(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "no sipfleet binary beside {} (build it: cargo build --release -p sipfleet-cli, \
                 or set SIPFLEET_BIN)",
                exe.display()
            )
        })?;
    Ok(path)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Client {
    Sipp,
    Sipfleet,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Sipp => "SIPp",
            Client::Sipfleet => "sipfleet",
        }
    }
}

struct Bench<'a> {
    lab: &'a Lab,
    args: &'a Args,
    sipfleet_bin: &'a Path,
    sipp_bin: &'a Path,
    work: &'a Path,
    sbc: SocketAddr,
    /// The longest a run may take; a client still going then is killed and
    /// the run shows fewer registrations.
    limit: Duration,
}

/// What one run measured (raw).
struct Sample {
    lines: u32,
    cpu: Duration,
    registrations: u64,
    registers: u64,
    sbc_cpu: Duration,
    elapsed: Duration,
    /// sipfleet: VmRSS with every line registered; SIPp: peak (maxrss).
    rss_kib: u64,
    sbc_drops: Option<u64>,
    rcvbuf_errors: Option<u64>,
    sbc_shm_peak_kib: Option<u64>,
    /// SIPp's exit status, or how sipfleet's run ended.
    outcome: String,
}

impl Sample {
    fn describe(&self, f: &Figures) -> String {
        let opt = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
        format!(
            "{}/{} registered in {:.2} s; client CPU {:.3} s ({:.1} µs/reg); {:.2} REGISTERs/reg; \
             SBC CPU {:.3} s; RSS {:.2} KiB/line; UDP drops at SBC {}, RcvbufErrors {}; \
             SBC shm peak {} KiB; {}",
            self.registrations,
            self.lines,
            self.elapsed.as_secs_f64(),
            self.cpu.as_secs_f64(),
            f.cpu_us_per_reg,
            f.registers_per_reg,
            self.sbc_cpu.as_secs_f64(),
            f.rss_kib_per_line,
            opt(self.sbc_drops),
            opt(self.rcvbuf_errors),
            opt(self.sbc_shm_peak_kib),
            self.outcome
        )
    }
}

impl Bench<'_> {
    /// The SIPp injection file (every user, its credentials) and the
    /// sipfleet configurations (N lines and 1 line).
    fn write_inputs(&self, paced: bool) -> Result<(), BoxError> {
        let mut csv = String::from("SEQUENTIAL\n");
        for user in (self.args.first_user()..).take(self.args.lines as usize) {
            let user = user.to_string();
            csv.push_str(&format!(
                "{user};[authentication username={user} password={}]\n",
                password_for(&user)
            ));
        }
        write(&self.work.join("users.csv"), &csv)?;
        for lines in [1, self.args.lines] {
            write(&self.fleet_config(lines), &self.fleet_text(lines, paced))?;
        }
        Ok(())
    }

    fn fleet_config(&self, lines: u32) -> PathBuf {
        self.work.join(format!("fleet-{lines}.cfg"))
    }

    /// `reg.1` .. `reg.N` as users 20000.., one IP-literal server (no DNS
    /// in the figures: SIPp resolves nothing either), Expires 300 as SIPp's.
    fn fleet_text(&self, lines: u32, paced: bool) -> String {
        let mut text = String::new();
        for n in 1..=lines {
            let user = (self.args.first_user() + n - 1).to_string();
            text.push_str(&format!(
                "reg.{n}.address=\"{user}\"\nreg.{n}.auth.password=\"{}\"\n",
                password_for(&user)
            ));
        }
        let transport = match self.args.transport {
            Transport::Tcp => "TCPOnly",
            _ => "UDPOnly",
        };
        text.push_str(&format!(
            "voIpProt.server.1.address=\"{}\"\nvoIpProt.server.1.port=\"{}\"\n\
             voIpProt.server.1.transport=\"{transport}\"\nvoIpProt.server.1.expires=\"300\"\n",
            self.sbc.ip(),
            self.sbc.port()
        ));
        if paced {
            text.push_str(&format!("{RATE_KEY}=\"{}\"\n", self.args.rate));
        }
        text
    }

    /// One run of `client` with `lines` lines against a freshly started SBC.
    fn run(&self, client: Client, lines: u32) -> Result<Sample, BoxError> {
        // A fresh Kamailio: empty location table, statistics at zero.
        self.lab.set_mode(1, Mode::Dead)?;
        self.lab.set_mode(1, Mode::Ok)?;
        let sbc = self.lab.sbc(1);
        let pgid = sbc
            .pgid()
            .ok_or("the SBC has no process group after its restart")?;
        let registers_before = self.registers()?;
        let rcvbuf_before = udp_rcvbuf_errors();
        let sbc_cpu_before = group_cpu(pgid);
        let started = Instant::now();
        let run = match client {
            Client::Sipp => self.run_sipp(lines)?,
            Client::Sipfleet => self.run_sipfleet(lines)?,
        };
        let sbc_cpu = group_cpu(pgid).saturating_sub(sbc_cpu_before);
        let rcvbuf_errors = udp_rcvbuf_errors()
            .zip(rcvbuf_before)
            .map(|(after, before)| after.saturating_sub(before));
        let sbc_drops = match self.args.transport {
            Transport::Udp => udp_socket_drops(self.sbc),
            _ => Some(0),
        };
        let registrations = sbc.statistic("usrloc:registered_users")?;
        let sbc_shm_peak_kib = sbc.statistic("shmem:max_used_size").ok().map(|b| b / 1024);
        // What was still queued at the SBC when the client finished is
        // logged a moment later.
        std::thread::sleep(Duration::from_millis(300));
        let registers = self.registers()?.saturating_sub(registers_before);
        Ok(Sample {
            lines,
            cpu: run.cpu,
            registrations,
            registers,
            sbc_cpu,
            elapsed: run.done.saturating_duration_since(started),
            rss_kib: run.rss_kib,
            sbc_drops,
            rcvbuf_errors,
            sbc_shm_peak_kib,
            outcome: run.outcome,
        })
    }

    /// REGISTERs the SBC has logged so far (un-REGISTERs, `Expires: 0`,
    /// left out: a killed sipfleet sends none, but keep the count honest).
    fn registers(&self) -> Result<u64, BoxError> {
        Ok(self
            .lab
            .received(1)?
            .iter()
            .filter(|r| r.method == "REGISTER" && r.expires != Some(0))
            .count() as u64)
    }

    fn run_sipp(&self, lines: u32) -> Result<ClientRun, BoxError> {
        let local = self.lab.local_endpoint();
        let transport = match self.args.transport {
            Transport::Tcp => "t1",
            _ => "u1",
        };
        let out = std::fs::File::create(self.work.join(format!("sipp-{}.out", local.port())))?;
        let err = out.try_clone()?;
        let child = Command::new(self.sipp_bin)
            .current_dir(self.work)
            .arg("-sf")
            .arg(sipp_scenario("register_fleet.xml"))
            .arg("-inf")
            .arg(self.work.join("users.csv"))
            .args([
                "-i",
                &local.ip().to_string(),
                "-p",
                &local.port().to_string(),
            ])
            .arg("-bind_local")
            .args(["-mi", &local.ip().to_string()])
            .args(["-mp", &(u32::from(local.port()) + 10_000).to_string()])
            .args(["-t", transport, "-m", &lines.to_string()])
            .args(["-r", &self.args.rate.to_string(), "-rp", "1000"])
            .args(["-timeout", &format!("{}s", self.limit.as_secs())])
            .arg("-nostdin")
            .arg(self.sbc.to_string())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.sipp_bin.display()))?;
        let reaper = reap(child.id());
        let exit = match reaper.recv_timeout(self.limit + Duration::from_secs(5)) {
            Ok(exit) => exit,
            Err(_) => {
                kill(child.id());
                reaper.recv().map_err(|_| "SIPp's reaper thread died")?
            }
        };
        Ok(ClientRun {
            cpu: exit.cpu,
            done: exit.at,
            rss_kib: exit.maxrss_kib,
            outcome: format!("SIPp exit status {}", exit.status),
        })
    }

    fn run_sipfleet(&self, lines: u32) -> Result<ClientRun, BoxError> {
        let stderr = std::fs::File::create(self.work.join("sipfleet.err"))?;
        let mut child = Command::new(self.sipfleet_bin)
            .arg("run")
            .arg("--config")
            .arg(self.fleet_config(lines))
            .args(["--events", "json"])
            .arg("--dns")
            .arg(self.lab.dns_addr().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.sipfleet_bin.display()))?;
        let events = child.stdout.take().ok_or("no stdout pipe from sipfleet")?;
        let (tx, rx) = mpsc::channel();
        // Reads every event as it comes (a slow reader would block the
        // fleet on a full pipe), counting the lines that registered.
        std::thread::spawn(move || {
            let mut registered: HashSet<u64> = HashSet::new();
            let mut sent = false;
            for line in BufReader::new(events).lines() {
                let Ok(line) = line else { break };
                if !sent && line.contains("\"event\":\"registered\"") {
                    if let Some(n) = serde_json::from_str::<serde_json::Value>(&line)
                        .ok()
                        .and_then(|v| v.get("line").and_then(serde_json::Value::as_u64))
                    {
                        registered.insert(n);
                    }
                    if registered.len() == lines as usize {
                        let _ = tx.send(Some(Instant::now()));
                        sent = true;
                    }
                }
            }
            if !sent {
                let _ = tx.send(None);
            }
        });
        let (done, outcome) = match rx.recv_timeout(self.limit) {
            Ok(Some(at)) => (at, "every line registered".to_string()),
            Ok(None) => (
                Instant::now(),
                "sipfleet stopped before every line registered (see sipfleet.err)".to_string(),
            ),
            Err(_) => (
                Instant::now(),
                format!(
                    "not every line registered within {} s",
                    self.limit.as_secs()
                ),
            ),
        };
        let rss_kib = vm_rss_kib(child.id()).unwrap_or(0);
        let reaper = reap(child.id());
        kill(child.id());
        let exit = reaper.recv().map_err(|_| "sipfleet's reaper thread died")?;
        Ok(ClientRun {
            cpu: exit.cpu,
            done,
            rss_kib,
            outcome,
        })
    }
}

/// What a client's process did.
struct ClientRun {
    cpu: Duration,
    /// When it was through (every line registered, or SIPp's exit).
    done: Instant,
    rss_kib: u64,
    outcome: String,
}

/// A child reaped with `wait4`: its resource usage, which `std::process`
/// does not give.
struct Exit {
    status: i32,
    at: Instant,
    cpu: Duration,
    maxrss_kib: u64,
}

/// Waits for child `pid` on a thread (so the caller can time out and kill
/// it) and sends its exit and rusage. The `Child` handle is never waited
/// on: this reaps it.
fn reap(pid: u32) -> mpsc::Receiver<Exit> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut status = 0;
        // SAFETY: rusage is plain data that wait4 fills in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waits for our own child, writing into the two locals.
        let rc = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        let at = Instant::now();
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
        let _ = tx.send(Exit {
            status: if rc < 0 { -1 } else { status },
            at,
            cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
            maxrss_kib: usage.ru_maxrss as u64,
        });
    });
    rx
}

fn kill(pid: u32) {
    // SAFETY: a signal to our own child, not yet reaped.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

fn write(path: &Path, text: &str) -> Result<(), BoxError> {
    std::fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()).into())
}

/// On-CPU time of every thread of every process in group `pgid`
/// (`/proc/PID/task/TID/schedstat`, first field, ns): Kamailio forks a
/// dozen processes, and the 10 ms ticks of `/proc/PID/stat` would blur a
/// run of a few hundred milliseconds.
fn group_cpu(pgid: u32) -> Duration {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    let mut ns = 0u64;
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name (which may hold spaces and ')'):
        // state, ppid, pgrp.
        let pgrp = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(2))
            .and_then(|p| p.parse::<u32>().ok());
        if pgrp != Some(pgid) {
            continue;
        }
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            ns += std::fs::read_to_string(task.path().join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(ns)
}

/// The system's `Udp: RcvbufErrors` (`/proc/net/snmp`): datagrams dropped
/// because a socket's receive buffer was full, any socket.
fn udp_rcvbuf_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let names = udp.next()?;
    let values = udp.next()?;
    let i = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(i)?.parse().ok()
}

/// Datagrams dropped by the UDP socket bound to `addr` (`/proc/net/udp`,
/// last column `drops`), IPv4 only.
fn udp_socket_drops(addr: SocketAddr) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (ip, port) = fields.get(1)?.split_once(':')?;
        // The kernel prints the address as a native-endian u32 of its
        // network-order bytes.
        let ip = Ipv4Addr::from(u32::from_str_radix(ip, 16).ok()?.to_ne_bytes());
        let port = u16::from_str_radix(port, 16).ok()?;
        (SocketAddr::new(ip.into(), port) == addr)
            .then(|| fields.last()?.parse().ok())
            .flatten()
    })
}

/// Resident set (VmRSS) of process `pid`, KiB.
fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The per-run figures the table compares.
#[derive(Clone, Copy)]
struct Figures {
    cpu_us_per_reg: f64,
    /// Less the 1-line run's CPU: what each registration adds beyond the
    /// process's fixed start-up.
    marginal_cpu_us_per_reg: f64,
    registers_per_reg: f64,
    sbc_cpu_s: f64,
    time_s: f64,
    rss_kib_per_line: f64,
    sbc_drops: f64,
    rcvbuf_errors: f64,
}

impl Figures {
    fn of(s: &Sample, base: &Sample, lines: u32) -> Figures {
        let regs = s.registrations.max(1) as f64;
        Figures {
            cpu_us_per_reg: s.cpu.as_secs_f64() * 1e6 / regs,
            marginal_cpu_us_per_reg: s.cpu.saturating_sub(base.cpu).as_secs_f64() * 1e6 / regs,
            registers_per_reg: s.registers as f64 / regs,
            sbc_cpu_s: s.sbc_cpu.as_secs_f64(),
            time_s: s.elapsed.as_secs_f64(),
            rss_kib_per_line: s.rss_kib.saturating_sub(base.rss_kib) as f64 / f64::from(lines),
            sbc_drops: s.sbc_drops.map_or(f64::NAN, |d| d as f64),
            rcvbuf_errors: s.rcvbuf_errors.map_or(f64::NAN, |d| d as f64),
        }
    }
}

/// The comparison table, Markdown: min / median / max over the rounds per
/// client, and of the per-round ratio sipfleet / SIPp (runs paired in
/// round order).
fn print_table(runs: &[(Client, Figures)]) {
    type Get = fn(&Figures) -> f64;
    let rows: [(&str, Get, usize); 8] = [
        ("client CPU per registration (µs)", |f| f.cpu_us_per_reg, 1),
        (
            "same, less the 1-line run's CPU (µs)",
            |f| f.marginal_cpu_us_per_reg,
            1,
        ),
        ("REGISTERs per registration", |f| f.registers_per_reg, 2),
        ("SBC CPU (s)", |f| f.sbc_cpu_s, 3),
        ("time to all registered (s)", |f| f.time_s, 2),
        ("RSS per line (KiB)", |f| f.rss_kib_per_line, 2),
        ("UDP drops at the SBC socket", |f| f.sbc_drops, 0),
        ("UDP RcvbufErrors (system)", |f| f.rcvbuf_errors, 0),
    ];
    let of = |client: Client| -> Vec<Figures> {
        runs.iter()
            .filter(|(c, _)| *c == client)
            .map(|(_, f)| *f)
            .collect()
    };
    let (sipp, fleet) = (of(Client::Sipp), of(Client::Sipfleet));
    println!();
    println!("| figure | SIPp min / median / max | sipfleet min / median / max | sipfleet/SIPp min / median / max |");
    println!("|---|---|---|---|");
    for (name, get, digits) in rows {
        let a: Vec<f64> = sipp.iter().map(get).collect();
        let b: Vec<f64> = fleet.iter().map(get).collect();
        let ratios: Vec<f64> = a.iter().zip(&b).map(|(a, b)| b / a).collect();
        println!(
            "| {name} | {} | {} | {} |",
            spread(&a, digits),
            spread(&b, digits),
            spread(&ratios, 2)
        );
    }
}

/// `min / median / max`; a ratio over a zero (0/0, x/0) prints as `-`.
fn spread(values: &[f64], digits: usize) -> String {
    let mut v: Vec<f64> = values.to_vec();
    v.sort_by(f64::total_cmp);
    let show = |x: Option<&f64>| match x {
        Some(x) if x.is_finite() => format!("{x:.digits$}"),
        _ => "-".to_string(),
    };
    format!(
        "{} / {} / {}",
        show(v.first()),
        show(v.get(v.len() / 2)),
        show(v.last())
    )
}
