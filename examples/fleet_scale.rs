//! The fleet at scale against the real lab (a bench binary: it prints
//! figures and asserts nothing; a phase that does not complete within its
//! limit shows as fewer than N lines). N lines, lab users 20000 and up
//! (100000 and up past 10,000 lines), go
//! through three phases on UDP, TCP or TLS (all lines share one flow per
//! SBC):
//!
//! 1. **start**: every line registers (digest, expires 20 s) on SBC 1, the
//!    top SRV route;
//! 2. **DNS move**: the zone drops SBC 1's SRV record; at the next refresh of
//!    the route set (TTL 3 s) every line learns its route is gone and
//!    registers on SBC 2 at once (the guide's sticky-route rule);
//! 3. **SBC 2 dies**: over UDP each line's next refresh (10 s after it
//!    registered) meets ICMP and fails over to SBC 3 at once; over TCP/TLS
//!    the connection's reset is a registration loss for every line, each
//!    backs off for its own random wait in [5, 10] s, then walks to SBC 3;
//! 4. **shutdown**: every line un-registers (`Expires: 0`).
//!
//! For each phase: when the first and the last line were through, the
//! median and 95th percentile per line, and the REGISTERs the SBCs received
//! (challenges and retransmissions included); then the resident memory the
//! fleet added per line. Run as root with the lab installed
//! (`scripts/lab-install`):
//!
//! ```sh
//! cargo run --release --example fleet_scale -- 5000        # UDP
//! cargo run --release --example fleet_scale -- 5000 tcp    # or tls
//! cargo run --release --example fleet_scale -- 5000 udp sipfleet.register.rate=0 sipfleet.register.window=0
//! ```
//!
//! Arguments after the transport are configuration lines (`key=value`)
//! added to the fleet's, e.g. the pacing keys. Each phase also prints the
//! UDP receive-buffer errors of the host (`RcvbufErrors` in
//! `/proc/net/snmp`: the SBCs' and the fleet's sockets together) during it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sipfleet::actors::events::{EventSink, LineEvent, LineEventBody};
use sipfleet::actors::fleet::{Fleet, FleetOptions};
use sipfleet::protocol::config::{parse_lines, ConfigBuilder, FleetConfig};
use sipfleet::protocol::registration::EventKind;
use sipfleet_lab::{password_for, srv_name, Lab, LabConfig, Mode, Record, SbcMemory, Transport};

const TTL_S: u32 = 3;
/// Lab users 20000-29999 for up to 10,000 lines, 100000-199999 above.
const FIRST_USER: u32 = 20_000;
const FIRST_USER_LARGE: u32 = 100_000;
const MAX_LINES: u32 = 100_000;

