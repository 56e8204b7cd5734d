//! Helpers for tests that drive the lab's tools: SIPp, `openssl s_client`,
//! `dig`, and a minimal SIP request/response exchange over UDP or TCP for
//! checks SIPp cannot make (a connected UDP socket sees ICMP; SIPp does not).
//!
//! The SIP exchange is hand-written on purpose: it must not share code with
//! the client under test, and it only needs a status line and headers.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::lab::{password_for, sipp_scenario, Lab};
use crate::mode::Transport;

/// Finds `binary` on PATH, or fails with [`LabError::MissingBinary`] (tests
/// must fail, not skip, when a tool is missing).
pub fn require(binary: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(binary))
        .find(|p| p.is_file())
        .ok_or_else(|| LabError::MissingBinary {
            binary: binary.to_string(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })
}

/// The outcome of one SIPp run.
#[derive(Debug)]
pub struct SippRun {
    /// SIPp's exit code: 0 = every call succeeded, 1 = some failed.
    pub code: i32,
    pub stdout: String,
    /// Unexpected messages and aborts (`-trace_err`).
    pub errors: String,
}

impl SippRun {
    pub fn success(&self) -> bool {
        self.code == 0
    }
}

/// A SIPp invocation against one SBC.
#[derive(Debug, Clone)]
pub struct Sipp {
    pub scenario: PathBuf,
    pub remote: SocketAddr,
    pub transport: Transport,
    /// Local address SIPp binds (`-i`, `-p`, `-bind_local`).
    pub local: SocketAddr,
    /// Request-URI user (`-s`).
    pub service: String,
    /// `[field0]` of the injection file: the SIP domain.
    pub domain: String,
    /// `[field1]`: e.g. the calling user.
    pub field1: String,
    /// Digest credentials (`-au`, `-ap`).
    pub auth: Option<(String, String)>,
    /// Extra `-key NAME VALUE` pairs.
    pub keys: Vec<(String, String)>,
    /// Global timeout (`-timeout`).
    pub timeout: Duration,
    /// Where to write the injection and error files.
    pub work_dir: PathBuf,
}

impl Sipp {
    /// SIPp running `lab/sipp/<scenario>` as `user` (with its lab password)
    /// against SBC `sbc` of `lab`, from a fresh local endpoint of the lab,
    /// 5 s timeout. Adjust the public fields for anything else.
    pub fn for_lab(
        lab: &Lab,
        scenario: &str,
        sbc: usize,
        transport: Transport,
        user: &str,
    ) -> Sipp {
        Sipp {
            scenario: sipp_scenario(scenario),
            remote: lab.sbc(sbc).addr(transport),
            transport,
            local: lab.local_endpoint(),
            service: user.to_string(),
            domain: lab.domain().to_string(),
            field1: user.to_string(),
            auth: Some((user.to_string(), password_for(user))),
            keys: Vec::new(),
            timeout: Duration::from_secs(5),
            work_dir: lab.dir().join("sipp"),
        }
    }

    /// Runs SIPp for one call and waits for it.
    pub fn run(&self) -> Result<SippRun> {
        let bin = require("sipp")?;
        std::fs::create_dir_all(&self.work_dir)
            .map_err(|e| LabError::io(format!("create {}", self.work_dir.display()), e))?;
        let tag = format!("{}-{}", self.local.port(), std::process::id());
        let inf = self.work_dir.join(format!("sipp-{tag}.csv"));
        std::fs::write(
            &inf,
            format!("SEQUENTIAL\n{};{}\n", self.domain, self.field1),
        )
        .map_err(|e| LabError::io(format!("write {}", inf.display()), e))?;
        let err_file = self.work_dir.join(format!("sipp-{tag}.err"));
        let _ = std::fs::remove_file(&err_file);
        let t = match self.transport {
            Transport::Udp => "u1",
            Transport::Tcp => "t1",
            Transport::Tls => "l1",
        };
        let mut cmd = Command::new(bin);
        cmd.arg("-sf")
            .arg(&self.scenario)
            .arg("-inf")
            .arg(&inf)
            .args(["-i", &self.local.ip().to_string()])
            .args(["-p", &self.local.port().to_string()])
            .arg("-bind_local")
            .args(["-mi", &self.local.ip().to_string()])
            .args([
                "-mp",
                &(u32::from(self.local.port()) + 10000)
                    .min(65000)
                    .to_string(),
            ])
            .args(["-s", &self.service])
            .args(["-t", t, "-m", "1", "-nostdin", "-timeout_error"])
            .args(["-timeout", &format!("{}ms", self.timeout.as_millis())])
            .arg("-trace_err")
            .arg("-error_file")
            .arg(&err_file);
        if let Some((u, p)) = &self.auth {
            cmd.args(["-au", u, "-ap", p]);
        }
        for (k, v) in &self.keys {
            cmd.args(["-key", k, v]);
        }
        cmd.arg(self.remote.to_string());
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| LabError::io("run sipp", e))?;
        Ok(SippRun {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
            errors: std::fs::read_to_string(&err_file).unwrap_or_default(),
        })
    }
}

