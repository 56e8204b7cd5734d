//! Shared harness of the end-to-end tests (`tests/e2e_*.rs`): a real fleet
//! configured from Poly `key="value"` text against a real lab (Kamailio SBCs,
//! dnsmasq), with
//! - its events exactly as `sipfleet run --events json` prints them
//!   ([`event_json`]), and
//! - what each SBC received (the lab's observation log),
//!
//! both on one time axis: milliseconds since the fleet was started.
//!
//! Everything runs in real time (the lab's servers do), so every wait is
//! bounded and every timing assertion has an explicit tolerance.
//!
//! A test describes what differs from the standard set-up and runs its
//! story against the fleet:
//!
//! ```ignore
//! let mut h = scenario!().mode(1, Mode::Dead).line("1001").start();
//! h.run(async |h, fleet| {
//!     h.first_registration_on(2).await;
//!     fleet.shutdown(Duration::from_secs(3)).await;
//! });
//! h.finish();
//! ```

// Each test file uses a different part of the harness.
#![allow(dead_code)]

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use sipfleet::actors::events::{event_json, EventSink, LineEvent};
use sipfleet::actors::fleet::{Fleet, FleetOptions};
use sipfleet::protocol::config::{parse_lines, ConfigBuilder, FleetConfig};
use sipfleet_lab::{password_for, Lab, LabConfig, Mode};

/// The fleet's slog records on stderr when `SIPFLEET_LOG` names a level
/// (`debug`, `info`, ...), as `sipfleet run` does; otherwise discarded.
/// For reading what the fleet did in a failing test.
fn test_logger() -> slog::Logger {
    use slog::Drain;
    let level = match std::env::var("SIPFLEET_LOG").as_deref() {
        Ok("trace") => slog::Level::Trace,
        Ok("debug") => slog::Level::Debug,
        Ok("info") => slog::Level::Info,
        Ok("warning") | Ok("warn") => slog::Level::Warning,
        Ok("error") => slog::Level::Error,
        _ => return slog::Logger::root(slog::Discard, slog::o!()),
    };
    let decorator = slog_term::PlainSyncDecorator::new(std::io::stderr());
    let drain = slog_term::FullFormat::new(decorator).build().fuse();
    slog::Logger::root(drain.filter_level(level).fuse(), slog::o!())
}

/// Serialises the scenarios of one test binary: the machine has two cores,
/// and three Kamailio instances per lab plus a fleet per test make parallel
/// labs compete for them (and with them the timing assertions).
static TIMING: Mutex<()> = Mutex::new(());

/// The name of the enclosing function, from the type name of a function
/// item declared inside it (`e2e_calls::auto_answer::f` -> `auto_answer`),
/// so that a test never spells its own name.
macro_rules! test_name {
    () => {{
        fn f() {}
        let path = std::any::type_name_of_val(&f);
        let path = path.strip_suffix("::f").unwrap_or(path);
        path.rsplit("::").next().unwrap_or(path)
    }};
}

/// A [`Scenario`] named after the enclosing test function.
macro_rules! scenario {
    () => {
        $crate::e2e_support::Scenario::new($crate::e2e_support::test_name!())
    };
}

pub(crate) use {scenario, test_name};

/// What one end-to-end test sets up before its fleet starts: a lab, the
/// modes of its SBCs, and the fleet's configuration ([`config_text`]: one
/// line per [`Scenario::line`], the lab's domain over `UDPOnly` unless
/// [`Scenario::transport`] says otherwise, then [`Scenario::config`]).
/// Written with [`scenario!`], which names it after the test.
#[must_use]
pub struct Scenario {
    name: String,
    lab: LabConfig,
    modes: Vec<(usize, Mode)>,
    users: Vec<String>,
    transport: String,
    extra: Vec<LabText>,
    options: Option<AdjustOptions>,
    timed: bool,
}

/// Configuration text that may name something of the running lab.
type LabText = Box<dyn FnOnce(&Lab) -> String>;

