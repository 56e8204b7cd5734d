//! The JSON event stream, one event of every kind, against golden values
//! captured from the hand-written `event_json` before the events derived
//! `Serialize`: the schema in the README must not move when the way it is
//! produced does. Optional fields appear both set and unset.

use std::time::{Duration, Instant};

use serde_json::Value;
use sipfleet_actors::events::{
    event_json, event_text, DnsEvent, DnsEventKind, EventSink, LineEvent, LineEventBody,
    ResourceEvent,
};
use sipfleet_protocol::call::{CallDirection, CallEvent, CallEventKind, EndReason};
use sipfleet_protocol::line_seize::{LineSeizeEvent, LineSeizeOutcome};
use sipfleet_protocol::registration::{
    Event, EventKind, FailReason, FailbackHeldReason, InvalidationReason, Purpose, RouteFailReason,
    UnregisterReason,
};
use sipfleet_protocol::route::{Route, RouteSource, Transport};
use sipfleet_protocol::subscription::{EventPackage, SubscriptionEvent, SubscriptionEventKind};

fn udp() -> Route {
    Route {
        transport: Transport::Udp,
        host: "sbc1.lab.sipfleet.test".into(),
        addr: "127.0.0.11:5060".parse().unwrap(),
        group: 0,
        priority: 10,
        weight: 5,
        source: RouteSource::Network,
    }
}

fn tcp() -> Route {
    Route {
        transport: Transport::Tcp,
        host: "sbc2.lab.sipfleet.test".into(),
        addr: "127.0.0.12:5060".parse().unwrap(),
        group: 1,
        priority: 20,
        weight: 0,
        source: RouteSource::StaticCache,
    }
}

fn tls() -> Route {
    Route {
        transport: Transport::Tls,
        host: "sbc3.lab.sipfleet.test".into(),
        addr: "[::1]:5061".parse().unwrap(),
        group: 2,
        priority: 0,
        weight: 0,
        source: RouteSource::Restored,
    }
}

fn literal() -> Route {
    Route {
        transport: Transport::Udp,
        host: "10.0.0.1".into(),
        addr: "10.0.0.1:5070".parse().unwrap(),
        group: 0,
        priority: 0,
        weight: 0,
        source: RouteSource::Literal,
    }
}

fn reg(kind: EventKind, route: Option<Route>) -> LineEventBody {
    Event {
        kind,
        route,
        call_id: "reg-1@sipfleet".into(),
    }
    .into()
}

fn call(kind: CallEventKind) -> LineEventBody {
    CallEvent {
        kind,
        call_id: "call-1@sipfleet".into(),
        route: tcp(),
    }
    .into()
}

fn sub(kind: SubscriptionEventKind, package: EventPackage, route: Option<Route>) -> LineEventBody {
    SubscriptionEvent {
        kind,
        package,
        call_id: "sub-1@sipfleet".into(),
        route,
    }
    .into()
}

fn seize(outcome: LineSeizeOutcome) -> LineEventBody {
    LineSeizeEvent {
        outcome,
        call_id: "seize-1@sipfleet".into(),
        route: literal(),
    }
    .into()
}

