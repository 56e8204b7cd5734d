//! The lab's SBCs are real registrars: SIPp registers with digest auth over
//! UDP and TCP, calls the SBC's own callee and a registered line, and
//! subscribes; TLS is checked with `openssl s_client` against the lab CA.
//! Every test starts its own lab and tears it down (also on failure).

use std::time::Duration;

use sipfleet_lab::tools::{tls_exchange, Sipp};
use sipfleet_lab::{password_for, sipp_scenario, Lab, LabConfig, Transport};

fn sipp(lab: &Lab, scenario: &str, sbc: usize, transport: Transport, service: &str) -> Sipp {
    Sipp {
        scenario: sipp_scenario(scenario),
        remote: lab.sbc(sbc).addr(transport),
        transport,
        local: lab.local_endpoint(),
        service: service.to_string(),
        domain: lab.domain().to_string(),
        field1: service.to_string(),
        auth: None,
        keys: Vec::new(),
        timeout: Duration::from_secs(5),
        work_dir: lab.dir().join("sipp"),
    }
}

fn register(lab: &Lab, sbc: usize, transport: Transport, user: &str) -> Sipp {
    let mut s = sipp(lab, "register.xml", sbc, transport, user);
    s.auth = Some((user.to_string(), password_for(user)));
    s
}

#[test]
fn register_with_digest_auth_on_each_sbc_over_udp_and_tcp() {
    let lab = Lab::start(LabConfig::default()).unwrap();
    for i in 1..=3 {
        for (t, user) in [(Transport::Udp, "1001"), (Transport::Tcp, "20002")] {
            let run = register(&lab, i, t, user).run().unwrap();
            assert!(run.success(), "sbc{i} {t}: {}\n{}", run.errors, run.stdout);
        }
        let regs: Vec<_> = lab
            .received(i)
            .unwrap()
            .into_iter()
            .filter(|r| r.method == "REGISTER")
            .collect();
        // Each registration is challenged once: 2 REGISTERs per transport.
        assert_eq!(regs.len(), 4, "sbc{i}: {regs:?}");
        assert_eq!(regs[0].transport, Transport::Udp);
        assert_eq!(regs[0].from_user.as_deref(), Some("1001"));
        assert_eq!(regs[0].expires, Some(300));
        assert_eq!(regs[0].call_id, regs[1].call_id);
        assert_eq!(regs[3].transport, Transport::Tcp);
        assert_eq!(regs[3].from_user.as_deref(), Some("20002"));
        assert_eq!(regs[3].source.ip(), lab.client_ip());
        assert!(regs.windows(2).all(|w| w[0].t <= w[1].t));
    }
}

#[test]
fn wrong_password_and_unknown_user_are_refused() {
    let lab = Lab::start(LabConfig {
        sbc_count: 1,
        ..LabConfig::default()
    })
    .unwrap();
    let mut bad = register(&lab, 1, Transport::Udp, "1005");
    bad.auth = Some(("1005".into(), "not-the-password".into()));
    let run = bad.run().unwrap();
    assert!(!run.success());
    assert!(run.errors.contains("401"), "{}", run.errors);
    // 3000 is outside 1000-1999 and 20000-29999.
    let run = register(&lab, 1, Transport::Udp, "3000").run().unwrap();
    assert!(!run.success());
    assert!(run.errors.contains("403"), "{}", run.errors);
}

#[test]
fn call_to_the_sbc_callee_gets_200_ack_and_bye_over_udp_and_tcp() {
    let lab = Lab::start(LabConfig {
        sbc_count: 1,
        ..LabConfig::default()
    })
    .unwrap();
    for t in [Transport::Udp, Transport::Tcp] {
        let mut call = sipp(&lab, "call.xml", 1, t, "9000");
        call.field1 = "1001".into();
        let run = call.run().unwrap();
        assert!(run.success(), "{t}: {}\n{}", run.errors, run.stdout);
    }
    let methods: Vec<String> = lab
        .received(1)
        .unwrap()
        .into_iter()
        .map(|r| format!("{}/{}", r.method, r.transport))
        .collect();
    assert_eq!(
        methods,
        [
            "INVITE/udp",
            "ACK/udp",
            "BYE/udp",
            "INVITE/tcp",
            "ACK/tcp",
            "BYE/tcp"
        ]
    );
}