/// A change to the fleet's options.
type AdjustOptions = Box<dyn FnOnce(&mut FleetOptions)>;

impl Scenario {
    /// The standard lab (three SBCs, SRV priorities 10/20/30, TTL 5 s),
    /// every SBC answering, no line yet.
    pub fn new(name: &str) -> Scenario {
        Scenario {
            name: name.to_string(),
            lab: LabConfig::default(),
            modes: Vec::new(),
            users: Vec::new(),
            transport: "UDPOnly".into(),
            extra: Vec::new(),
            options: None,
            timed: true,
        }
    }

    /// Another lab (`LabConfig::mixed_transport()`, ...).
    pub fn lab(mut self, lab: LabConfig) -> Scenario {
        self.lab = lab;
        self
    }

    /// The TTL of every DNS answer, seconds.
    pub fn ttl(mut self, seconds: u32) -> Scenario {
        self.lab.ttl = seconds;
        self
    }

    /// SBC `i` is in `mode` when the fleet starts.
    pub fn mode(mut self, i: usize, mode: Mode) -> Scenario {
        self.modes.push((i, mode));
        self
    }

    /// One more line (`reg.N`), for lab user `user`.
    pub fn line(mut self, user: &str) -> Scenario {
        self.users.push(user.to_string());
        self
    }

    /// The transport of server 1 (`UDPOnly`, `TCPOnly`, `TLS`, `DNSnaptr`).
    pub fn transport(mut self, transport: &str) -> Scenario {
        self.transport = transport.to_string();
        self
    }

    /// Configuration lines after the generated ones (which they override).
    pub fn config(self, text: impl Into<String>) -> Scenario {
        let text = text.into();
        self.config_with(move |_| text)
    }

    /// Configuration lines that name something of the running lab.
    pub fn config_with(mut self, text: impl FnOnce(&Lab) -> String + 'static) -> Scenario {
        self.extra.push(Box::new(text));
        self
    }

    /// Adjusts the fleet's options (a seed, no CA, a logger of the test).
    pub fn options(mut self, adjust: impl FnOnce(&mut FleetOptions) + 'static) -> Scenario {
        self.options = Some(Box::new(adjust));
        self
    }

    /// Runs without the timing lock, beside the other scenarios of its
    /// binary: for long, mostly idle runs, which then overlap the serialised
    /// ones instead of adding their length to the binary's run.
    pub fn concurrent(mut self) -> Scenario {
        self.timed = false;
        self
    }

    /// Takes the timing lock (unless [`Scenario::concurrent`]; before the
    /// lab's servers start: they compete for the cores too), starts the lab, sets the SBCs' modes and builds
    /// the configuration. The fleet starts in [`Started::run`].
    pub fn start(self) -> Started {
        let timing = self
            .timed
            .then(|| TIMING.lock().unwrap_or_else(|e| e.into_inner()));
        let lab =
            Arc::new(Lab::start(self.lab).expect("lab starts (run scripts/lab-install once)"));
        for (i, mode) in self.modes {
            if let Err(e) = lab.set_mode(i, mode) {
                panic!("SBC {i} -> {mode}: {e}");
            }
        }
        let extra: String = self.extra.into_iter().map(|text| text(&lab)).collect();
        let users: Vec<&str> = self.users.iter().map(String::as_str).collect();
        let cfg = config(&lab, &users, &self.transport, &extra);
        Started {
            harness: Harness::new(&lab, self.name),
            cfg,
            options: self.options,
            _timing: timing,
        }
    }
}

/// A scenario whose lab runs: its harness (through `Deref`) and the
/// configuration its fleet starts with. Holds the timing lock (if it took
/// it) until dropped.
pub struct Started {
    harness: Harness,
    cfg: FleetConfig,
    options: Option<AdjustOptions>,
    _timing: Option<MutexGuard<'static, ()>>,
}

impl std::ops::Deref for Started {
    type Target = Harness;
    fn deref(&self) -> &Harness {
        &self.harness
    }
}