/// One body of every event kind (and of every optional field set and not).
fn bodies() -> Vec<LineEventBody> {
    vec![
        reg(
            EventKind::Registering {
                cseq: 7,
                expires: 3600,
                purpose: Purpose::Failover,
            },
            Some(udp()),
        ),
        reg(
            EventKind::Registered {
                expires: Duration::from_millis(1_799_900),
                primary: true,
            },
            Some(udp()),
        ),
        reg(
            EventKind::RouteFailed {
                reason: RouteFailReason::ServiceUnavailable,
                detail: None,
            },
            Some(udp()),
        ),
        reg(
            EventKind::RouteFailed {
                reason: RouteFailReason::Tls,
                detail: Some("certificate verify failed (self-signed certificate)".into()),
            },
            Some(tls()),
        ),
        reg(EventKind::Failover { from: udp() }, Some(tcp())),
        reg(EventKind::Failback { from: tcp() }, Some(udp())),
        reg(
            EventKind::Backoff {
                wait: Duration::from_micros(7_321_999),
                failures: 3,
            },
            None,
        ),
        reg(
            EventKind::Unregistered {
                reason: UnregisterReason::KeepAliveLost,
            },
            Some(udp()),
        ),
        reg(
            EventKind::RegistrationFailed {
                status: Some(403),
                reason: FailReason::Denied,
            },
            Some(udp()),
        ),
        reg(
            EventKind::RegistrationFailed {
                status: None,
                reason: FailReason::RoutesExhausted,
            },
            None,
        ),
        reg(
            EventKind::SubscriptionsInvalidated {
                reason: InvalidationReason::FailoverStarted,
            },
            Some(udp()),
        ),
        reg(
            EventKind::FailbackHeld {
                reason: FailbackHeldReason::RequestInFlight,
            },
            Some(udp()),
        ),
        call(CallEventKind::Started {
            direction: CallDirection::Incoming,
            remote: "sip:1002@lab.sipfleet.test".into(),
        }),
        call(CallEventKind::Ringing),
        call(CallEventKind::Answered),
        call(CallEventKind::Established {
            remote_rtp: Some("127.0.0.1:40000".parse().unwrap()),
        }),
        call(CallEventKind::Established { remote_rtp: None }),
        call(CallEventKind::Held { by_remote: true }),
        call(CallEventKind::Resumed { by_remote: false }),
        call(CallEventKind::ReinviteFailed { status: 488 }),
        call(CallEventKind::RouteFailed { budget_over: true }),
        call(CallEventKind::Ended {
            reason: EndReason::RingTimeout,
            status: Some(480),
        }),
        call(CallEventKind::Ended {
            reason: EndReason::NoAck,
            status: None,
        }),
        sub(
            SubscriptionEventKind::Subscribed {
                expires: Duration::from_millis(3_599_999),
            },
            EventPackage::Dialog,
            Some(udp()),
        ),
        sub(
            SubscriptionEventKind::Refreshed {
                expires: Duration::from_secs(600),
            },
            EventPackage::MessageSummary,
            Some(udp()),
        ),
        sub(
            SubscriptionEventKind::Invalidated {
                reason: InvalidationReason::NewRegistrar,
            },
            EventPackage::CallInfo,
            None,
        ),
        sub(
            SubscriptionEventKind::Terminated {
                reason: "deactivated".into(),
                retry_in: Some(Duration::from_micros(1_500_700)),
            },
            EventPackage::LineSeize,
            Some(udp()),
        ),
        sub(
            SubscriptionEventKind::Terminated {
                reason: "unsubscribed".into(),
                retry_in: None,
            },
            EventPackage::Dialog,
            Some(udp()),
        ),
        sub(
            SubscriptionEventKind::Failed {
                status: Some(489),
                retry_in: Duration::from_secs(30),
            },
            EventPackage::Dialog,
            Some(udp()),
        ),
        sub(
            SubscriptionEventKind::Failed {
                status: None,
                retry_in: Duration::from_millis(250),
            },
            EventPackage::MessageSummary,
            None,
        ),
        sub(
            SubscriptionEventKind::Notified {
                state: "active;expires=3600".into(),
                content_type: Some("application/simple-message-summary".into()),
                body: bytes::Bytes::from_static(b"Messages-Waiting: yes\r\n"),
            },
            EventPackage::MessageSummary,
            Some(udp()),
        ),
        sub(
            SubscriptionEventKind::Notified {
                state: "terminated".into(),
                content_type: None,
                body: bytes::Bytes::from_static(b"caf\xc3\xa9 \xff"),
            },
            EventPackage::Dialog,
            Some(udp()),
        ),
        seize(LineSeizeOutcome::Seized),
        seize(LineSeizeOutcome::Refused { status: 403 }),
        seize(LineSeizeOutcome::TimedOut),
        seize(LineSeizeOutcome::TransportError),
        DnsEvent {
            kind: DnsEventKind::Failed,
            name: "_sip._udp.lab.sipfleet.test".into(),
            query_type: "SRV",
            error: "no response (timeout)".into(),
            call_id: "reg-1@sipfleet".into(),
        }
        .into(),
        DnsEvent {
            kind: DnsEventKind::Restored {
                ttl: Duration::from_micros(300_000_900),
            },
            name: "lab.sipfleet.test".into(),
            query_type: "NAPTR",
            error: "server unreachable".into(),
            call_id: "reg-1@sipfleet".into(),
        }
        .into(),
        ResourceEvent {
            resource: "sockets",
            max: 768,
            open: 767,
            refused: "outgoing_call",
            error: "exhausted".into(),
            call_id: "flood-1@sipfleet".into(),
            route: tcp(),
        }
        .into(),
    ]
}

fn events(start: Instant) -> Vec<LineEvent> {
    bodies()
        .into_iter()
        .enumerate()
        .map(|(i, event)| LineEvent {
            at: start + Duration::from_micros(1_000_777 * i as u64),
            line: i as u32 + 1,
            event,
        })
        .collect()
}

