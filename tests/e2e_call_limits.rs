//! End to end against the lab: an INVITE flood through the registrar's
//! flow cannot exhaust the process (issue 13). A raw UDP caller sends
//! INVITEs to SBC 1 for a line of the fleet; Kamailio relays them over the
//! line's registration. Above `callsPerLineKey` (24) they get 486, ringing
//! calls hold no socket (the process's open file descriptors stay where
//! they were), unanswered calls get 480 at `sipfleet.call.ringTimeout`, and
//! `sipfleet.sockets.max` refuses calls it cannot give a media port with
//! 503 and a `resource_exhausted` event.

mod e2e_support;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use e2e_support::{kind, scenario};
use sipfleet::actors::line::{CallCommandError, PlaceCall};
use sipfleet_lab::{Lab, Transport as LabTransport};

/// Open file descriptors of this process.
fn open_fds() -> usize {
    match std::fs::read_dir("/proc/self/fd") {
        Ok(d) => d.count(),
        Err(e) => panic!("/proc/self/fd not readable (a full fd table says EMFILE): {e}"),
    }
}

/// A caller outside the fleet, sending INVITEs to an SBC as any SIP phone
/// would, and reading the final (and 180) answers it gets back.
struct Caller {
    socket: UdpSocket,
    sbc: SocketAddr,
    domain: String,
    /// Last status seen per Call-ID, and whether a 180 came.
    statuses: HashMap<String, Vec<u16>>,
}

impl Caller {
    fn new(lab: &Lab) -> Caller {
        let socket = UdpSocket::bind((lab.client_ip(), 0)).expect("bind the caller");
        socket.set_nonblocking(true).expect("nonblocking");
        Caller {
            socket,
            sbc: lab.sbc(1).addr(LabTransport::Udp),
            domain: lab.domain().to_string(),
            statuses: HashMap::new(),
        }
    }

    fn invite(&self, user: &str, n: usize) -> String {
        let me = self.socket.local_addr().expect("local address");
        let sdp = format!(
            "v=0\r\no=flood {n} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
            ip = me.ip(),
            port = 20000 + 2 * n,
        );
        let call_id = format!("flood-{n}-{}@{}", me.port(), me.ip());
        let invite = format!(
            "INVITE sip:{user}@{d} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch=z9hG4bKflood{n}x{p}\r\n\
             From: <sip:flood@{d}>;tag=flood{n}\r\n\
             To: <sip:{user}@{d}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:flood@{me}>\r\n\
             Max-Forwards: 70\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {len}\r\n\r\n{sdp}",
            d = self.domain,
            p = me.port(),
            len = sdp.len(),
        );
        self.socket
            .send_to(invite.as_bytes(), self.sbc)
            .expect("send INVITE");
        call_id
    }