/// A SIP response: status code and headers (names as received).
#[derive(Debug, Clone)]
pub struct SipResponse {
    pub code: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
}

impl SipResponse {
    /// First header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn parse(bytes: &[u8]) -> Option<SipResponse> {
        let text = String::from_utf8_lossy(bytes);
        let head = text.split("\r\n\r\n").next()?;
        let mut lines = head.split("\r\n");
        let status = lines.next()?;
        let mut parts = status.splitn(3, ' ');
        if parts.next()? != "SIP/2.0" {
            return None;
        }
        let code = parts.next()?.parse().ok()?;
        let reason = parts.next().unwrap_or("").to_string();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        Some(SipResponse {
            code,
            reason,
            headers,
        })
    }
}

/// What became of a request sent with [`sip_request`].
#[derive(Debug)]
pub enum SipOutcome {
    /// The first final response (provisional ones are skipped).
    Response(SipResponse),
    /// Nothing within the timeout.
    Timeout,
    /// ICMP port unreachable (UDP) or RST (TCP connect), after `after`.
    Refused { after: Duration },
}

/// A REGISTER for `user` (no credentials) from `local` to `remote`.
pub fn register_text(
    transport: Transport,
    local: SocketAddr,
    domain: &str,
    user: &str,
    call_id: &str,
) -> String {
    let t = transport.as_str().to_ascii_uppercase();
    format!(
        "REGISTER sip:{domain} SIP/2.0\r\nVia: SIP/2.0/{t} {local};rport;branch=z9hG4bK-{call_id}\r\n\
         From: <sip:{user}@{domain}>;tag=t{call_id}\r\nTo: <sip:{user}@{domain}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{user}@{local};transport={tr}>\r\n\
         Max-Forwards: 70\r\nExpires: 60\r\nContent-Length: 0\r\n\r\n",
        tr = transport.as_str(),
    )
}