/// `event_json(..).to_string()` of [`events`], byte for byte, as
/// `sipfleet run --events json` printed them before the derive.
const GOLDEN_JSON: &[&str] = &[
    r#"{"call_id":"reg-1@sipfleet","cseq":7,"event":"registering","expires":3600,"line":1,"purpose":"failover","route":{"address":"127.0.0.11:5060","host":"sbc1.lab.sipfleet.test","source":"network","transport":"udp"},"t_ms":0}"#,
    r#"{"call_id":"reg-1@sipfleet","event":"registered","expires":1799,"line":2,"primary":true,"route":{"address":"127.0.0.11:5060","host":"sbc1.lab.sipfleet.test","source":"network","transport":"udp"},"t_ms":1000}"#,
    r#"{"call_id":"reg-1@sipfleet","event":"route_failed","line":3,"reason":"503","route":{"address":"127.0.0.11:5060","host":"sbc1.lab.sipfleet.test","source":"network","transport":"udp"},"t_ms":2001}"#,
    r#"{"call_id":"reg-1@sipfleet","detail":"certificate verify failed (self-signed certificate)","event":"route_failed","line":4,"reason":"tls","route":{"address":"[::1]:5061","host":"sbc3.lab.sipfleet.test","source":"restored","transport":"tls"},"t_ms":3002}"#,
    r#"{"call_id":"reg-1@sipfleet","event":"failover","from":{"address":"127.0.0.11:5060","host":"sbc1.lab.sipfleet.test","source":"network","transport":"udp"},"line":5,"route":{"address":"127.0.0.12:5060","host":"sbc2.lab.sipfleet.test","source":"static","transport":"tcp"},"t_ms":4003}"#,
    r#"{"call_id":"reg-1@sipfleet","event":"failback","from":{"address":"127.0.0.12:5060","host":"sbc2.lab.sipfleet.test","source":"static","transport":"tcp"},"line":6,"route":{"address":"127.0.0.11:5060","host":"sbc1.lab.sipfleet.test","source":"network","transport":"udp"},"t_ms":5003}"#,
    r#"{"call_id":"reg-1@sipfleet","event":"backoff","failures":3,"line":7,"route":null,"t_ms":6004,"wait_ms":7321}"#,
    r#"{"call_id":"reg-1@sipfleet","event":"unregistered","line":8,"reason":"keepalive_lost","route":{"address":"127.0.0.11:5060","host":"sbc1.lab.sipfleet.test","source":"network","transport":"udp"},"t_ms":7005}"#,
    r#"{"call_id":"reg-1@sipfleet","event":"registration_failed","line":9,"reason":"denied","route":{"address":"127.0.0.11:5060","host":"sbc1.lab.sipfleet.test","source":"network","transport":"udp"},"status":403,"t_ms":8006}"#,
    r#"{"call_id":"reg-1@sipfleet","event":"registration_failed","line":10,"reason":"routes_exhausted","route":null,"status":null,"t_ms":9006}"#,
    r#"{"call_id":"reg-1@sipfleet","event":"subscriptions_invalidated","line":11,"reason":"failover_started","route":{"address":"127.0.0.11:5060","host":"sbc1.lab.sipfleet.test","source":"network","transport":"udp"},"t_ms":10007}"#,
    r#"{"call_id":"reg-1@sipfleet","event":"failback_held","line":12,"reason":"request_in_flight","route":{"address":"127.0.0.11:5060","host":"sbc1.lab.sipfleet.test","source":"network","transport":"udp"},"t_ms":11008}"#,
    r#"{"call_id":"call-1@sipfleet","direction":"incoming","event":"call_started","line":13,"remote":"sip:1002@lab.sipfleet.test","route":{"address":"127.0.0.12:5060","host":"sbc2.lab.sipfleet.test","source":"static","transport":"tcp"},"t_ms":12009}"#,
    r#"{"call_id":"call-1@sipfleet","event":"call_ringing","line":14,"route":{"address":"127.0.0.12:5060","host":"sbc2.lab.sipfleet.test","source":"static","transport":"tcp"},"t_ms":13010}"#,
    r#"{"call_id":"call-1@sipfleet","event":"call_answered","line":15,"route":{"address":"127.0.0.12:5060","host":"sbc2.lab.sipfleet.test","source":"static","transport":"tcp"},"t_ms":14010}"#,
    r#"{"call_id":"call-1@sipfleet","event":"call_established","line":16,"remote_rtp":"127.0.0.1:40000","route":{"address":"127.0.0.12:5060","host":"sbc2.lab.sipfleet.test","source":"static","transport":"tcp"},"t_ms":15011}"#,
    r#"{"call_id":"call-1@sipfleet","event":"call_established","line":17,"remote_rtp":null,"route":{"address":"127.0.0.12:5060","host":"sbc2.lab.sipfleet.test","source":"static","transport":"tcp"},"t_ms":16012}"#,
    r#"{"by_remote":true,"call_id":"call-1@sipfleet","event":"call_held","line":18,"route":{"address":"127.0.0.12:5060","host":"sbc2.lab.sipfleet.test","source":"static","transport":"tcp"},"t_ms":17013}"#,
    r#"{"by_remote":false,"call_id":"call-1@sipfleet","event":"call_resumed","line":19,"route":{"address":"127.0.0.12:5060","host":"sbc2.lab.sipfleet.test","source":"static","transport":"tcp"},"t_ms":18013}"#,
    r#"{"call_id":"call-1@sipfleet","event":"call_reinvite_failed","line":20,"route":{"address":"127.0.0.12:5060","host":"sbc2.lab.sipfleet.test","source":"static","transport":"tcp"},"status":488,"t_ms":19014}"#,
    r#"{"budget_over":true,"call_id":"call-1@sipfleet","event":"call_route_failed","line":21,"route":{"address":"127.0.0.12:5060","host":"sbc2.lab.sipfleet.test","source":"static","transport":"tcp"},"t_ms":20015}"#,
    r#"{"call_id":"call-1@sipfleet","event":"call_ended","line":22,"reason":"ring_timeout","route":{"address":"127.0.0.12:5060","host":"sbc2.lab.sipfleet.test","source":"static","transport":"tcp"},"status":480,"t_ms":21016}"#,
    r#"{"call_id":"call-1@sipfleet","event":"call_ended","line":23,"reason":"no_ack","route":{"address":"127.0.0.12:5060","host":"sbc2.lab.sipfleet.test","source":"static","transport":"tcp"},"status":null,"t_ms":22017}"#,
    r#"{"call_id":"sub-1@sipfleet","event":"subscribed","expires":3599,"line":24,"package":"dialog","route":{"address":"127.0.0.11:5060","host":"sbc1.lab.sipfleet.test","source":"network","transport":"udp"},"t_ms":23017}"#,
    r#"{"call_id":"sub-1@sipfleet","event":"subscription_refreshed","expires":600,"line":25,"package":"message-summary","route":{"address":"127.0.0.11:5060","host":"sbc1.lab.sipfleet.test","source":"network","transport":"udp"},"t_ms":24018}"#,
    r#"{"call_id":"sub-1@sipfleet","event":"subscription_invalidated","line":26,"package":"call-info","reason":"new_registrar","route":null,"t_ms":25019}"#,
    r#"{"call_id":"sub-1@sipfleet","event":"subscription_terminated","line":27,"package":"line-seize","reason":"deactivated","retry_in_ms":1500,"route":{"address":"127.0.0.11:5060","host":"sbc1.lab.sipfleet.test","source":"network","transport":"udp"},"t_ms":26020}"#,
    r#"{"call_id":"sub-1@sipfleet","event":"subscription_terminated","line":28,"package":"dialog","reason":"unsubscribed","retry_in_ms":null,"route":{"address":"127.0.0.11:5060","host":"sbc1.lab.sipfleet.test","source":"network","transport":"udp"},"t_ms":27020}"#,
    r#"{"call_id":"sub-1@sipfleet","event":"subscription_failed","line":29,"package":"dialog","retry_in_ms":30000,"route":{"address":"127.0.0.11:5060","host":"sbc1.lab.sipfleet.test","source":"network","transport":"udp"},"status":489,"t_ms":28021}"#,
    r#"{"call_id":"sub-1@sipfleet","event":"subscription_failed","line":30,"package":"message-summary","retry_in_ms":250,"route":null,"status":null,"t_ms":29022}"#,
    r#"{"body":"Messages-Waiting: yes\r\n","call_id":"sub-1@sipfleet","content_type":"application/simple-message-summary","event":"subscription_notify","line":31,"package":"message-summary","route":{"address":"127.0.0.11:5060","host":"sbc1.lab.sipfleet.test","source":"network","transport":"udp"},"state":"active;expires=3600","t_ms":30023}"#,
    r#"{"body":"café �","call_id":"sub-1@sipfleet","content_type":null,"event":"subscription_notify","line":32,"package":"dialog","route":{"address":"127.0.0.11:5060","host":"sbc1.lab.sipfleet.test","source":"network","transport":"udp"},"state":"terminated","t_ms":31024}"#,
    r#"{"call_id":"seize-1@sipfleet","event":"line_seized","line":33,"outcome":"seized","route":{"address":"10.0.0.1:5070","host":"10.0.0.1","source":"literal","transport":"udp"},"status":null,"t_ms":32024}"#,
    r#"{"call_id":"seize-1@sipfleet","event":"line_seize_failed","line":34,"outcome":"refused","route":{"address":"10.0.0.1:5070","host":"10.0.0.1","source":"literal","transport":"udp"},"status":403,"t_ms":33025}"#,
    r#"{"call_id":"seize-1@sipfleet","event":"line_seize_failed","line":35,"outcome":"timeout","route":{"address":"10.0.0.1:5070","host":"10.0.0.1","source":"literal","transport":"udp"},"status":null,"t_ms":34026}"#,
    r#"{"call_id":"seize-1@sipfleet","event":"line_seize_failed","line":36,"outcome":"transport_error","route":{"address":"10.0.0.1:5070","host":"10.0.0.1","source":"literal","transport":"udp"},"status":null,"t_ms":35027}"#,
    r#"{"call_id":"reg-1@sipfleet","error":"no response (timeout)","event":"dns_failed","line":37,"name":"_sip._udp.lab.sipfleet.test","query_type":"SRV","route":null,"t_ms":36027}"#,
    r#"{"call_id":"reg-1@sipfleet","error":"server unreachable","event":"dns_restored","line":38,"name":"lab.sipfleet.test","query_type":"NAPTR","route":null,"t_ms":37028,"ttl_ms":300000}"#,
    r#"{"call_id":"flood-1@sipfleet","error":"exhausted","event":"resource_exhausted","line":39,"max":768,"open":767,"refused":"outgoing_call","resource":"sockets","route":{"address":"127.0.0.12:5060","host":"sbc2.lab.sipfleet.test","source":"static","transport":"tcp"},"t_ms":38029}"#,
];

