//! What an SBC received, parsed from its log.
//!
//! The SBC script writes one line per request it receives, before any fault
//! handling, so a test sees every request that reached the SBC (a silent SBC
//! logs what it reads once it is continued):
//!
//! ```text
//! OBS|<epoch seconds>.<microseconds>|<method>|<From user>|<Call-ID>|<Expires>|<proto>|<source ip>|<source port>|<R-URI user>|<Contact>
//! ```
//!
//! Absent values are printed by Kamailio as `<null>`.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::mode::Transport;

/// One request an SBC received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedRequest {
    /// When the SBC read it (wall clock, microsecond resolution).
    pub t: SystemTime,
    pub method: String,
    pub from_user: Option<String>,
    pub call_id: String,
    /// The `Expires` header, else the Contact's `expires` parameter.
    pub expires: Option<u32>,
    pub transport: Transport,
    pub source: SocketAddr,
    /// User part of the Request-URI.
    pub request_user: Option<String>,
    /// The Contact header as received.
    pub contact: Option<String>,
}

impl ObservedRequest {
    /// Milliseconds since the Unix epoch.
    pub fn t_ms(&self) -> u128 {
        self.t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    }
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (s != "<null>" && !s.is_empty()).then(|| s.to_string())
}

fn parse_time(s: &str) -> Option<SystemTime> {
    let (secs, micros) = s.split_once('.')?;
    let secs: u64 = secs.parse().ok()?;
    let micros: u64 = micros.parse().ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros))
}

fn contact_expires(contact: &str) -> Option<u32> {
    let lower = contact.to_ascii_lowercase();
    let i = lower.find(";expires=")?;
    let digits: String = lower[i + 9..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Parses one log line; `None` for lines that are not observations or are
/// malformed (other log output shares the file).
pub fn parse_line(line: &str) -> Option<ObservedRequest> {
    let rest = &line[line.find("OBS|")? + 4..];
    let f: Vec<&str> = rest.splitn(10, '|').collect();
    if f.len() < 10 {
        return None;
    }
    let ip: IpAddr = f[6].trim().parse().ok()?;
    let port: u16 = f[7].trim().parse().ok()?;
    let contact = opt(f[9]);
    let expires = opt(f[4])
        .and_then(|e| e.parse().ok())
        .or_else(|| contact.as_deref().and_then(contact_expires));
    Some(ObservedRequest {
        t: parse_time(f[0])?,
        method: f[1].trim().to_string(),
        from_user: opt(f[2]),
        call_id: f[3].trim().to_string(),
        expires,
        transport: f[5].parse().ok()?,
        source: SocketAddr::new(ip, port),
        request_user: opt(f[8]),
        contact,
    })
}

/// Parses every observation in a log text, in log order.
pub fn parse_log(text: &str) -> Vec<ObservedRequest> {
    text.lines().filter_map(parse_line).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_observation_line() {
        let l = " 1(9177) ALERT: <script>: OBS|1795565568.106902|REGISTER|1001|1-9321@127.0.0.1|300|udp|127.0.0.1|5060|<null>|<sip:1001@127.0.0.1:5060;transport=UDP>";
        let o = parse_line(l).unwrap();
        assert_eq!(o.method, "REGISTER");
        assert_eq!(o.from_user.as_deref(), Some("1001"));
        assert_eq!(o.call_id, "1-9321@127.0.0.1");
        assert_eq!(o.expires, Some(300));
        assert_eq!(o.transport, Transport::Udp);
        assert_eq!(o.source, "127.0.0.1:5060".parse().unwrap());
        assert_eq!(o.request_user, None);
        assert_eq!(o.t_ms(), 1_795_565_568_106);
    }

    #[test]
    fn expires_falls_back_to_the_contact_parameter() {
        let l = "OBS|1.000001|REGISTER|7|c|<null>|tcp|127.0.0.1|4000|<null>|<sip:7@h>;expires=60";
        assert_eq!(parse_line(l).unwrap().expires, Some(60));
    }

    #[test]
    fn rejects_other_and_malformed_lines() {
        assert!(parse_line(" 0(1) ALERT: <core> child exited").is_none());
        assert!(parse_line("OBS|x|REGISTER").is_none());
        assert!(parse_line("OBS|1.2|R|u|c|1|carrier-pigeon|127.0.0.1|1|u|c").is_none());
    }
}
