//! An in-process authoritative DNS server for tests (hickory-server with a
//! handler of our own, so tests can count queries, switch to error answers and
//! change records), plus raw UDP peers that stay silent or answer garbage.
//! Shared by the transport, actor and command-line tests through `#[path]`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_server::proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::{A, NAPTR, SRV};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn fqdn(name: &str) -> Name {
    Name::from_str(&format!("{}.", name.trim_end_matches('.'))).unwrap()
}

/// Records by (name, type). A name with records of other types answers NODATA,
/// an unknown name NXDOMAIN.
#[derive(Clone, Default)]
pub struct TestZone {
    records: HashMap<(String, RecordType), Vec<Record>>,
}

impl TestZone {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, name: &str, rtype: RecordType, record: Record) {
        self.records
            .entry((key(name), rtype))
            .or_default()
            .push(record);
    }

    pub fn a(mut self, name: &str, ttl: u32, addrs: &[&str]) -> Self {
        for addr in addrs {
            let ip: Ipv4Addr = addr.parse().unwrap();
            self.push(
                name,
                RecordType::A,
                Record::from_rdata(fqdn(name), ttl, RData::A(A(ip))),
            );
        }
        self
    }

    pub fn srv(
        mut self,
        name: &str,
        ttl: u32,
        priority: u16,
        weight: u16,
        port: u16,
        target: &str,
    ) -> Self {
        let rdata = RData::SRV(SRV::new(priority, weight, port, fqdn(target)));
        self.push(
            name,
            RecordType::SRV,
            Record::from_rdata(fqdn(name), ttl, rdata),
        );
        self
    }

    pub fn naptr(
        mut self,
        name: &str,
        ttl: u32,
        order: u16,
        preference: u16,
        services: &str,
        replacement: &str,
    ) -> Self {
        let rdata = RData::NAPTR(NAPTR::new(
            order,
            preference,
            b"s".to_vec().into_boxed_slice(),
            services.as_bytes().to_vec().into_boxed_slice(),
            Vec::new().into_boxed_slice(),
            fqdn(replacement),
        ));
        self.push(
            name,
            RecordType::NAPTR,
            Record::from_rdata(fqdn(name), ttl, rdata),
        );
        self
    }

    /// The guide's "DNSNaptr Records for Mixed Transports" table with every
    /// access IP mapped onto 127.0.0.0/8: a/b TCP, c TLS, d UDP.
    pub fn guide_naptr(domain: &str, ttl: u32) -> Self {
        let sbc = |s: &str| format!("{s}.{domain}");
        let mut zone = TestZone::new()
            .naptr(domain, ttl, 50, 10, "SIP+D2T", &sbc("_sip._tcp.poly-sbc"))
            .naptr(
                domain,
                ttl,
                100,
                10,
                "SIP+D2T",
                &sbc("_sip._tcp.poly-sbc-int"),
            )
            .naptr(
                domain,
                ttl,
                150,
                10,
                "SIPS+D2T",
                &sbc("_sips._tcp.poly-sbc-ext"),
            )
            .naptr(
                domain,
                ttl,
                200,
                10,
                "SIP+D2U",
                &sbc("_sip._udp.poly-sbc-bak"),
            )
            .srv(&sbc("_sip._tcp.poly-sbc"), ttl, 100, 50, 5060, &sbc("a1"))
            .srv(&sbc("_sip._tcp.poly-sbc"), ttl, 100, 50, 5060, &sbc("a2"))
            .srv(
                &sbc("_sip._tcp.poly-sbc-int"),
                ttl,
                100,
                50,
                5060,
                &sbc("b1"),
            )
            .srv(
                &sbc("_sip._tcp.poly-sbc-int"),
                ttl,
                100,
                50,
                5060,
                &sbc("b2"),
            )
            .srv(
                &sbc("_sips._tcp.poly-sbc-ext"),
                ttl,
                140,
                50,
                5061,
                &sbc("c1"),
            )
            .srv(
                &sbc("_sips._tcp.poly-sbc-ext"),
                ttl,
                240,
                50,
                5061,
                &sbc("c2"),
            )
            .srv(
                &sbc("_sips._tcp.poly-sbc-ext"),
                ttl,
                340,
                50,
                5061,
                &sbc("c3"),
            )
            .srv(
                &sbc("_sips._tcp.poly-sbc-ext"),
                ttl,
                440,
                50,
                5061,
                &sbc("c4"),
            )
            .srv(
                &sbc("_sip._udp.poly-sbc-bak"),
                ttl,
                140,
                50,
                5060,
                &sbc("d1"),
            )
            .srv(
                &sbc("_sip._udp.poly-sbc-bak"),
                ttl,
                240,
                50,
                5060,
                &sbc("d2"),
            );
        for (host, addr) in [
            ("a1", "127.0.1.5"),
            ("a2", "127.0.2.9"),
            ("b1", "127.168.0.50"),
            ("b2", "127.168.0.100"),
            ("c1", "127.148.100.5"),
            ("c2", "127.148.100.20"),
            ("c3", "127.148.200.4"),
            ("c4", "127.148.200.30"),
            ("d1", "127.168.50.6"),
            ("d2", "127.168.50.64"),
        ] {
            zone = zone.a(&sbc(host), ttl, &[addr]);
        }
        zone
    }
}