/// `event_text` of [`events`], as `--events text` printed them.
const GOLDEN_TEXT: &[&str] = &[
    "    0.000s  line 1   registering               udp 127.0.0.11:5060 (sbc1.lab.sipfleet.test)  cseq=7 expires=3600 purpose=failover",
    "    1.001s  line 2   registered                udp 127.0.0.11:5060 (sbc1.lab.sipfleet.test)  expires=1799 primary=true",
    "    2.002s  line 3   route_failed              udp 127.0.0.11:5060 (sbc1.lab.sipfleet.test)  reason=503",
    "    3.002s  line 4   route_failed              tls [::1]:5061 (sbc3.lab.sipfleet.test)       detail=certificate verify failed (self-signed certificate) reason=tls",
    "    4.003s  line 5   failover                  tcp 127.0.0.12:5060 (sbc2.lab.sipfleet.test)  from=127.0.0.11:5060",
    "    5.004s  line 6   failback                  udp 127.0.0.11:5060 (sbc1.lab.sipfleet.test)  from=127.0.0.12:5060",
    "    6.005s  line 7   backoff                   -                                             failures=3 wait_ms=7321",
    "    7.005s  line 8   unregistered              udp 127.0.0.11:5060 (sbc1.lab.sipfleet.test)  reason=keepalive_lost",
    "    8.006s  line 9   registration_failed       udp 127.0.0.11:5060 (sbc1.lab.sipfleet.test)  reason=denied status=403",
    "    9.007s  line 10  registration_failed       -                                             reason=routes_exhausted status=null",
    "   10.008s  line 11  subscriptions_invalidated udp 127.0.0.11:5060 (sbc1.lab.sipfleet.test)  reason=failover_started",
    "   11.009s  line 12  failback_held             udp 127.0.0.11:5060 (sbc1.lab.sipfleet.test)  reason=request_in_flight",
    "   12.009s  line 13  call_started              tcp 127.0.0.12:5060 (sbc2.lab.sipfleet.test)  direction=incoming remote=sip:1002@lab.sipfleet.test",
    "   13.010s  line 14  call_ringing              tcp 127.0.0.12:5060 (sbc2.lab.sipfleet.test)  ",
    "   14.011s  line 15  call_answered             tcp 127.0.0.12:5060 (sbc2.lab.sipfleet.test)  ",
    "   15.012s  line 16  call_established          tcp 127.0.0.12:5060 (sbc2.lab.sipfleet.test)  remote_rtp=127.0.0.1:40000",
    "   16.012s  line 17  call_established          tcp 127.0.0.12:5060 (sbc2.lab.sipfleet.test)  remote_rtp=null",
    "   17.013s  line 18  call_held                 tcp 127.0.0.12:5060 (sbc2.lab.sipfleet.test)  by_remote=true",
    "   18.014s  line 19  call_resumed              tcp 127.0.0.12:5060 (sbc2.lab.sipfleet.test)  by_remote=false",
    "   19.015s  line 20  call_reinvite_failed      tcp 127.0.0.12:5060 (sbc2.lab.sipfleet.test)  status=488",
    "   20.016s  line 21  call_route_failed         tcp 127.0.0.12:5060 (sbc2.lab.sipfleet.test)  budget_over=true",
    "   21.016s  line 22  call_ended                tcp 127.0.0.12:5060 (sbc2.lab.sipfleet.test)  reason=ring_timeout status=480",
    "   22.017s  line 23  call_ended                tcp 127.0.0.12:5060 (sbc2.lab.sipfleet.test)  reason=no_ack status=null",
    "   23.018s  line 24  subscribed                udp 127.0.0.11:5060 (sbc1.lab.sipfleet.test)  expires=3599 package=dialog",
    "   24.019s  line 25  subscription_refreshed    udp 127.0.0.11:5060 (sbc1.lab.sipfleet.test)  expires=600 package=message-summary",
    "   25.019s  line 26  subscription_invalidated  -                                             package=call-info reason=new_registrar",
    "   26.020s  line 27  subscription_terminated   udp 127.0.0.11:5060 (sbc1.lab.sipfleet.test)  package=line-seize reason=deactivated retry_in_ms=1500",
    "   27.021s  line 28  subscription_terminated   udp 127.0.0.11:5060 (sbc1.lab.sipfleet.test)  package=dialog reason=unsubscribed retry_in_ms=null",
    "   28.022s  line 29  subscription_failed       udp 127.0.0.11:5060 (sbc1.lab.sipfleet.test)  package=dialog retry_in_ms=30000 status=489",
    "   29.023s  line 30  subscription_failed       -                                             package=message-summary retry_in_ms=250 status=null",
    "   30.023s  line 31  subscription_notify       udp 127.0.0.11:5060 (sbc1.lab.sipfleet.test)  body=Messages-Waiting: yes\r\n content_type=application/simple-message-summary package=message-summary state=active;expires=3600",
    "   31.024s  line 32  subscription_notify       udp 127.0.0.11:5060 (sbc1.lab.sipfleet.test)  body=café � content_type=null package=dialog state=terminated",
    "   32.025s  line 33  line_seized               udp 10.0.0.1:5070 (10.0.0.1)                  outcome=seized status=null",
    "   33.026s  line 34  line_seize_failed         udp 10.0.0.1:5070 (10.0.0.1)                  outcome=refused status=403",
    "   34.026s  line 35  line_seize_failed         udp 10.0.0.1:5070 (10.0.0.1)                  outcome=timeout status=null",
    "   35.027s  line 36  line_seize_failed         udp 10.0.0.1:5070 (10.0.0.1)                  outcome=transport_error status=null",
    "   36.028s  line 37  dns_failed                -                                             error=no response (timeout) name=_sip._udp.lab.sipfleet.test query_type=SRV",
    "   37.029s  line 38  dns_restored              -                                             error=server unreachable name=lab.sipfleet.test query_type=NAPTR ttl_ms=300000",
    "   38.030s  line 39  resource_exhausted        tcp 127.0.0.12:5060 (sbc2.lab.sipfleet.test)  error=exhausted max=768 open=767 refused=outgoing_call resource=sockets",
];