type Store = Arc<Mutex<Vec<LineEvent>>>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let lines: u32 = match args.next() {
        Some(n) => n.parse()?,
        None => 2000,
    };
    let (transport, setting) = match args.next().as_deref() {
        None | Some("udp") => (Transport::Udp, "UDPOnly"),
        Some("tcp") => (Transport::Tcp, "TCPOnly"),
        Some("tls") => (Transport::Tls, "TLS"),
        Some(other) => return Err(format!("transport {other:?}: udp, tcp or tls").into()),
    };
    let extra: Vec<String> = args.collect();
    if !(1..=MAX_LINES).contains(&lines) {
        return Err(format!(
            "LINES must be 1..={MAX_LINES} (lab users 20000-29999, 100000-199999)"
        )
        .into());
    }
    let lab = Lab::start(LabConfig {
        ttl: TTL_S,
        sbc_memory: SbcMemory::for_lines(lines),
        ..LabConfig::default()
    })?;
    let config = fleet_config(&lab, lines, setting, &extra)?;
    let store: Store = Arc::new(Mutex::new(Vec::new()));
    let options = FleetOptions {
        events: EventSink::Memory(store.clone()),
        log: slog::Logger::root(slog::Discard, slog::o!()),
        ca_file: Some(lab.ca_cert_path().to_path_buf()),
        dns_servers: Vec::new(),
        seed: None,
        user_agent: "sipfleet-scale".into(),
        sip_port: 0,
        trace: None,
    };
    println!(
        "{lines} lines, {setting}, lab of 3 Kamailio SBCs, DNS TTL {TTL_S} s; \
         sipfleet.register.rate={} window={} refreshSpread={}",
        config.pacing.rate.get(),
        config.pacing.window.get(),
        config.pacing.refresh_spread_pct.get()
    );
    let rss_before = rss_kib();
    actix::System::new().block_on(async {
        let start = Instant::now();
        let fleet = Fleet::start(&config, options)?;
        let on = |sbc: usize| {
            let addr = lab.sbc(sbc).addr(transport);
            move |e: &LineEvent| registered_at(e) == Some(addr)
        };
        let limit = Duration::from_secs(120);

        let phase = Phase { store: &store, lines, fleet: &fleet };
        phase.run("start: registered on SBC 1", start, limit, on(1)).await;
        let rss_after = rss_kib();

        let moved_at = Instant::now();
        drop_srv(&lab, 1, transport)?;
        phase.run("DNS move: registered on SBC 2", moved_at, limit, on(2)).await;

        let died_at = Instant::now();
        lab.set_mode(2, Mode::Dead)?;
        phase.run("SBC 2 dies: registered on SBC 3", died_at, limit, on(3)).await;

        let stop_at = Instant::now();
        let errors = rcvbuf_errors();
        fleet.shutdown(Duration::from_secs(60)).await;
        // The un-REGISTERs are paced too: a big fleet takes lines / rate
        // seconds, so wait past the shutdown itself.
        let gone = wait_all(&store, lines, stop_at, stop_at.elapsed() + Duration::from_secs(5), |e| {
            e.event.name() == "unregistered"
        })
        .await;
        report("shutdown: un-registered", &gone, lines);
        print_rcvbuf_errors(errors);

        for (i, name) in [(1, "SBC 1"), (2, "SBC 2"), (3, "SBC 3")] {
            let registers = lab
                .received(i)?
                .iter()
                .filter(|r| r.method == "REGISTER")
                .count();
            println!(
                "{name} received {registers} REGISTERs ({:.2} per line)",
                registers as f64 / f64::from(lines)
            );
        }
        let kinds = event_counts(&store);
        println!("events: {kinds}");
        if let (Some(before), Some(after)) = (rss_before, rss_after) {
            println!(
                "resident memory: {before} KiB before the fleet, {after} KiB with every line registered: {:.1} KiB per line",
                after.saturating_sub(before) as f64 / f64::from(lines)
            );
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}

/// One phase of the run: the lines, where their events land, the fleet.
struct Phase<'a> {
    store: &'a Store,
    lines: u32,
    fleet: &'a Fleet,
}

impl Phase<'_> {
    /// Waits (at most `limit`) until every line had an event `pred`
    /// accepts after `since`, reports the times, then where every line's
    /// status says it is.
    async fn run(
        &self,
        name: &str,
        since: Instant,
        limit: Duration,
        pred: impl Fn(&LineEvent) -> bool,
    ) {
        let errors = rcvbuf_errors();
        let done = wait_all(self.store, self.lines, since, limit, pred).await;
        report(name, &done, self.lines);
        println!("  where the lines are: {}", whereabouts(self.fleet).await);
        print_rcvbuf_errors(errors);
    }
}

/// `reg.1` .. `reg.N` as lab users 20000.., one SRV-resolved server over
/// `transport` (`UDPOnly`, `TCPOnly`, `TLS`).
fn fleet_config(
    lab: &Lab,
    lines: u32,
    transport: &str,
    extra: &[String],
) -> Result<FleetConfig, Box<dyn std::error::Error>> {
    let mut text = String::new();
    let first = if lines <= 10_000 {
        FIRST_USER
    } else {
        FIRST_USER_LARGE
    };
    for n in 1..=lines {
        let user = (first + n - 1).to_string();
        text.push_str(&format!(
            "reg.{n}.address=\"{user}\"\nreg.{n}.auth.password=\"{}\"\n",
            password_for(&user)
        ));
    }
    text.push_str(&format!(
        "voIpProt.server.1.address=\"{}\"\nvoIpProt.server.1.port=\"0\"\n\
         voIpProt.server.1.transport=\"{transport}\"\nvoIpProt.server.1.expires=\"20\"\n\
         voIpProt.server.1.registerRetry.baseTimeOut=\"10\"\ntcpIpApp.dns.server=\"{}\"\n",
        lab.domain(),
        lab.dns_addr()
    ));
    for line in extra {
        text.push_str(line);
        text.push('\n');
    }
    let mut builder = ConfigBuilder::new();
    builder.add_source(parse_lines(&text, "fleet_scale.cfg"));
    builder.build().map_err(|e| e.to_string().into())
}

