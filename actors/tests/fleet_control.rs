//! The fleet's control API without the lab: a registrar on a loopback UDP
//! socket (answers every REGISTER 200 with the binding for the asked
//! expiry, records the expiries), lines added and removed at run time, the
//! errors that name the line, call or key at fault, readiness and metrics.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sipfleet_actors::events::EventSink;
use sipfleet_actors::fleet::{ControlError, Fleet, FleetOptions};
use sipfleet_actors::views::LineState;
use sipfleet_protocol::config::{parse_lines, ConfigBuilder};
use sipfleet_protocol::line::{CallAction, CallCommandError};
use sipfleet_protocol::message::{HeaderName, Message, Response, StatusCode};
use tokio::net::UdpSocket;

/// (user, Expires) of every REGISTER the registrar answered.
type Seen = Arc<Mutex<Vec<(String, u32)>>>;

/// Answers every REGISTER on `socket` 200, the binding for the asked
/// expiry.
async fn registrar(socket: UdpSocket, seen: Seen) {
    let mut buf = vec![0u8; 65536];
    while let Ok((n, from)) = socket.recv_from(&mut buf).await {
        let Ok(Message::Request(req)) = Message::parse(buf[..n].to_vec()) else {
            continue;
        };
        let h = req.headers();
        let expires = h.expires().ok().flatten().unwrap_or(3600);
        let user = h
            .from()
            .ok()
            .and_then(|f| f.uri().user().map(str::to_owned))
            .unwrap_or_default();
        let contact = h.get(HeaderName::Contact).unwrap_or_default().to_owned();
        if let Ok(mut v) = seen.lock() {
            v.push((user, expires));
        }
        let Some(ok) = StatusCode::new(200) else {
            continue;
        };
        let mut resp = Response::for_request(&req, ok, Some("reg"));
        if expires > 0 {
            resp.headers_mut()
                .push(HeaderName::Contact, format!("{contact};expires={expires}"));
        }
        let _ = socket.send_to(&resp.to_bytes(), from).await;
    }
}

fn line_text(n: u32, port: u16) -> String {
    format!(
        "reg.{n}.address=\"10{n:02}\"\n\
         reg.{n}.auth.password=\"pw\"\n\
         reg.{n}.server.1.address=\"127.0.0.1\"\n\
         reg.{n}.server.1.port=\"{port}\"\n\
         reg.{n}.server.1.transport=\"UDPOnly\"\n\
         reg.{n}.server.1.expires=\"120\"\n"
    )
}

fn options() -> FleetOptions {
    FleetOptions {
        events: EventSink::Memory(Default::default()),
        log: slog::Logger::root(slog::Discard, slog::o!()),
        ca_file: None,
        dns_servers: vec!["127.0.0.1:9".parse().unwrap()],
        seed: Some(7),
        user_agent: "fleet-control-test".into(),
        sip_port: 0,
        trace: None,
    }
}

async fn wait_for(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..300 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 3 s");
}

#[actix_rt::test]
async fn lines_come_and_go_at_run_time_and_errors_name_what_is_at_fault() {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    actix_rt::spawn(registrar(socket, seen.clone()));

    let mut b = ConfigBuilder::new();
    b.add_source(parse_lines(&line_text(1, port), "t.cfg"));
    let config = b.build().expect("valid");
    let fleet = Fleet::start(&config, options()).expect("starts");
    wait_for("line 1 registered", || fleet.ready(1.0)).await;

    // Errors, and nothing changed.
    match fleet.add_line_text("reg.2.address=\"1002\"\nreg.2.server.1.port=\"99999\"\n") {
        Err(ControlError::Config(errors)) => {
            assert!(
                errors.to_string().contains("reg.2.server.1.port"),
                "{errors}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        fleet.add_line_text(&line_text(1, port)),
        Err(ControlError::LineExists(1))
    ));
    assert!(matches!(
        fleet.add_line_text(""),
        Err(ControlError::LineCount { found: 0 })
    ));
    assert!(matches!(
        fleet.line_detail(5).await,
        Err(ControlError::UnknownLine(5))
    ));
    match fleet.hangup("nope").await {
        Err(ControlError::UnknownCall(id)) => assert_eq!(id, "nope"),
        other => panic!("{other:?}"),
    }
    match fleet
        .call_action("nope", CallAction::Answer)
        .await
        .unwrap_err()
    {
        e @ ControlError::UnknownCall(_) => assert!(e.to_string().contains("\"nope\"")),
        other => panic!("{other:?}"),
    }
    // A bad URI is the line's refusal, naming the line.
    match fleet.place_call(1, "not a uri").await {
        Err(ControlError::Call {
            line: 1,
            source: CallCommandError::Call(_),
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(fleet.line_indexes(), [1]);

    // A line added at run time registers with the fleet's services.
    assert_eq!(fleet.add_line_text(&line_text(2, port)).expect("added"), 2);
    // Nothing has run yet (one thread, no await since): it is starting.
    assert!(!fleet.ready(1.0));
    assert!(fleet.ready(0.5));
    wait_for("line 2 registered", || fleet.ready(1.0)).await;
    let detail = fleet.line_detail(2).await.expect("line 2");
    assert_eq!(detail.view.state, LineState::Registered);
    assert_eq!(detail.view.expires, Some(120));
    assert_eq!(detail.status.index, 2);
    assert_eq!(
        detail.status.registered_route.map(|r| r.addr.port()),
        Some(port)
    );
    let metrics = fleet.metrics_text().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"sipfleet_lines{state="registered"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"sipfleet_flows{transport="udp"} 1"#),
        "one shared flow: {metrics}"
    );

    // Removing it un-REGISTERs (Expires: 0) before it stops; line 1 stays.
    fleet
        .remove_line(2, Duration::from_secs(2))
        .await
        .expect("removed");
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|(user, expires)| user == "1002" && *expires == 0),
        "{:?}",
        seen.lock().unwrap()
    );
    assert!(
        !seen
            .lock()
            .unwrap()
            .iter()
            .any(|(user, expires)| user == "1001" && *expires == 0),
        "line 1 keeps its binding"
    );
    assert_eq!(fleet.line_indexes(), [1]);
    assert!(matches!(
        fleet.register_now(2).await,
        Err(ControlError::UnknownLine(2))
    ));
    assert!(fleet.ready(1.0));
    // It can be added again under the same index.
    assert_eq!(fleet.add_line_text(&line_text(2, port)).expect("again"), 2);
    wait_for("line 2 registered again", || fleet.ready(1.0)).await;
    fleet.shutdown(Duration::from_secs(2)).await;
}