#[test]
fn every_event_kind_renders_the_golden_json() {
    let start = Instant::now();
    let events = events(start);
    assert_eq!(events.len(), GOLDEN_JSON.len());
    for (event, golden) in events.iter().zip(GOLDEN_JSON) {
        let got = event_json(event, start);
        let want: Value = serde_json::from_str(golden).unwrap();
        assert_eq!(got, want, "{}", event.event.name());
        // Byte for byte: same keys, same order, same numbers.
        assert_eq!(got.to_string(), *golden, "{}", event.event.name());
    }
}

/// A writer the test can read back.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The stream (`--events json`) serializes each event straight into its
/// writer, without a `Value` in between: the same objects, one per line
/// (keys in the types' field order rather than sorted).
#[test]
fn the_json_stream_writes_the_golden_objects_one_per_line() {
    let start = Instant::now();
    let events = events(start);
    let captured = Captured::default();
    let sink = EventSink::json(Box::new(captured.clone()), start).unwrap();
    for event in &events {
        sink.emit(event.clone());
    }
    sink.flush();
    let bytes = captured.0.lock().unwrap().clone();
    let text = String::from_utf8(bytes).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), GOLDEN_JSON.len());
    for ((line, golden), event) in lines.iter().zip(GOLDEN_JSON).zip(&events) {
        let got: Value = serde_json::from_str(line).unwrap();
        let want: Value = serde_json::from_str(golden).unwrap();
        assert_eq!(got, want, "{}", event.event.name());
    }
}