/// `sip:8xxx@` answers only an INVITE with valid proxy credentials (407
/// first, checked by Kamailio), and the SBC's own calls answer a hold
/// re-INVITE with the mirrored direction (`a=recvonly` to `a=sendonly`).
#[test]
fn a_challenged_call_with_hold_over_udp_and_tcp() {
    let lab = Lab::start(LabConfig {
        sbc_count: 1,
        ..LabConfig::default()
    })
    .unwrap();
    for t in [Transport::Udp, Transport::Tcp] {
        let mut call = sipp(&lab, "call_challenged.xml", 1, t, "8000");
        call.field1 = "1001".into();
        call.auth = Some(("1001".into(), password_for("1001")));
        let run = call.run().unwrap();
        assert!(run.success(), "{t}: {}\n{}", run.errors, run.stdout);
    }
    let mut bad = sipp(&lab, "call_challenged.xml", 1, Transport::Udp, "8000");
    bad.field1 = "1001".into();
    bad.auth = Some(("1001".into(), "not-the-password".into()));
    bad.timeout = Duration::from_secs(2);
    let run = bad.run().unwrap();
    assert!(!run.success(), "wrong credentials are challenged again");
    // Only the two good calls got as far as their BYE.
    let byes = lab
        .received(1)
        .unwrap()
        .into_iter()
        .filter(|r| r.method == "BYE")
        .count();
    assert_eq!(byes, 2);
}

#[test]
fn invite_to_a_registered_line_is_delivered_to_it() {
    let lab = Lab::start(LabConfig {
        sbc_count: 1,
        ..LabConfig::default()
    })
    .unwrap();
    // The line: SIPp's built-in UAS, registered as 1002 by a REGISTER whose
    // Contact points at it.
    let uas_addr = lab.local_endpoint();
    let bin = sipfleet_lab::tools::require("sipp").unwrap();
    let uas = std::process::Command::new(bin)
        .args(["-sn", "uas", "-i", &uas_addr.ip().to_string()])
        .args(["-p", &uas_addr.port().to_string(), "-bind_local", "-m", "1"])
        .args(["-nostdin", "-timeout", "10s", "-t", "u1"])
        .args(["-mi", &uas_addr.ip().to_string(), "-mp", "26000"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut reg = sipp(&lab, "register_as.xml", 1, Transport::Udp, "1002");
    reg.auth = Some(("1002".into(), password_for("1002")));
    reg.keys = vec![("contact".into(), uas_addr.to_string())];
    let mut guard = Reap(uas);
    let run = reg.run().unwrap();
    assert!(run.success(), "{}", run.errors);

    let mut call = sipp(&lab, "call.xml", 1, Transport::Udp, "1002");
    call.field1 = "1001".into();
    let run = call.run().unwrap();
    assert!(run.success(), "{}\n{}", run.errors, run.stdout);
    let status = guard.0.wait().unwrap();
    assert!(status.success(), "the line (SIPp UAS) failed: {status}");
    let invites = lab
        .received(1)
        .unwrap()
        .into_iter()
        .filter(|r| r.method == "INVITE")
        .count();
    assert_eq!(invites, 1);
}

#[test]
fn subscribe_dialog_message_summary_and_call_info_get_200_and_notify() {
    let lab = Lab::start(LabConfig {
        sbc_count: 1,
        ..LabConfig::default()
    })
    .unwrap();
    for t in [Transport::Udp, Transport::Tcp] {
        for event in ["dialog", "message-summary", "call-info"] {
            let mut sub = sipp(&lab, "subscribe.xml", 1, t, "1003");
            sub.keys = vec![("event".into(), event.into())];
            let run = sub.run().unwrap();
            assert!(run.success(), "{t} {event}: {}\n{}", run.errors, run.stdout);
        }
    }
    // Each subscription was created and then ended inside its dialog.
    let subs = lab.received(1).unwrap();
    let ended = subs
        .iter()
        .filter(|r| r.method == "SUBSCRIBE" && r.expires == Some(0))
        .count();
    assert_eq!((subs.len(), ended), (12, 6), "{subs:?}");
}

#[test]
fn tls_certificate_verifies_against_the_lab_ca_and_sip_is_answered() {
    let lab = Lab::start(LabConfig::default()).unwrap();
    for sbc in lab.sbcs() {
        let local = "127.0.0.1:5999";
        let options = format!(
            "OPTIONS sip:{ip}:5061;transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS {local};branch=z9hG4bK-tls{i}\r\n\
             From: <sip:1001@{d}>;tag=tls\r\nTo: <sip:{ip}>\r\nCall-ID: tls-{i}\r\nCSeq: 1 OPTIONS\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            ip = sbc.ip(),
            i = sbc.index(),
            d = lab.domain()
        );
        let (_, out) = tls_exchange(
            sbc.addr(Transport::Tls),
            sbc.host_name(),
            lab.ca_cert_path(),
            &options,
            Duration::from_millis(300),
        )
        .unwrap();
        assert!(
            out.contains("Verification: OK"),
            "sbc{}: {out}",
            sbc.index()
        );
        assert!(out.contains(&format!("CN = {}", sbc.host_name())), "{out}");
        assert!(out.contains("SIP/2.0 200 OK"), "sbc{}: {out}", sbc.index());
        let got = lab.received(sbc.index()).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].transport, Transport::Tls);
    }
    // The registrar answers over TLS too: a REGISTER is challenged.
    let sbc = lab.sbc(2);
    let register = sipfleet_lab::tools::register_text(
        Transport::Tls,
        "127.0.0.1:5999".parse().unwrap(),
        lab.domain(),
        "1001",
        "tls-register",
    );
    let (_, out) = tls_exchange(
        sbc.addr(Transport::Tls),
        sbc.host_name(),
        lab.ca_cert_path(),
        &register,
        Duration::from_millis(300),
    )
    .unwrap();
    assert!(out.contains("SIP/2.0 401 Unauthorized"), "{out}");
    assert!(
        out.contains(&format!("realm=\"{}\"", lab.domain())),
        "{out}"
    );
    // A wrong host name fails verification.
    let sbc = lab.sbc(1);
    let (_, out) = tls_exchange(
        sbc.addr(Transport::Tls),
        "sbc9.elsewhere.test",
        lab.ca_cert_path(),
        "",
        Duration::from_millis(50),
    )
    .unwrap();
    assert!(!out.contains("Verification: OK"), "{out}");
}

