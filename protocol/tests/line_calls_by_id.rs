//! Calls addressed by Call-ID (`Command::OnCall`, the control API's form)
//! on a whole line in virtual time: with two calls up, the command acts on
//! the call it names, never on "the newest" or "the oldest" the stdin
//! commands pick.

mod line_support;

use line_support::*;
use sipfleet_protocol::call::{CallError, CallState};
use sipfleet_protocol::line::{CallAction, CallCommandError, Command, Input, LineFeatures};
use sipfleet_protocol::message::{Message, Method};
use sipfleet_protocol::registration::RegistrationSettings;
use sipfleet_protocol::route::{FlowKey, Transport};

fn registered() -> LineSim {
    let routes = vec![route(1, Transport::Udp), route(2, Transport::Udp)];
    let mut sim = LineSim::new(
        setup(RegistrationSettings::default(), LineFeatures::default()),
        routes,
    );
    sim.start();
    sim.register_ok(3600);
    sim
}

fn on(call_id: &str, action: CallAction) -> Command {
    Command::OnCall {
        call_id: call_id.to_owned(),
        action,
    }
}

/// The established call placed to `target`; answers its Call-ID.
fn established_call(sim: &mut LineSim, target: &str) -> String {
    let id = sim.command(Command::Call {
        target: target.into(),
    });
    sim.ok_to(Method::Invite);
    id
}

fn states(sim: &LineSim) -> Vec<(String, CallState)> {
    sim.line
        .status()
        .calls
        .into_iter()
        .map(|c| (c.call_id, c.state))
        .collect()
}

#[test]
fn hanging_up_the_first_of_two_calls_by_id_leaves_the_second_up() {
    let mut sim = registered();
    sim.run_until(1_000);
    let first = established_call(&mut sim, "sip:2000@example.com");
    sim.run_until(2_000);
    let second = established_call(&mut sim, "sip:3000@example.com");
    assert_ne!(first, second);
    assert_eq!(
        states(&sim),
        [
            (first.clone(), CallState::Established),
            (second.clone(), CallState::Established)
        ]
    );
    let status = sim.line.status();
    assert_eq!(status.calls[0].remote, "<sip:2000@example.com>");
    assert_eq!(status.calls[1].remote, "<sip:3000@example.com>");
    assert_eq!(status.calls[0].route.host, "sbc1.example.com");

    // `Hangup` would end the newest (the second); by id, the first ends.
    sim.run_until(3_000);
    assert_eq!(sim.command(on(&first, CallAction::Hangup)), first);
    let (_, bye) = sim.last("BYE");
    assert_eq!(bye.headers().call_id().unwrap(), first);
    sim.ok_to(Method::Bye);
    assert_eq!(states(&sim), [(second.clone(), CallState::Established)]);
    assert!(
        sim.log_since(3_000)
            .iter()
            .filter(|l| l.contains("call_ended"))
            .count()
            == 1,
        "{:#?}",
        sim.log
    );

    // The second is still addressable: hold, resume, hang up.
    sim.command(on(&second, CallAction::Hold));
    let (_, reinvite) = sim.last("INVITE");
    assert_eq!(reinvite.headers().call_id().unwrap(), second);
    assert!(String::from_utf8_lossy(reinvite.body()).contains("a=sendonly"));
    sim.ok_to(Method::Invite);
    assert!(sim.line.status().calls[0].held);
    sim.command(on(&second, CallAction::Resume));
    sim.ok_to(Method::Invite);
    assert!(!sim.line.status().calls[0].held);
    sim.command(on(&second, CallAction::Hangup));
    sim.ok_to(Method::Bye);
    assert!(states(&sim).is_empty());
}

#[test]
fn an_unknown_or_ended_call_id_is_an_error_that_names_it_and_changes_nothing() {
    let mut sim = registered();
    let id = established_call(&mut sim, "sip:2000@example.com");
    let sent = sim.sent.len();
    let now = sim.now;
    let err = sim
        .line
        .command(now, on("nope@example.com", CallAction::Hangup))
        .unwrap_err();
    assert!(
        matches!(&err, CallCommandError::UnknownCall(c) if c == "nope@example.com"),
        "{err:?}"
    );
    assert!(err.to_string().contains("nope@example.com"), "{err}");
    // A call in the wrong state for the action: the call machine says so.
    let err = sim
        .line
        .command(now, on(&id, CallAction::Answer))
        .unwrap_err();
    assert!(
        matches!(
            err,
            CallCommandError::Call(CallError::WrongState {
                command: "answer",
                ..
            })
        ),
        "{err:?}"
    );
    sim.pump();
    assert_eq!(sim.sent.len(), sent, "nothing sent");
    assert_eq!(states(&sim), [(id, CallState::Established)]);
}

fn invite(n: u8) -> Message {
    let text = format!(
        "INVITE sip:1001@127.0.0.1:40000 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.11:5060;branch=z9hG4bK-in{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:200{n}@example.com>;tag=far{n}\r\n\
         To: <sip:1001@example.com>\r\n\
         Call-ID: in-{n}@example.com\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:200{n}@10.0.0.2:5060>\r\n\
         Content-Length: 0\r\n\r\n"
    );
    Message::parse(text.into_bytes()).unwrap()
}

#[test]
fn answering_the_newer_of_two_ringing_calls_by_id_leaves_the_older_ringing() {
    let mut sim = registered();
    for n in [1, 2] {
        sim.input(Input::Received {
            flow: FlowKey::of(&route(1, Transport::Udp)),
            message: invite(n),
        });
    }
    assert_eq!(
        states(&sim),
        [
            ("in-1@example.com".to_owned(), CallState::Incoming),
            ("in-2@example.com".to_owned(), CallState::Incoming)
        ]
    );
    // `Answer` would take the oldest; by id, the newer is answered.
    sim.command(on("in-2@example.com", CallAction::Answer));
    let (_, ok) = sim.last("200");
    assert_eq!(ok.headers().call_id().unwrap(), "in-2@example.com");
    assert_eq!(
        states(&sim),
        [
            ("in-1@example.com".to_owned(), CallState::Incoming),
            ("in-2@example.com".to_owned(), CallState::Answering)
        ]
    );
    assert_eq!(sim.line.status().calls[1].remote, "<sip:2002@example.com>");
    // Hanging up the ringing one declines it (603); the answered one stays.
    sim.command(on("in-1@example.com", CallAction::Hangup));
    let (_, declined) = sim.last("603");
    assert_eq!(declined.headers().call_id().unwrap(), "in-1@example.com");
    assert_eq!(
        states(&sim),
        [("in-2@example.com".to_owned(), CallState::Answering)]
    );
}