#[derive(Default)]
struct State {
    zone: TestZone,
    /// Answer every query with this code instead of the zone.
    rcode: Option<ResponseCode>,
    counts: HashMap<(String, RecordType), usize>,
}

#[derive(Clone)]
struct Handler(Arc<Mutex<State>>);

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: hickory_server::net::runtime::Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let Some(query) = request.queries.queries().first() else {
            return failed(request);
        };
        let name = key(&query.name().to_string());
        let rtype = query.query_type();
        let (answers, rcode) = {
            let mut state = self.0.lock().unwrap();
            *state.counts.entry((name.clone(), rtype)).or_default() += 1;
            match state.rcode {
                Some(code) => (Vec::new(), code),
                None => match state.zone.records.get(&(name.clone(), rtype)) {
                    Some(records) => (records.clone(), ResponseCode::NoError),
                    None if state.zone.records.keys().any(|(n, _)| *n == name) => {
                        (Vec::new(), ResponseCode::NoError)
                    }
                    None => (Vec::new(), ResponseCode::NXDomain),
                },
            }
        };
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        metadata.response_code = rcode;
        let response = MessageResponseBuilder::from_message_request(request).build(
            metadata,
            answers.iter(),
            std::iter::empty(),
            std::iter::empty(),
            std::iter::empty(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(_) => failed(request),
        }
    }
}

fn failed(request: &Request) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

/// A running test DNS server on 127.0.0.1 (UDP and TCP on the same port).
pub struct TestDns {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: Server<Handler>,
}

impl TestDns {
    pub async fn start(zone: TestZone) -> TestDns {
        let state = Arc::new(Mutex::new(State {
            zone,
            ..State::default()
        }));
        let mut server = Server::new(Handler(state.clone()));
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = udp.local_addr().unwrap();
            if let Ok(tcp) = TcpListener::bind(addr).await {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().unwrap();
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64);
        TestDns {
            addr,
            state,
            server,
        }
    }

    /// Start again on the address of a stopped server (UDP only).
    pub async fn start_on(addr: SocketAddr, zone: TestZone) -> TestDns {
        let state = Arc::new(Mutex::new(State {
            zone,
            ..State::default()
        }));
        let mut server = Server::new(Handler(state.clone()));
        server.register_socket(UdpSocket::bind(addr).await.unwrap());
        TestDns {
            addr,
            state,
            server,
        }
    }

    /// Queries received for (name, type).
    pub fn count(&self, name: &str, rtype: RecordType) -> usize {
        let state = self.state.lock().unwrap();
        state.counts.get(&(key(name), rtype)).copied().unwrap_or(0)
    }

    /// All queries received.
    pub fn total(&self) -> usize {
        self.state.lock().unwrap().counts.values().sum()
    }

    /// Answer everything with `code` (None: answer from the zone again).
    pub fn set_rcode(&self, code: Option<ResponseCode>) {
        self.state.lock().unwrap().rcode = code;
    }

    pub fn set_zone(&self, zone: TestZone) {
        self.state.lock().unwrap().zone = zone;
    }

    pub async fn stop(mut self) {
        self.server.shutdown_gracefully().await.unwrap();
    }
}

/// A UDP peer that reads queries and never answers.
pub async fn silent_server() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while socket.recv_from(&mut buf).await.is_ok() {}
    });
    addr
}

/// A UDP peer that answers every query with `reply(query)`.
pub async fn raw_server(reply: fn(&[u8]) -> Vec<u8>) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&reply(&buf[..n]), from).await;
        }
    });
    addr
}