/// The SBC a `registered` event names, if it is one.
fn registered_at(e: &LineEvent) -> Option<std::net::SocketAddr> {
    match &e.event {
        LineEventBody::Registration(r) if matches!(r.kind, EventKind::Registered { .. }) => {
            r.route.as_ref().map(|route| route.addr)
        }
        _ => None,
    }
}

/// Waits until every line has an event after `since` that `pred` accepts
/// (or `timeout`); returns each line's first such time since `since`.
async fn wait_all(
    store: &Store,
    lines: u32,
    since: Instant,
    timeout: Duration,
    pred: impl Fn(&LineEvent) -> bool,
) -> HashMap<u32, Duration> {
    let mut done: HashMap<u32, Duration> = HashMap::new();
    let mut seen = 0;
    while done.len() < lines as usize && since.elapsed() < timeout {
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Only the new events, under the lock: the fleet's actors run on
        // this same thread, and copying the whole store would starve them.
        let Ok(events) = store.lock() else {
            break;
        };
        for e in events.iter().skip(seen) {
            if e.at >= since && pred(e) {
                done.entry(e.line)
                    .or_insert_with(|| e.at.saturating_duration_since(since));
            }
        }
        seen = events.len();
    }
    done
}

fn report(phase: &str, done: &HashMap<u32, Duration>, lines: u32) {
    let mut times: Vec<Duration> = done.values().copied().collect();
    times.sort();
    let ms = |d: Option<&Duration>| d.map_or("-".to_string(), |d| format!("{} ms", d.as_millis()));
    let pct = |p: usize| times.get((times.len() * p / 100).min(times.len().saturating_sub(1)));
    println!(
        "{phase}: {} of {lines} lines; first {}, median {}, p95 {}, last {}",
        times.len(),
        ms(times.first()),
        ms(pct(50)),
        ms(pct(95)),
        ms(times.last()),
    );
}

/// Removes SBC `sbc`'s SRV record for `transport` from the lab's zone.
fn drop_srv(lab: &Lab, sbc: usize, transport: Transport) -> Result<(), Box<dyn std::error::Error>> {
    let name = srv_name(transport, lab.domain());
    let target = lab.sbc(sbc).host_name().to_string();
    lab.dns().update(|z| {
        z.remove(
            |r| matches!(r, Record::Srv { name: n, target: t, .. } if *n == name && *t == target),
        );
    })?;
    Ok(())
}

fn event_counts(store: &Store) -> String {
    let Ok(events) = store.lock() else {
        return String::new();
    };
    let names = events.iter().map(|e| match &e.event {
        LineEventBody::Registration(r) => match (&r.kind, &r.route) {
            (EventKind::RouteFailed { reason, .. }, Some(route)) => {
                format!("route_failed({} at {})", reason.as_str(), route.host)
            }
            _ => e.event.name().to_string(),
        },
        _ => e.event.name().to_string(),
    });
    tally(names)
        .iter()
        .map(|(n, c)| format!("{n} {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How often each value occurs, in order of first appearance.
fn tally(values: impl Iterator<Item = String>) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for value in values {
        match counts.iter_mut().find(|(v, _)| *v == value) {
            Some((_, n)) => *n += 1,
            None => counts.push((value, 1)),
        }
    }
    counts
}

/// How many lines each SBC holds right now (from every line's status).
async fn whereabouts(fleet: &Fleet) -> String {
    let hosts = fleet.status().await.into_iter().map(|status| {
        status
            .registered_route
            .map_or_else(|| "not registered".to_string(), |r| r.host)
    });
    tally(hosts)
        .iter()
        .map(|(h, n)| format!("{n} on {h}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// This process's resident set (VmRSS), KiB.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The host's UDP `RcvbufErrors` (`/proc/net/snmp`): datagrams dropped
/// because a socket's receive buffer was full.
fn rcvbuf_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let names = udp.next()?.split_whitespace();
    let values = udp.next()?.split_whitespace();
    names
        .zip(values)
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
}

fn print_rcvbuf_errors(before: Option<u64>) {
    if let (Some(before), Some(after)) = (before, rcvbuf_errors()) {
        println!(
            "  UDP receive-buffer errors: {}",
            after.saturating_sub(before)
        );
    }
}