#[test]
fn every_event_kind_renders_the_golden_text() {
    let start = Instant::now();
    let events = events(start);
    assert_eq!(events.len(), GOLDEN_TEXT.len());
    for (event, golden) in events.iter().zip(GOLDEN_TEXT) {
        assert_eq!(event_text(event, start), *golden);
    }
}

/// Every event name of the README's table is covered above.
#[test]
fn the_golden_events_cover_every_documented_event_name() {
    let mut names: Vec<&str> = bodies().iter().map(LineEventBody::name).collect();
    names.sort_unstable();
    names.dedup();
    let documented = [
        "backoff",
        "call_answered",
        "call_ended",
        "call_established",
        "call_held",
        "call_reinvite_failed",
        "call_resumed",
        "call_ringing",
        "call_route_failed",
        "call_started",
        "dns_failed",
        "dns_restored",
        "failback",
        "failback_held",
        "failover",
        "line_seize_failed",
        "line_seized",
        "registered",
        "registering",
        "registration_failed",
        "resource_exhausted",
        "route_failed",
        "subscribed",
        "subscription_failed",
        "subscription_invalidated",
        "subscription_notify",
        "subscription_refreshed",
        "subscription_terminated",
        "subscriptions_invalidated",
        "unregistered",
    ];
    assert_eq!(names, documented);
}