impl Started {
    /// Starts the fleet in an actix system of its own (time 0 of the
    /// harness) and runs `body` with it until `body` returns; the body
    /// shuts the fleet down, with the timeout its story needs.
    pub fn run<T>(&mut self, body: impl AsyncFnOnce(&Harness, Fleet) -> T) -> T {
        let adjust = self.options.take().unwrap_or_else(|| Box::new(|_| {}));
        let (h, cfg) = (&mut self.harness, &self.cfg);
        actix::System::new().block_on(async move {
            let fleet = h.start_with(cfg, adjust);
            body(h, fleet).await
        })
    }

    /// Runs the fleet until the first event of kind `name` (panics after
    /// `timeout`), shuts it down and returns that event.
    pub fn run_until_first(&mut self, name: &'static str, timeout: Duration) -> Value {
        self.run(async |h, fleet| {
            let event = h.wait_event(name, timeout, |e| kind(e) == name).await;
            fleet.shutdown(Duration::from_secs(1)).await;
            event
        })
    }
}

/// The configuration text for `users` (lab users, one `reg.N` each) against
/// the lab's domain over `transport` (`UDPOnly`, `TCPOnly`, `TLS`), port 0
/// (NAPTR/SRV), with the lab's DNS server, followed by `extra` lines (which
/// override anything above).
pub fn config_text(lab: &Lab, users: &[&str], transport: &str, extra: &str) -> String {
    let mut text = String::new();
    for (i, user) in users.iter().enumerate() {
        let n = i + 1;
        text.push_str(&format!(
            "reg.{n}.address=\"{user}\"\nreg.{n}.auth.password=\"{}\"\n",
            password_for(user)
        ));
    }
    text.push_str(&format!(
        "voIpProt.server.1.address=\"{}\"\n\
         voIpProt.server.1.port=\"0\"\n\
         voIpProt.server.1.transport=\"{transport}\"\n\
         tcpIpApp.dns.server=\"{}\"\n",
        lab.domain(),
        lab.dns_addr()
    ));
    text.push_str(extra);
    text
}

/// Parses and validates a configuration text, as `sipfleet run` would.
pub fn config(lab: &Lab, users: &[&str], transport: &str, extra: &str) -> FleetConfig {
    let text = config_text(lab, users, transport, extra);
    let mut b = ConfigBuilder::new();
    b.add_source(parse_lines(&text, "e2e.cfg"));
    match b.build() {
        Ok(cfg) => cfg,
        Err(e) => panic!("bad test configuration:\n{text}\n{e}"),
    }
}

/// One request an SBC received, on the harness's time axis.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Milliseconds since the fleet started (SBC wall clock).
    pub t_ms: i64,
    pub method: String,
    pub user: Option<String>,
    pub call_id: String,
    pub expires: Option<u32>,
    pub transport: sipfleet_lab::Transport,
}

/// The event store and the time origin of one fleet run.
pub struct Harness {
    pub lab: Arc<Lab>,
    /// The test's name, for [`Harness::finish`].
    pub name: String,
    start: Instant,
    start_wall: SystemTime,
    store: Arc<Mutex<Vec<LineEvent>>>,
}