/// Reads one SIP message (headers and Content-Length body) from a stream.
fn read_message(stream: &mut std::net::TcpStream, acc: &mut Vec<u8>) -> String {
    use std::io::Read;
    loop {
        if let Some(end) = acc.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&acc[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    let n = n.trim().to_ascii_lowercase();
                    (n == "content-length" || n == "l").then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if acc.len() >= end + 4 + len {
                let msg: Vec<u8> = acc.drain(..end + 4 + len).collect();
                return String::from_utf8_lossy(&msg).into_owned();
            }
        }
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the SBC closed the line's connection");
        acc.extend_from_slice(&buf[..n]);
    }
}

fn header<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    msg.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

/// A response to `req` built by hand: the line's side of a call.
fn answer(req: &str, code: &str, to_tag: &str, extra: &str) -> String {
    let mut out = format!("SIP/2.0 {code}\r\n");
    for v in header(req, "Via") {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    for v in header(req, "Record-Route") {
        out.push_str(&format!("Record-Route: {v}\r\n"));
    }
    let to = header(req, "To")[0];
    let to = if to.contains("tag=") {
        to.to_string()
    } else {
        format!("{to};tag={to_tag}")
    };
    out.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
        header(req, "From")[0],
        header(req, "Call-ID")[0],
        header(req, "CSeq")[0]
    ));
    out
}

#[test]
fn invite_to_a_line_registered_over_tcp_arrives_on_its_connection() {
    use std::io::Write;
    let lab = Lab::start(LabConfig {
        sbc_count: 1,
        ..LabConfig::default()
    })
    .unwrap();
    let sbc = lab.sbc(1).addr(Transport::Tcp);
    let mut line = std::net::TcpStream::connect(sbc).unwrap();
    line.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let local = line.local_addr().unwrap();
    let domain = lab.domain().to_string();
    let mut acc = Vec::new();
    let register =
        sipfleet_lab::tools::register_text(Transport::Tcp, local, &domain, "1007", "tcp-line");
    line.write_all(register.as_bytes()).unwrap();
    let challenge = read_message(&mut line, &mut acc);
    assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
    let auth = sipfleet_lab::tools::digest_authorization(
        header(&challenge, "WWW-Authenticate")[0],
        "1007",
        &password_for("1007"),
        "REGISTER",
        &format!("sip:{domain}"),
    )
    .unwrap();
    let again = register
        .replace("CSeq: 1 REGISTER", "CSeq: 2 REGISTER")
        .replace("branch=z9hG4bK-tcp-line", "branch=z9hG4bK-tcp-line-2")
        .replace(
            "Max-Forwards",
            &format!("Authorization: {auth}\r\nMax-Forwards"),
        );
    line.write_all(again.as_bytes()).unwrap();
    let ok = read_message(&mut line, &mut acc);
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");

    // The line answers whatever comes on its connection: INVITE, ACK, BYE.
    let line_thread = std::thread::spawn(move || {
        let mut methods = Vec::new();
        while methods.last().map(String::as_str) != Some("BYE") {
            let req = read_message(&mut line, &mut acc);
            let method = req.split(' ').next().unwrap().to_string();
            let contact = format!("Contact: <sip:1007@{local};transport=tcp>\r\n");
            match method.as_str() {
                "INVITE" => line
                    .write_all(answer(&req, "200 OK", "line", &contact).as_bytes())
                    .unwrap(),
                "BYE" => line
                    .write_all(answer(&req, "200 OK", "line", "").as_bytes())
                    .unwrap(),
                _ => {}
            }
            methods.push(method);
        }
        methods
    });
    let mut call = sipp(&lab, "call.xml", 1, Transport::Udp, "1007");
    call.field1 = "1001".into();
    let run = call.run().unwrap();
    assert!(run.success(), "{}\n{}", run.errors, run.stdout);
    assert_eq!(line_thread.join().unwrap(), ["INVITE", "ACK", "BYE"]);
}