/// Events that differ in one enum value, with the field that shows it.
fn value_bodies() -> Vec<(LineEventBody, &'static str)> {
    let mut v = Vec::new();
    for purpose in [
        Purpose::Initial,
        Purpose::Refresh,
        Purpose::Failover,
        Purpose::Failback,
        Purpose::Authenticate,
        Purpose::MinExpires,
        Purpose::Unregister,
    ] {
        let kind = EventKind::Registering {
            cseq: 1,
            expires: 60,
            purpose,
        };
        v.push((reg(kind, Some(udp())), "purpose"));
    }
    for reason in [
        RouteFailReason::Icmp,
        RouteFailReason::Refused,
        RouteFailReason::Tls,
        RouteFailReason::Timeout,
        RouteFailReason::ServiceUnavailable,
        RouteFailReason::FlowLost,
        RouteFailReason::KeepAliveLost,
        RouteFailReason::RemovedFromDns,
    ] {
        let kind = EventKind::RouteFailed {
            reason,
            detail: None,
        };
        v.push((reg(kind, Some(udp())), "reason"));
    }
    for reason in [
        UnregisterReason::FailoverStarted,
        UnregisterReason::Rejected,
        UnregisterReason::FlowLost,
        UnregisterReason::KeepAliveLost,
        UnregisterReason::Expired,
        UnregisterReason::Failback,
        UnregisterReason::Shutdown,
        UnregisterReason::UnregisterUnconfirmed,
    ] {
        v.push((
            reg(EventKind::Unregistered { reason }, Some(udp())),
            "reason",
        ));
    }
    for reason in [
        FailReason::RoutesExhausted,
        FailReason::Denied,
        FailReason::CredentialsRejected,
        FailReason::UnsupportedChallenge,
        FailReason::StaleNonceLoop,
        FailReason::IntervalTooBrief,
        FailReason::ZeroExpires,
        FailReason::BindingMissing,
        FailReason::RequestNotBuilt,
    ] {
        let kind = EventKind::RegistrationFailed {
            status: None,
            reason,
        };
        v.push((reg(kind, None), "reason"));
    }
    for reason in [
        InvalidationReason::FailoverStarted,
        InvalidationReason::NewRegistrar,
        InvalidationReason::Unregistered,
    ] {
        let kind = EventKind::SubscriptionsInvalidated { reason };
        v.push((reg(kind, Some(udp())), "reason"));
        let kind = SubscriptionEventKind::Invalidated { reason };
        v.push((sub(kind, EventPackage::Dialog, None), "reason"));
    }
    for reason in [
        FailbackHeldReason::CallActive,
        FailbackHeldReason::RequestInFlight,
    ] {
        v.push((
            reg(EventKind::FailbackHeld { reason }, Some(udp())),
            "reason",
        ));
    }
    for direction in [CallDirection::Outgoing, CallDirection::Incoming] {
        let kind = CallEventKind::Started {
            direction,
            remote: "sip:x@y".into(),
        };
        v.push((call(kind), "direction"));
    }
    for reason in [
        EndReason::LocalHangup,
        EndReason::RemoteHangup,
        EndReason::Cancelled,
        EndReason::RemoteCancelled,
        EndReason::Declined,
        EndReason::Rejected,
        EndReason::Timeout,
        EndReason::NoAck,
        EndReason::AuthFailed,
        EndReason::RegistrarChanged,
        EndReason::DialogGone,
        EndReason::TransportError,
        EndReason::RingTimeout,
        EndReason::ResourceLimit,
    ] {
        let kind = CallEventKind::Ended {
            reason,
            status: None,
        };
        v.push((call(kind), "reason"));
    }
    for package in [
        EventPackage::Dialog,
        EventPackage::MessageSummary,
        EventPackage::CallInfo,
        EventPackage::LineSeize,
    ] {
        let kind = SubscriptionEventKind::Refreshed {
            expires: Duration::from_secs(60),
        };
        v.push((sub(kind, package, Some(udp())), "package"));
    }
    v
}

