//! The JSON the HTTP API answers, written once here so that each endpoint
//! is `fleet.method().await` serialized: [`LineDetail`] (`GET /v1/lines`,
//! `GET /v1/lines/{n}`), [`CallSummary`] (`GET /v1/calls`), and the status
//! code of each [`ControlError`].
//!
//! ```json
//! {"line":1,"state":"registered","phase":"registered","call_id":"...@sipfleet",
//!  "registered_route":{"transport":"udp","host":"sbc1...","address":"127.0.0.11:5060","source":"network"},
//!  "primary":{...},"expires":3600,"last_failure":null,"routes":[{...}],
//!  "register_retransmissions":0,
//!  "calls":[{"line":1,"call_id":"...","direction":"outgoing","state":"established","held":false,
//!            "remote":"<sip:9001@...>","route":{...},"rtp_sent":120,"rtp_received":118}],
//!  "subscriptions":[{"package":"message-summary","call_id":"...","last_event":"subscribed",
//!                    "expires":3600,"notify_state":null}]}
//! ```
//!
//! The `route` objects are those of the event stream.

use serde::ser::{Serialize, SerializeStruct, Serializer};
use sipfleet_protocol::call::CallState;
use sipfleet_protocol::line::CallInfo;
use sipfleet_protocol::registration::Phase;

use super::{CallSummary, ControlError, LineDetail};

/// The registration phase's JSON name.
pub fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::NotStarted => "not_started",
        Phase::WaitingForRoutes => "waiting_for_routes",
        Phase::Registering => "registering",
        Phase::AwaitingSlot => "awaiting_slot",
        Phase::Registered => "registered",
        Phase::BackingOff => "backing_off",
        Phase::Stopped => "stopped",
    }
}

/// The call state's JSON name.
pub fn call_state_name(state: CallState) -> &'static str {
    match state {
        CallState::Calling => "calling",
        CallState::Ringing => "ringing",
        CallState::Incoming => "incoming",
        CallState::Answering => "answering",
        CallState::Established => "established",
        CallState::Cancelling => "cancelling",
        CallState::Terminating => "terminating",
        CallState::Ended => "ended",
    }
}

fn call_fields<S: SerializeStruct>(s: &mut S, line: u32, call: &CallInfo) -> Result<(), S::Error> {
    s.serialize_field("line", &line)?;
    s.serialize_field("call_id", &call.call_id)?;
    s.serialize_field("direction", &call.direction)?;
    s.serialize_field("state", call_state_name(call.state))?;
    s.serialize_field("held", &call.held)?;
    s.serialize_field("remote", &call.remote)?;
    s.serialize_field("route", &call.route)?;
    s.serialize_field("rtp_sent", &call.rtp_sent)?;
    s.serialize_field("rtp_received", &call.rtp_received)
}

impl Serialize for CallSummary {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Call", 9)?;
        call_fields(&mut s, self.line, &self.call)?;
        s.end()
    }
}

/// One call of a line's detail (the line's index is the detail's).
struct LineCall<'a>(u32, &'a CallInfo);

impl Serialize for LineCall<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Call", 9)?;
        call_fields(&mut s, self.0, self.1)?;
        s.end()
    }
}

impl Serialize for LineDetail {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (status, view) = (&self.status, &self.view);
        let calls: Vec<LineCall> = status
            .calls
            .iter()
            .map(|c| LineCall(status.index, c))
            .collect();
        let mut s = serializer.serialize_struct("Line", 12)?;
        s.serialize_field("line", &status.index)?;
        s.serialize_field("state", &view.state)?;
        s.serialize_field("phase", phase_name(status.phase))?;
        s.serialize_field("call_id", &status.call_id)?;
        s.serialize_field("registered_route", &status.registered_route)?;
        s.serialize_field("primary", &status.primary)?;
        s.serialize_field("expires", &view.expires)?;
        s.serialize_field("last_failure", &view.last_failure)?;
        s.serialize_field("routes", &status.routes)?;
        s.serialize_field("calls", &calls)?;
        s.serialize_field("subscriptions", &view.subscriptions)?;
        s.serialize_field("register_retransmissions", &status.register_retransmissions)?;
        s.end()
    }
}

impl ControlError {
    /// The HTTP status an API answers this error with: 404 for an unknown
    /// line or call, 409 for a line that exists or a call whose state
    /// refuses the action, 400 for configuration text, 503 for a line
    /// that stopped, 502 for DNS.
    pub fn http_status(&self) -> u16 {
        match self {
            ControlError::UnknownLine(_) | ControlError::UnknownCall(_) => 404,
            ControlError::LineExists(_) | ControlError::Call { .. } => 409,
            ControlError::Config(_) | ControlError::LineCount { .. } | ControlError::Setup(_) => {
                400
            }
            ControlError::LineStopped(_) => 503,
            ControlError::Routes { .. } => 502,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::{LineState, LineView};
    use sipfleet_protocol::call::CallDirection;
    use sipfleet_protocol::line::LineStatus;
    use sipfleet_protocol::route::{Route, RouteSource, Transport};

    fn route() -> Route {
        Route {
            transport: Transport::Udp,
            host: "sbc1.lab".into(),
            addr: "127.0.0.11:5060".parse().unwrap(),
            group: 0,
            priority: 10,
            weight: 0,
            source: RouteSource::Network,
        }
    }

    #[test]
    fn a_line_detail_serializes_to_the_documented_object() {
        let call = CallInfo {
            call_id: "c1".into(),
            direction: CallDirection::Outgoing,
            state: CallState::Established,
            held: true,
            rtp_sent: 5,
            rtp_received: 4,
            remote: "<sip:9001@lab>".into(),
            route: route(),
        };
        let detail = LineDetail {
            status: LineStatus {
                index: 3,
                phase: Phase::Registered,
                registered_route: Some(route()),
                primary: Some(route()),
                call_id: "r1".into(),
                routes: vec![route()],
                calls: vec![call.clone()],
                register_retransmissions: 2,
            },
            view: LineView {
                state: LineState::Registered,
                expires: Some(120),
                ..LineView::default()
            },
        };
        let v = serde_json::to_value(&detail).unwrap();
        assert_eq!(v["line"], 3);
        assert_eq!(v["state"], "registered");
        assert_eq!(v["phase"], "registered");
        assert_eq!(v["expires"], 120);
        assert_eq!(v["last_failure"], serde_json::Value::Null);
        assert_eq!(v["registered_route"]["address"], "127.0.0.11:5060");
        assert_eq!(v["routes"][0]["host"], "sbc1.lab");
        assert_eq!(v["calls"][0]["line"], 3);
        assert_eq!(v["calls"][0]["state"], "established");
        assert_eq!(v["calls"][0]["direction"], "outgoing");
        assert_eq!(v["calls"][0]["held"], true);
        assert_eq!(v["calls"][0]["remote"], "<sip:9001@lab>");
        assert_eq!(v["subscriptions"], serde_json::json!([]));
        let summary = serde_json::to_value(CallSummary { line: 3, call }).unwrap();
        assert_eq!(summary, v["calls"][0]);
    }

    #[test]
    fn errors_map_to_http_statuses() {
        assert_eq!(ControlError::UnknownLine(2).http_status(), 404);
        assert_eq!(ControlError::UnknownCall("x".into()).http_status(), 404);
        assert_eq!(ControlError::LineExists(2).http_status(), 409);
        assert_eq!(ControlError::LineCount { found: 2 }.http_status(), 400);
        assert_eq!(ControlError::LineStopped(2).http_status(), 503);
    }
}