/// Sends a request from `local_ip` (port chosen by the system) over
/// `transport` and waits up to `timeout` for a final response. `request`
/// builds the text from the local address actually bound.
pub fn sip_request(
    transport: Transport,
    local_ip: IpAddr,
    remote: SocketAddr,
    request: impl Fn(SocketAddr) -> String,
    timeout: Duration,
) -> Result<SipOutcome> {
    let start = Instant::now();
    match transport {
        Transport::Udp => {
            let sock = UdpSocket::bind((local_ip, 0)).map_err(|e| LabError::io("bind UDP", e))?;
            sock.connect(remote)
                .map_err(|e| LabError::io("connect UDP", e))?;
            let local = sock
                .local_addr()
                .map_err(|e| LabError::io("local addr", e))?;
            sock.send(request(local).as_bytes())
                .map_err(|e| LabError::io("send UDP", e))?;
            let mut buf = vec![0u8; 65535];
            loop {
                let left = timeout.saturating_sub(start.elapsed());
                if left.is_zero() {
                    return Ok(SipOutcome::Timeout);
                }
                sock.set_read_timeout(Some(left))
                    .map_err(|e| LabError::io("UDP timeout", e))?;
                match sock.recv(&mut buf) {
                    Ok(n) => {
                        if let Some(r) = SipResponse::parse(&buf[..n]) {
                            if r.code >= 200 {
                                return Ok(SipOutcome::Response(r));
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        return Ok(SipOutcome::Refused {
                            after: start.elapsed(),
                        })
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        return Ok(SipOutcome::Timeout)
                    }
                    Err(e) => return Err(LabError::io("recv UDP", e)),
                }
            }
        }
        Transport::Tcp => {
            let mut stream = match TcpStream::connect_timeout(&remote, timeout) {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return Ok(SipOutcome::Refused {
                        after: start.elapsed(),
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Ok(SipOutcome::Timeout)
                }
                Err(e) => return Err(LabError::io("connect TCP", e)),
            };
            let local = stream
                .local_addr()
                .map_err(|e| LabError::io("local addr", e))?;
            stream
                .write_all(request(local).as_bytes())
                .map_err(|e| LabError::io("send TCP", e))?;
            let mut acc = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let left = timeout.saturating_sub(start.elapsed());
                if left.is_zero() {
                    return Ok(SipOutcome::Timeout);
                }
                stream
                    .set_read_timeout(Some(left))
                    .map_err(|e| LabError::io("TCP timeout", e))?;
                match stream.read(&mut buf) {
                    Ok(0) => return Ok(SipOutcome::Timeout),
                    Ok(n) => {
                        acc.extend_from_slice(&buf[..n]);
                        // Responses here have no body: split at blank lines.
                        while let Some(end) = acc.windows(4).position(|w| w == b"\r\n\r\n") {
                            let msg: Vec<u8> = acc.drain(..end + 4).collect();
                            if let Some(r) = SipResponse::parse(&msg) {
                                if r.code >= 200 {
                                    return Ok(SipOutcome::Response(r));
                                }
                            }
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        return Ok(SipOutcome::Timeout)
                    }
                    Err(e) => return Err(LabError::io("recv TCP", e)),
                }
            }
        }
        Transport::Tls => Err(LabError::Config(
            "sip_request has no TLS: use tls_exchange (openssl s_client)".into(),
        )),
    }
}

/// Opens TLS to `remote` with `openssl s_client`, verifying the certificate
/// against `ca` and `host`, sends `payload`, and returns everything
/// s_client printed (handshake summary and what the server answered).
pub fn tls_exchange(
    remote: SocketAddr,
    host: &str,
    ca: &Path,
    payload: &str,
    wait: Duration,
) -> Result<(bool, String)> {
    let bin = require("openssl")?;
    let mut child = Command::new(bin)
        .args(["s_client", "-connect", &remote.to_string()])
        .arg("-CAfile")
        .arg(ca)
        .args([
            "-verify_hostname",
            host,
            "-verify_return_error",
            "-servername",
            host,
        ])
        .args(["-brief", "-nocommands"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| LabError::io("run openssl s_client", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(payload.as_bytes());
        std::thread::sleep(wait);
        drop(stdin);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child
        .wait_with_output()
        .map_err(|e| LabError::io("wait openssl s_client", e))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Ok((out.status.success(), text))
}

/// The `Authorization` header value answering a digest challenge (MD5,
/// `qop=auth` when the challenge offers it). For tests that play a line by
/// hand; the client under test has its own implementation.
pub fn digest_authorization(
    challenge: &str,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
) -> Option<String> {
    use md5::{Digest, Md5};
    let param = |name: &str| -> Option<String> {
        let i = challenge.find(&format!("{name}="))? + name.len() + 1;
        let rest = &challenge[i..];
        Some(match rest.strip_prefix('"') {
            Some(q) => q.split('"').next()?.to_string(),
            None => rest.split([',', ' ']).next()?.to_string(),
        })
    };
    let h = |s: String| format!("{:x}", Md5::digest(s.as_bytes()));
    let realm = param("realm")?;
    let nonce = param("nonce")?;
    let ha1 = h(format!("{user}:{realm}:{password}"));
    let ha2 = h(format!("{method}:{uri}"));
    let qop_auth = param("qop").is_some_and(|q| q.split(',').any(|x| x.trim() == "auth"));
    Some(if qop_auth {
        let (nc, cnonce) = ("00000001", "0a4f113b");
        let response = h(format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
        format!(
            "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{response}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"{cnonce}\""
        )
    } else {
        let response = h(format!("{ha1}:{nonce}:{ha2}"));
        format!(
            "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{response}\", algorithm=MD5"
        )
    })
}

/// A `dig` answer.
#[derive(Debug, Clone)]
pub struct DigAnswer {
    /// `NOERROR`, `NXDOMAIN`, ... or `TIMEOUT` when no server answered.
    pub status: String,
    /// Answer records as `(ttl, rdata)`, e.g. `(5, "10 50 5060 sbc1.lab.sipfleet.test.")`.
    pub answers: Vec<(u32, String)>,
}

/// Queries `server` with `dig` for `rtype` `name` (one try, `timeout` each).
pub fn dig(server: SocketAddr, rtype: &str, name: &str, timeout: Duration) -> Result<DigAnswer> {
    let bin = require("dig")?;
    let out = Command::new(bin)
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        .args(["+tries=1", &format!("+time={}", timeout.as_secs().max(1))])
        .args(["+noall", "+answer", "+comments", rtype, name])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| LabError::io("run dig", e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let status = text
        .lines()
        .find_map(|l| l.split("status: ").nth(1))
        .and_then(|s| s.split(',').next())
        .map(str::to_string)
        .unwrap_or_else(|| "TIMEOUT".to_string());
    let answers = text
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // name ttl IN TYPE rdata...
            if f.len() >= 5 && f[2] == "IN" {
                Some((f[1].parse().ok()?, f[4..].join(" ")))
            } else {
                None
            }
        })
        .collect();
    Ok(DigAnswer { status, answers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_rfc_2617_example() {
        // RFC 2617 section 3.5.
        let challenge = "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
                         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
        let a = digest_authorization(
            challenge,
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
        )
        .unwrap();
        assert!(
            a.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{a}"
        );
    }

    #[test]
    fn parses_responses_and_rejects_requests() {
        let r = SipResponse::parse(b"SIP/2.0 503 Service Unavailable\r\nRetry-After: 30\r\n\r\n")
            .unwrap();
        assert_eq!((r.code, r.header("retry-after")), (503, Some("30")));
        assert!(SipResponse::parse(b"INVITE sip:a SIP/2.0\r\n\r\n").is_none());
        assert!(SipResponse::parse(b"SIP/2.0 abc\r\n\r\n").is_none());
    }
}