/// `(event, field, value)` of [`value_bodies`]: every purpose, reason,
/// direction and package as the stream spells it.
const GOLDEN_VALUES: &[(&str, &str, &str)] = &[
    ("registering", "purpose", "initial"),
    ("registering", "purpose", "refresh"),
    ("registering", "purpose", "failover"),
    ("registering", "purpose", "failback"),
    ("registering", "purpose", "authenticate"),
    ("registering", "purpose", "min_expires"),
    ("registering", "purpose", "unregister"),
    ("route_failed", "reason", "icmp"),
    ("route_failed", "reason", "refused"),
    ("route_failed", "reason", "tls"),
    ("route_failed", "reason", "timeout"),
    ("route_failed", "reason", "503"),
    ("route_failed", "reason", "flow_lost"),
    ("route_failed", "reason", "keepalive_lost"),
    ("route_failed", "reason", "dns_removed"),
    ("unregistered", "reason", "failover_started"),
    ("unregistered", "reason", "rejected"),
    ("unregistered", "reason", "flow_lost"),
    ("unregistered", "reason", "keepalive_lost"),
    ("unregistered", "reason", "expired"),
    ("unregistered", "reason", "failback"),
    ("unregistered", "reason", "shutdown"),
    ("unregistered", "reason", "unregister_unconfirmed"),
    ("registration_failed", "reason", "routes_exhausted"),
    ("registration_failed", "reason", "denied"),
    ("registration_failed", "reason", "credentials_rejected"),
    ("registration_failed", "reason", "unsupported_challenge"),
    ("registration_failed", "reason", "stale_nonce_loop"),
    ("registration_failed", "reason", "interval_too_brief"),
    ("registration_failed", "reason", "zero_expires"),
    ("registration_failed", "reason", "binding_missing"),
    ("registration_failed", "reason", "request_not_built"),
    ("subscriptions_invalidated", "reason", "failover_started"),
    ("subscription_invalidated", "reason", "failover_started"),
    ("subscriptions_invalidated", "reason", "new_registrar"),
    ("subscription_invalidated", "reason", "new_registrar"),
    ("subscriptions_invalidated", "reason", "unregistered"),
    ("subscription_invalidated", "reason", "unregistered"),
    ("failback_held", "reason", "call_active"),
    ("failback_held", "reason", "request_in_flight"),
    ("call_started", "direction", "outgoing"),
    ("call_started", "direction", "incoming"),
    ("call_ended", "reason", "local_hangup"),
    ("call_ended", "reason", "remote_hangup"),
    ("call_ended", "reason", "cancelled"),
    ("call_ended", "reason", "remote_cancelled"),
    ("call_ended", "reason", "declined"),
    ("call_ended", "reason", "rejected"),
    ("call_ended", "reason", "timeout"),
    ("call_ended", "reason", "no_ack"),
    ("call_ended", "reason", "auth_failed"),
    ("call_ended", "reason", "registrar_changed"),
    ("call_ended", "reason", "dialog_gone"),
    ("call_ended", "reason", "transport_error"),
    ("call_ended", "reason", "ring_timeout"),
    ("call_ended", "reason", "resource_limit"),
    ("subscription_refreshed", "package", "dialog"),
    ("subscription_refreshed", "package", "message-summary"),
    ("subscription_refreshed", "package", "call-info"),
    ("subscription_refreshed", "package", "line-seize"),
];

#[test]
fn every_enum_value_renders_the_golden_word() {
    let start = Instant::now();
    let bodies = value_bodies();
    assert_eq!(bodies.len(), GOLDEN_VALUES.len());
    for ((body, field), (event, golden_field, word)) in bodies.into_iter().zip(GOLDEN_VALUES) {
        let e = LineEvent {
            at: start,
            line: 1,
            event: body,
        };
        let v = event_json(&e, start);
        assert_eq!((v["event"].as_str(), field), (Some(*event), *golden_field));
        assert_eq!(v[field], *word, "{event} {field}");
    }
}