impl Harness {
    pub fn new(lab: &Arc<Lab>, name: impl Into<String>) -> Self {
        Harness {
            lab: lab.clone(),
            name: name.into(),
            start: Instant::now(),
            start_wall: SystemTime::now(),
            store: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Fleet options: events into this harness, the lab's CA trusted.
    pub fn options(&self) -> FleetOptions {
        FleetOptions {
            events: EventSink::Memory(self.store.clone()),
            log: test_logger(),
            ca_file: Some(self.lab.ca_cert_path().to_path_buf()),
            dns_servers: Vec::new(),
            seed: None,
            user_agent: "sipfleet-e2e".into(),
            sip_port: 0,
            trace: None,
        }
    }

    /// Starts the fleet; time 0 of the harness is now. Must run inside an
    /// actix system.
    pub fn start(&mut self, cfg: &FleetConfig) -> Fleet {
        self.start_with(cfg, |_| {})
    }

    /// Starts the fleet with options adjusted by `adjust` (a seed, ...).
    fn start_with(&mut self, cfg: &FleetConfig, adjust: impl FnOnce(&mut FleetOptions)) -> Fleet {
        self.start = Instant::now();
        self.start_wall = SystemTime::now();
        let mut options = self.options();
        adjust(&mut options);
        Fleet::start(cfg, options).expect("fleet starts")
    }

    /// Milliseconds since the fleet started.
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Every event so far, as `sipfleet run --events json` prints it.
    pub fn events(&self) -> Vec<Value> {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        store.iter().map(|e| event_json(e, self.start)).collect()
    }

    /// The SBC (1-based) an event's route points at.
    pub fn sbc_of(&self, ev: &Value) -> Option<usize> {
        self.sbc_of_route(&ev["route"])
    }

    /// The SBC (1-based) a route object (`route`, `from`) points at.
    pub fn sbc_of_route(&self, route: &Value) -> Option<usize> {
        let addr: std::net::SocketAddr = route["address"].as_str()?.parse().ok()?;
        self.sbc_at(addr.ip())
    }

    /// The SBC (1-based) at `ip`.
    pub fn sbc_at(&self, ip: IpAddr) -> Option<usize> {
        self.lab
            .sbcs()
            .iter()
            .position(|s| IpAddr::V4(s.ip()) == ip)
            .map(|i| i + 1)
    }

    /// Waits until an event matches `pred` (looking at every event so far,
    /// the earliest match wins) and returns it; panics with the whole story
    /// after `timeout`.
    pub async fn wait_event(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(ev) = self.events().into_iter().find(|e| pred(e)) {
                return ev;
            }
            if Instant::now() >= deadline {
                panic!(
                    "no {what} within {timeout:?} (now {} ms)\n{}",
                    self.now_ms(),
                    self.story()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits (5 s at most) for the fleet's first `registered` event and
    /// checks that it names SBC `sbc`.
    pub async fn first_registration_on(&self, sbc: usize) -> Value {
        let registered = self
            .wait_event("registered", Duration::from_secs(5), |e| {
                kind(e) == "registered"
            })
            .await;
        assert_eq!(self.sbc_of(&registered), Some(sbc), "{}", self.story());
        registered
    }

    /// Waits until an event matches `pred` among the events after the first
    /// `skip` ones.
    pub async fn wait_event_after(
        &self,
        skip: usize,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(ev) = self.events().into_iter().skip(skip).find(|e| pred(e)) {
                return ev;
            }
            if Instant::now() >= deadline {
                panic!(
                    "no {what} within {timeout:?} (now {} ms)\n{}",
                    self.now_ms(),
                    self.story()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Runs `f` on the lab from another thread: lab changes (starting a
    /// Kamailio, restarting dnsmasq) block for a while, and the fleet runs on
    /// this one.
    pub async fn with_lab<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Lab) -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let lab = self.lab.clone();
        std::thread::spawn(move || {
            let _ = tx.send(f(&lab));
        });
        rx.await.expect("the lab thread finished")
    }

    /// Switches SBC `i` to `mode` (from another thread, see `with_lab`).
    pub async fn set_mode(&self, i: usize, mode: Mode) {
        if let Err(e) = self.with_lab(move |lab| lab.set_mode(i, mode)).await {
            panic!("SBC {i} -> {mode}: {e}");
        }
    }

    /// Sleeps on the runtime (the fleet keeps running).
    pub async fn sleep_ms(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// Sleeps until `ms` after the fleet started.
    pub async fn sleep_until_ms(&self, ms: u64) {
        let now = self.now_ms();
        if ms > now {
            self.sleep_ms(ms - now).await;
        }
    }

    /// Requests SBC `i` received, on the harness's time axis.
    pub fn received(&self, i: usize) -> Vec<Seen> {
        self.lab
            .received(i)
            .expect("SBC log readable")
            .into_iter()
            .map(|o| Seen {
                t_ms: match o.t.duration_since(self.start_wall) {
                    Ok(d) => d.as_millis() as i64,
                    Err(e) => -(e.duration().as_millis() as i64),
                },
                method: o.method,
                user: o.from_user,
                call_id: o.call_id,
                expires: o.expires,
                transport: o.transport,
            })
            .collect()
    }

    /// REGISTERs SBC `i` received from `user` since the fleet started.
    pub fn registers(&self, i: usize, user: &str) -> Vec<Seen> {
        self.received(i)
            .into_iter()
            .filter(|s| s.method == "REGISTER" && s.user.as_deref() == Some(user) && s.t_ms >= 0)
            .collect()
    }

    /// Waits until SBC `i`'s REGISTERs from `user` satisfy `pred` (the SBC
    /// log is written asynchronously); panics after `timeout`.
    pub async fn wait_registers(
        &self,
        i: usize,
        user: &str,
        timeout: Duration,
        pred: impl Fn(&[Seen]) -> bool,
    ) -> Vec<Seen> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.registers(i, user);
            if pred(&seen) {
                return seen;
            }
            if Instant::now() >= deadline {
                panic!(
                    "SBC {i} REGISTERs from {user} never matched within {timeout:?}: {seen:#?}\n{}",
                    self.story()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Ends a test's run: checks every event against the documented JSON
    /// schema of `sipfleet run --events json` and that time never goes
    /// backwards, then prints the run (events and SBC logs) when
    /// `SIPFLEET_E2E_STORY=1`, for reading the whole timeline.
    pub fn finish(&self) {
        let test = &self.name;
        let evs = self.events();
        let mut last = 0;
        for ev in &evs {
            if let Err(e) = check_schema(ev) {
                panic!(
                    "{test}: event {ev} breaks the schema: {e}\n{}",
                    self.story()
                );
            }
            assert!(t_ms(ev) >= last, "{test}: time went backwards at {ev}");
            last = t_ms(ev);
        }
        if std::env::var("SIPFLEET_E2E_STORY").is_ok_and(|v| v == "1") {
            eprintln!("==== {test}\n{}", self.story());
        }
    }

    /// The run so far, for failure messages: every event and every request
    /// each SBC received.
    pub fn story(&self) -> String {
        let mut out = String::from("events:\n");
        for ev in self.events() {
            out.push_str(&format!("  {ev}\n"));
        }
        for i in 1..=self.lab.sbcs().len() {
            out.push_str(&format!("SBC {i} received:\n"));
            for s in self.received(i) {
                out.push_str(&format!(
                    "  {:>7} ms {} {} {} expires={:?} {}\n",
                    s.t_ms,
                    s.method,
                    s.user.as_deref().unwrap_or("-"),
                    s.call_id,
                    s.expires,
                    s.transport
                ));
            }
        }
        out
    }
}

/// The event's `event` field.
pub fn kind(ev: &Value) -> &str {
    ev["event"].as_str().unwrap_or("")
}

/// The event's `t_ms` field.
pub fn t_ms(ev: &Value) -> u64 {
    ev["t_ms"].as_u64().unwrap_or(u64::MAX)
}

/// Asserts `actual` is within `tolerance` of `expected` (milliseconds).
#[track_caller]
pub fn assert_near(what: &str, actual: i64, expected: i64, tolerance: i64, story: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: {actual} ms, expected {expected} ± {tolerance} ms\n{story}"
    );
}

/// A silent UDP server of the test's own: bound where a dead SBC listened,
/// it reads every datagram, stamps it on arrival and never answers. A
/// SIGSTOPped Kamailio (the lab's `silent` mode) only logs what it read once
/// it is continued, so its timestamps cannot show retransmission intervals;
/// this socket's can.
pub struct BlackHole {
    seen: Arc<Mutex<Vec<(Instant, String)>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BlackHole {
    pub fn bind(addr: std::net::SocketAddr) -> BlackHole {
        let socket = std::net::UdpSocket::bind(addr).expect("bind the black hole");
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("read timeout");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok((n, _)) = socket.recv_from(&mut buf) {
                    let at = Instant::now();
                    let text = String::from_utf8_lossy(&buf[..n]);
                    if text.starts_with("REGISTER ") {
                        let call_id = header(&text, &["call-id", "i"]).unwrap_or_default();
                        seen2
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((at, call_id));
                    }
                }
            }
        });
        BlackHole {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// The REGISTERs read so far: arrival time and Call-ID.
    pub fn seen(&self) -> Vec<(Instant, String)> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The value of the first header named one of `names` (case-insensitive).
fn header(text: &str, names: &[&str]) -> Option<String> {
    text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        names
            .iter()
            .any(|n| name.trim().eq_ignore_ascii_case(n))
            .then(|| value.trim().to_string())
    })
}

impl Harness {
    /// `at` on the harness's time axis, in milliseconds.
    pub fn ms_of(&self, at: Instant) -> i64 {
        match at.checked_duration_since(self.start) {
            Some(d) => d.as_millis() as i64,
            None => -(self.start.duration_since(at).as_millis() as i64),
        }
    }
}

/// Checks one event against the README's schema: the common fields
/// (`t_ms`, `line`, `event`, `route`, `call_id`) and the fields of its kind.
pub fn check_schema(ev: &Value) -> Result<(), String> {
    fn route(v: &Value) -> Result<(), String> {
        let t = v["transport"].as_str().ok_or("route.transport")?;
        if !matches!(t, "udp" | "tcp" | "tls") {
            return Err(format!("route.transport {t}"));
        }
        v["host"].as_str().ok_or("route.host")?;
        v["address"]
            .as_str()
            .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
            .ok_or("route.address")?;
        Ok(())
    }
    fn one_of(v: &Value, field: &str, allowed: &[&str]) -> Result<(), String> {
        match v[field].as_str() {
            Some(s) if allowed.contains(&s) => Ok(()),
            other => Err(format!("{field} = {other:?}")),
        }
    }
    let obj = ev.as_object().ok_or("not an object")?;
    ev["t_ms"].as_u64().ok_or("t_ms")?;
    ev["line"].as_u64().ok_or("line")?;
    match ev["call_id"].as_str() {
        Some(c) if !c.is_empty() => {}
        _ => return Err("call_id".into()),
    }
    match &ev["route"] {
        Value::Null => {}
        r => route(r)?,
    }
    let common = ["t_ms", "line", "event", "route", "call_id"];
    let extra: &[&str] = match kind(ev) {
        "registering" => {
            ev["cseq"].as_u64().ok_or("cseq")?;
            ev["expires"].as_u64().ok_or("expires")?;
            one_of(
                ev,
                "purpose",
                &[
                    "initial",
                    "refresh",
                    "failover",
                    "failback",
                    "authenticate",
                    "min_expires",
                    "unregister",
                ],
            )?;
            &["cseq", "expires", "purpose"]
        }
        "registered" => {
            ev["expires"].as_u64().ok_or("expires")?;
            ev["primary"].as_bool().ok_or("primary")?;
            &["expires", "primary"]
        }
        "route_failed" => {
            one_of(
                ev,
                "reason",
                &[
                    "icmp",
                    "refused",
                    "tls",
                    "timeout",
                    "503",
                    "flow_lost",
                    "keepalive_lost",
                    "dns_removed",
                ],
            )?;
            // `detail`: the TLS verification error, on `tls` only.
            match (&ev["reason"], &ev["detail"]) {
                (r, Value::String(d)) if r == "tls" && !d.is_empty() => {}
                (r, Value::Null) if r != "tls" => {}
                (r, d) => return Err(format!("reason {r} with detail {d}")),
            }
            &["reason", "detail"]
        }
        "failover" | "failback" => {
            route(&ev["from"])?;
            &["from"]
        }
        "backoff" => {
            ev["wait_ms"].as_u64().ok_or("wait_ms")?;
            ev["failures"].as_u64().ok_or("failures")?;
            &["wait_ms", "failures"]
        }
        "unregistered" => {
            one_of(
                ev,
                "reason",
                &[
                    "failover_started",
                    "rejected",
                    "flow_lost",
                    "keepalive_lost",
                    "expired",
                    "failback",
                    "shutdown",
                    "unregister_unconfirmed",
                ],
            )?;
            &["reason"]
        }
        "registration_failed" => {
            if !(ev["status"].is_null() || ev["status"].is_u64()) {
                return Err("status".into());
            }
            one_of(
                ev,
                "reason",
                &[
                    "routes_exhausted",
                    "denied",
                    "credentials_rejected",
                    "unsupported_challenge",
                    "stale_nonce_loop",
                    "interval_too_brief",
                    "zero_expires",
                    "binding_missing",
                    "request_not_built",
                ],
            )?;
            &["status", "reason"]
        }
        "subscriptions_invalidated" => {
            one_of(
                ev,
                "reason",
                &["failover_started", "new_registrar", "unregistered"],
            )?;
            &["reason"]
        }
        "failback_held" => {
            one_of(ev, "reason", &["call_active", "request_in_flight"])?;
            &["reason"]
        }
        "dns_failed" | "dns_restored" => {
            ev["name"].as_str().ok_or("name")?;
            one_of(ev, "query_type", &["NAPTR", "SRV", "A", "routes"])?;
            ev["error"].as_str().ok_or("error")?;
            if kind(ev) == "dns_restored" {
                ev["ttl_ms"].as_u64().ok_or("ttl_ms")?;
                &["name", "query_type", "error", "ttl_ms"]
            } else {
                &["name", "query_type", "error"]
            }
        }
        other => return Err(format!("unknown event {other:?}")),
    };
    if ev["route"].is_null() && !matches!(kind(ev), "backoff" | "dns_failed" | "dns_restored") {
        return Err("route is null outside a back-off".into());
    }
    for key in obj.keys() {
        if !common.contains(&key.as_str()) && !extra.contains(&key.as_str()) {
            return Err(format!("unexpected field {key}"));
        }
    }
    Ok(())
}

/// Checks one event against the README's schema, call, subscription and
/// line-seize events included (registration events as [`check_schema`]).
pub fn check_schema_with_calls(ev: &Value) -> Result<(), String> {
    fn null_or_u64(ev: &Value, f: &str) -> Result<(), String> {
        if ev[f].is_null() || ev[f].is_u64() {
            Ok(())
        } else {
            Err(format!("{f} = {}", ev[f]))
        }
    }
    let fields: &[&str] = match kind(ev) {
        "call_started" => {
            match ev["direction"].as_str() {
                Some("incoming" | "outgoing") => {}
                other => return Err(format!("direction {other:?}")),
            }
            ev["remote"].as_str().ok_or("remote")?;
            &["direction", "remote"]
        }
        "call_ringing" | "call_answered" => &[],
        "call_established" => {
            if !(ev["remote_rtp"].is_null() || ev["remote_rtp"].is_string()) {
                return Err("remote_rtp".into());
            }
            &["remote_rtp"]
        }
        "call_held" | "call_resumed" => {
            ev["by_remote"].as_bool().ok_or("by_remote")?;
            &["by_remote"]
        }
        "call_reinvite_failed" => {
            ev["status"].as_u64().ok_or("status")?;
            &["status"]
        }
        "call_route_failed" => {
            ev["budget_over"].as_bool().ok_or("budget_over")?;
            &["budget_over"]
        }
        "call_ended" => {
            ev["reason"].as_str().ok_or("reason")?;
            null_or_u64(ev, "status")?;
            &["reason", "status"]
        }
        "subscribed" | "subscription_refreshed" => {
            ev["expires"].as_u64().ok_or("expires")?;
            &["package", "expires"]
        }
        "subscription_invalidated" => {
            ev["reason"].as_str().ok_or("reason")?;
            &["package", "reason"]
        }
        "subscription_terminated" => {
            ev["reason"].as_str().ok_or("reason")?;
            null_or_u64(ev, "retry_in_ms")?;
            &["package", "reason", "retry_in_ms"]
        }
        "subscription_failed" => {
            null_or_u64(ev, "status")?;
            ev["retry_in_ms"].as_u64().ok_or("retry_in_ms")?;
            &["package", "status", "retry_in_ms"]
        }
        "subscription_notify" => {
            ev["state"].as_str().ok_or("state")?;
            ev["body"].as_str().ok_or("body")?;
            &["package", "state", "content_type", "body"]
        }
        "line_seized" | "line_seize_failed" => {
            ev["outcome"].as_str().ok_or("outcome")?;
            null_or_u64(ev, "status")?;
            &["outcome", "status"]
        }
        "resource_exhausted" => {
            if ev["resource"] != "sockets" {
                return Err(format!("resource {}", ev["resource"]));
            }
            ev["max"].as_u64().ok_or("max")?;
            ev["open"].as_u64().ok_or("open")?;
            match ev["refused"].as_str() {
                Some("incoming_call" | "outgoing_call") => {}
                other => return Err(format!("refused {other:?}")),
            }
            ev["error"].as_str().ok_or("error")?;
            &["resource", "max", "open", "refused", "error"]
        }
        _ => return check_schema(ev),
    };
    if fields.contains(&"package") {
        match ev["package"].as_str() {
            Some("dialog" | "message-summary" | "call-info" | "line-seize") => {}
            other => return Err(format!("package {other:?}")),
        }
    }
    let common = ["t_ms", "line", "event", "route", "call_id"];
    for key in ev.as_object().ok_or("not an object")?.keys() {
        if !common.contains(&key.as_str()) && !fields.contains(&key.as_str()) {
            return Err(format!("unexpected field {key}"));
        }
    }
    ev["t_ms"].as_u64().ok_or("t_ms")?;
    ev["line"].as_u64().ok_or("line")?;
    ev["call_id"].as_str().ok_or("call_id")?;
    Ok(())
}

impl Harness {
    /// [`Harness::finish`] for runs with calls and subscriptions.
    pub fn finish_with_calls(&self) {
        let test = &self.name;
        let evs = self.events();
        let mut last = 0;
        for ev in &evs {
            if let Err(e) = check_schema_with_calls(ev) {
                panic!(
                    "{test}: event {ev} breaks the schema: {e}\n{}",
                    self.story()
                );
            }
            assert!(t_ms(ev) >= last, "{test}: time went backwards at {ev}");
            last = t_ms(ev);
        }
        if std::env::var("SIPFLEET_E2E_STORY").is_ok_and(|v| v == "1") {
            eprintln!("==== {test}\n{}", self.story());
        }
    }

    /// Requests with `call_id` SBC `i` received, methods in order.
    pub fn methods_for(&self, i: usize, call_id: &str) -> Vec<String> {
        self.received(i)
            .into_iter()
            .filter(|s| s.call_id == call_id)
            .map(|s| s.method)
            .collect()
    }

    /// Waits until SBC `i` received requests with `call_id` whose methods
    /// satisfy `pred`; panics after `timeout`.
    pub async fn wait_methods(
        &self,
        i: usize,
        call_id: &str,
        timeout: Duration,
        pred: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.methods_for(i, call_id);
            if pred(&seen) {
                return seen;
            }
            if Instant::now() >= deadline {
                panic!(
                    "SBC {i} never saw the expected requests of {call_id} within {timeout:?}: {seen:?}\n{}",
                    self.story()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