    /// Reads every answer waiting on the socket.
    fn read(&mut self) {
        let mut buf = [0u8; 4096];
        while let Ok((n, _)) = self.socket.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            let Some(status) = text
                .strip_prefix("SIP/2.0 ")
                .and_then(|r| r.get(..3))
                .and_then(|s| s.parse::<u16>().ok())
            else {
                continue;
            };
            let call_id = text
                .lines()
                .find_map(|l| l.strip_prefix("Call-ID: ").or(l.strip_prefix("i: ")))
                .unwrap_or_default()
                .trim()
                .to_string();
            self.statuses.entry(call_id).or_default().push(status);
        }
    }

    /// Call-IDs whose answers include `status`.
    fn with(&self, status: u16) -> usize {
        self.statuses
            .values()
            .filter(|s| s.contains(&status))
            .count()
    }

    /// Reads answers until `done` holds (or `within` is over).
    async fn wait(&mut self, within: Duration, done: impl Fn(&Caller) -> bool) {
        let end = tokio::time::Instant::now() + within;
        loop {
            self.read();
            if done(self) || tokio::time::Instant::now() >= end {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[test]
fn an_invite_flood_gets_486_above_the_line_limit_holds_no_sockets_and_rings_out_with_480() {
    let mut h = scenario!()
        .line("1001")
        .config("sipfleet.call.ringTimeout=\"4\"\n")
        .start();
    const FLOOD: usize = 60;
    let (before, after, ringing_fds) = h.run(async |h, fleet| {
        h.wait_event("registered", Duration::from_secs(5), |e| {
            kind(e) == "registered"
        })
        .await;
        let before = open_fds();
        let mut caller = Caller::new(&h.lab);
        let with_caller = open_fds();
        for n in 0..FLOOD {
            caller.invite("1001", n);
        }
        caller
            .wait(Duration::from_secs(5), |c| {
                c.with(486) + c.with(180) >= FLOOD
            })
            .await;
        let ringing_fds = open_fds() - with_caller;
        eprintln!(
            "open fds: {before} before the flood of {FLOOD} INVITEs, +{ringing_fds} after it \
             ({} ringing, {} refused with 486)",
            caller.with(180),
            caller.with(486)
        );
        assert_eq!(
            caller.with(180),
            24,
            "callsPerLineKey (default 24) calls ring: {:?}",
            caller.statuses
        );
        assert_eq!(caller.with(486), FLOOD - 24, "the rest get 486 Busy Here");
        let started: Vec<_> = h
            .events()
            .into_iter()
            .filter(|e| kind(e) == "call_started")
            .collect();
        assert_eq!(started.len(), 24, "no call is kept for a 486");
        // Unanswered: 480 at the ring timeout (4 s after each INVITE).
        caller
            .wait(Duration::from_secs(8), |c| c.with(480) >= 24)
            .await;
        assert_eq!(caller.with(480), 24, "{:?}", caller.statuses);
        let rang_out = h
            .events()
            .into_iter()
            .filter(|e| kind(e) == "call_ended" && e["reason"] == "ring_timeout")
            .count();
        assert_eq!(rang_out, 24);
        // The line takes calls again.
        caller.invite("1001", FLOOD + 1);
        caller
            .wait(Duration::from_secs(3), |c| c.with(180) >= 25)
            .await;
        assert_eq!(caller.with(180), 25);
        let after = open_fds() - (with_caller - before);
        fleet.shutdown(Duration::from_secs(3)).await;
        (before, after, ringing_fds)
    });
    eprintln!("open fds: {after} after the calls rang out");
    assert!(
        ringing_fds <= 4,
        "ringing calls bind no socket: +{ringing_fds} fds"
    );
    assert!(after <= before + 4, "fds {before} -> {after}");
    h.finish_with_calls();
}

#[test]
fn the_fleet_socket_ceiling_refuses_calls_with_503_and_an_event_and_other_lines_stay_up() {
    let mut h = scenario!()
        .line("1001")
        .line("1002")
        .config("reg.1.autoAnswer=\"1\"\nsipfleet.sockets.max=\"2\"\n")
        .start();
    let target = format!("sip:9001@{}", h.lab.domain());
    h.run(async |h, fleet| {
        for line in [1, 2] {
            h.wait_event("registered", Duration::from_secs(5), |e| {
                kind(e) == "registered" && e["line"] == line
            })
            .await;
        }
        let mut caller = Caller::new(&h.lab);
        for n in 0..4 {
            caller.invite("1001", n);
        }
        // The line answers 503; the SBC, a proxy, passes it on as 500
        // (RFC 3261 16.7: a 503 is not forwarded upstream).
        caller
            .wait(Duration::from_secs(5), |c| c.with(200) + c.with(500) >= 4)
            .await;
        assert_eq!(caller.with(200), 2, "{:?}", caller.statuses);
        assert_eq!(caller.with(500), 2, "{:?}", caller.statuses);
        let refused: Vec<_> = h
            .events()
            .into_iter()
            .filter(|e| kind(e) == "resource_exhausted")
            .collect();
        assert_eq!(refused.len(), 2, "{}", h.story());
        for e in &refused {
            assert_eq!(e["line"], 1);
            assert_eq!(e["max"], 2);
            assert_eq!(e["open"], 2);
            assert_eq!(e["refused"], "incoming_call");
        }
        let ended = h
            .events()
            .into_iter()
            .filter(|e| {
                kind(e) == "call_ended" && e["reason"] == "resource_limit" && e["status"] == 503
            })
            .count();
        assert_eq!(ended, 2);
        // Line 2 cannot place a call either: an error and the event, and
        // its registration is untouched.
        let placed = fleet.lines()[1]
            .send(PlaceCall {
                target: target.clone(),
            })
            .await
            .expect("line answers");
        assert!(
            matches!(placed, Err(CallCommandError::Media(_))),
            "{placed:?}"
        );
        h.wait_event("outgoing refused", Duration::from_secs(1), |e| {
            kind(e) == "resource_exhausted" && e["line"] == 2 && e["refused"] == "outgoing_call"
        })
        .await;
        let status = fleet.status().await;
        assert!(status.iter().all(|s| s.registered_route.is_some()));
        fleet.shutdown(Duration::from_secs(3)).await;
    });
    h.finish_with_calls();
}
