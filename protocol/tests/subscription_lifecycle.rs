//! Subscriptions: SUBSCRIBE on the registered route, 2xx and NOTIFY,
//! refresh before expiry, challenges, failures, terminating NOTIFYs, and
//! the guide's rule: invalidated when the registration moves, re-created
//! on the new SBC at once. Virtual time, to the ms.

mod call_support;

use call_support::*;
use sipfleet_protocol::message::{HeaderName, Method};
use sipfleet_protocol::registration::InvalidationReason;
use sipfleet_protocol::route::Transport;
use sipfleet_protocol::subscription::{EventPackage, SubscriptionState};

const BLF: &str = "sip:1002@example.com";
const CHALLENGE: &str = "Digest realm=\"example.com\", nonce=\"n1\", qop=\"auth\"";

fn r(n: u8) -> sipfleet_protocol::route::Route {
    route(n, Transport::Udp)
}

/// Subscribed on route 1, granted 600 s at 100 ms.
fn subscribed() -> (SubSim, sipfleet_protocol::message::Message) {
    let mut sim = SubSim::new(EventPackage::Dialog, BLF);
    sim.input(|s, now| s.registered_on(now, &r(1), local()));
    let subscribe = sim.last_sent();
    sim.clock.now = sim.clock.at(100);
    sim.deliver(&respond(
        &subscribe,
        200,
        Some("notifier"),
        &[
            (HeaderName::Expires, "600"),
            (HeaderName::Contact, "<sip:notifier@10.0.0.3:5060>"),
        ],
        None,
    ));
    (sim, subscribe)
}

#[test]
fn subscribe_on_the_registered_route_then_refresh_32_s_before_expiry() {
    let (mut sim, subscribe) = subscribed();
    let req = request(&subscribe);
    assert_eq!(req.method(), &Method::Subscribe);
    assert_eq!(req.uri_str(), BLF);
    let h = req.headers();
    assert_eq!(h.get(HeaderName::Event), Some("dialog"));
    assert_eq!(h.expires().unwrap(), Some(3600));
    assert_eq!(
        h.get(HeaderName::Accept),
        Some("application/dialog-info+xml")
    );
    assert_eq!(h.cseq().unwrap().seq, 1);
    assert_eq!(sent(&sim.seen)[0].1, r(1));
    assert_eq!(sim.sub.state(), SubscriptionState::Active);
    sim.run_until(568_099);
    assert_eq!(sent(&sim.seen).len(), 1);
    sim.run_until(568_100);
    let refresh = sim.last_sent();
    let rh = refresh.headers();
    assert_eq!(rh.call_id().unwrap(), h.call_id().unwrap());
    assert_eq!(rh.cseq().unwrap().seq, 2);
    assert_eq!(rh.to().unwrap().tag(), Some("notifier"));
    assert_eq!(request(&refresh).uri_str(), "sip:notifier@10.0.0.3:5060");
    sim.deliver(&respond(
        &refresh,
        200,
        None,
        &[(HeaderName::Expires, "600")],
        None,
    ));
    assert_eq!(
        events(&sim.seen),
        vec![
            "100 subscribed sbc1.example.com 600s",
            "568100 subscription_refreshed sbc1.example.com 600s"
        ]
    );
}

#[test]
fn notify_is_answered_and_reported_and_may_shorten_the_subscription() {
    let (mut sim, subscribe) = subscribed();
    sim.take();
    sim.clock.now = sim.clock.at(200);
    let body = "<dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\"/>";
    let n = notify(
        &subscribe,
        "notifier",
        1,
        "dialog",
        "active;expires=120",
        Some(("application/dialog-info+xml", body)),
    );
    sim.deliver(&n);
    assert_eq!(wire(&sim.seen), vec!["200 200 1 NOTIFY"]);
    let ok = sim.last_sent();
    assert_eq!(
        ok.headers().to().unwrap().tag(),
        subscribe.headers().from().unwrap().tag()
    );
    assert_eq!(
        events(&sim.seen),
        vec!["200 subscription_notify sbc1.example.com active"]
    );
    // Refresh 32 s before the shorter expiry: 200 + 88 000.
    assert_eq!(sim.sub.poll_timeout(), Some(sim.clock.at(88_200)));
    // Wrong tag: 481; wrong package: 489.
    sim.take();
    sim.deliver(&notify(&subscribe, "intruder", 2, "dialog", "active", None));
    sim.deliver(&notify(
        &subscribe, "notifier", 3, "presence", "active", None,
    ));
    assert_eq!(
        wire(&sim.seen),
        vec!["200 481 2 NOTIFY", "200 489 3 NOTIFY"]
    );
}

#[test]
fn a_notify_before_the_2xx_confirms_the_dialog() {
    let mut sim = SubSim::new(EventPackage::MessageSummary, "sip:1001@example.com");
    sim.input(|s, now| s.registered_on(now, &r(1), local()));
    let subscribe = sim.last_sent();
    assert_eq!(
        subscribe.headers().get(HeaderName::Event),
        Some("message-summary")
    );
    sim.deliver(&notify(
        &subscribe,
        "mwi",
        1,
        "message-summary",
        "active;expires=3600",
        Some((
            "application/simple-message-summary",
            "Messages-Waiting: yes\r\n",
        )),
    ));
    assert_eq!(wire(&sim.seen)[1], "0 200 1 NOTIFY");
    assert_eq!(sim.sub.state(), SubscriptionState::Active);
    sim.deliver(&respond(
        &subscribe,
        202,
        Some("mwi"),
        &[(HeaderName::Expires, "3600")],
        None,
    ));
    // The refresh goes to the NOTIFY's Contact with the notifier's tag.
    sim.run_until(3_568_000);
    let refresh = sim.last_sent();
    assert_eq!(request(&refresh).uri_str(), "sip:notifier@10.0.0.3:5060");
    assert_eq!(refresh.headers().to().unwrap().tag(), Some("mwi"));
}

#[test]
fn invalidated_by_a_new_registrar_and_recreated_there_at_once() {
    let (mut sim, subscribe) = subscribed();
    sim.take();
    sim.clock.now = sim.clock.at(10_000);
    sim.input(|s, _| s.invalidate(InvalidationReason::NewRegistrar));
    assert!(sent(&sim.seen).is_empty(), "nothing goes to the old SBC");
    assert_eq!(sim.sub.state(), SubscriptionState::Idle);
    assert_eq!(sim.sub.poll_timeout(), None);
    sim.input(|s, now| s.registered_on(now, &r(2), local()));
    let again = sim.last_sent();
    assert_eq!(sent(&sim.seen)[0].1, r(2));
    assert_ne!(
        again.headers().call_id().unwrap(),
        subscribe.headers().call_id().unwrap(),
        "a new dialog"
    );
    assert_eq!(again.headers().to().unwrap().tag(), None);
    assert_eq!(again.headers().cseq().unwrap().seq, 1);
    assert_eq!(
        events(&sim.seen),
        vec!["10000 subscription_invalidated sbc1.example.com NewRegistrar"]
    );
    assert_eq!(wire(&sim.seen), vec!["10000 SUBSCRIBE 1 SUBSCRIBE"]);
}

#[test]
fn registered_on_another_route_invalidates_and_resubscribes_and_the_same_route_changes_nothing() {
    let (mut sim, _) = subscribed();
    sim.take();
    sim.input(|s, now| s.registered_on(now, &r(1), local()));
    assert!(sim.seen.is_empty());
    sim.input(|s, now| s.registered_on(now, &r(3), local()));
    assert_eq!(
        events(&sim.seen),
        vec!["100 subscription_invalidated sbc1.example.com NewRegistrar"]
    );
    assert_eq!(sent(&sim.seen)[0].1, r(3));
}

#[test]
fn failover_start_invalidates_with_its_reason() {
    let (mut sim, _) = subscribed();
    sim.take();
    sim.input(|s, _| s.invalidate(InvalidationReason::FailoverStarted));
    assert_eq!(
        events(&sim.seen),
        vec!["100 subscription_invalidated sbc1.example.com FailoverStarted"]
    );
}

#[test]
fn a_407_is_answered_with_credentials_in_the_same_dialog() {
    let mut sim = SubSim::new(EventPackage::CallInfo, "sip:1001@example.com");
    sim.input(|s, now| s.registered_on(now, &r(1), local()));
    let first = sim.last_sent();
    assert_eq!(first.headers().get(HeaderName::Event), Some("call-info"));
    sim.deliver(&respond(
        &first,
        407,
        Some("p"),
        &[(HeaderName::ProxyAuthenticate, CHALLENGE)],
        None,
    ));
    let second = sim.last_sent();
    assert_eq!(
        second.headers().call_id().unwrap(),
        first.headers().call_id().unwrap()
    );
    assert_eq!(second.headers().cseq().unwrap().seq, 2);
    assert_ne!(branch(&second), branch(&first));
    assert!(second
        .headers()
        .get(HeaderName::ProxyAuthorization)
        .is_some());
    // Twice without stale: failure, retried later.
    sim.deliver(&respond(
        &second,
        407,
        Some("p"),
        &[(HeaderName::ProxyAuthenticate, CHALLENGE)],
        None,
    ));
    assert_eq!(
        events(&sim.seen),
        vec!["0 subscription_failed sbc1.example.com Some(407) retry=30s"]
    );
}

#[test]
fn a_silent_sbc_fails_the_subscribe_at_timer_f_and_it_is_retried_30_s_later() {
    let mut sim = SubSim::new(EventPackage::Dialog, BLF);
    sim.input(|s, now| s.registered_on(now, &r(1), local()));
    let first = sim.last_sent();
    sim.run_until(62_000);
    let w = wire(&sim.seen);
    assert_eq!(
        w,
        vec![
            "0 SUBSCRIBE 1 SUBSCRIBE",
            "500 SUBSCRIBE 1 SUBSCRIBE",
            "1500 SUBSCRIBE 1 SUBSCRIBE",
            "3500 SUBSCRIBE 1 SUBSCRIBE",
            "7500 SUBSCRIBE 1 SUBSCRIBE",
            "11500 SUBSCRIBE 1 SUBSCRIBE",
            "15500 SUBSCRIBE 1 SUBSCRIBE",
            "19500 SUBSCRIBE 1 SUBSCRIBE",
            "23500 SUBSCRIBE 1 SUBSCRIBE",
            "27500 SUBSCRIBE 1 SUBSCRIBE",
            "31500 SUBSCRIBE 1 SUBSCRIBE",
            "62000 SUBSCRIBE 1 SUBSCRIBE",
        ]
    );
    assert_eq!(
        events(&sim.seen),
        vec!["32000 subscription_failed sbc1.example.com None retry=30s"]
    );
    assert_ne!(
        sim.last_sent().headers().call_id().unwrap(),
        first.headers().call_id().unwrap()
    );
}

#[test]
fn terminating_notifies_follow_rfc_6665_retry_rules() {
    // deactivated: at once.
    let (mut sim, subscribe) = subscribed();
    sim.take();
    sim.deliver(&notify(
        &subscribe,
        "notifier",
        1,
        "dialog",
        "terminated;reason=deactivated",
        None,
    ));
    assert_eq!(
        wire(&sim.seen),
        vec!["100 200 1 NOTIFY", "100 SUBSCRIBE 1 SUBSCRIBE"]
    );
    assert_eq!(sim.sub.state(), SubscriptionState::Subscribing);
    // probation: after retry-after.
    let (mut sim, subscribe) = subscribed();
    sim.take();
    sim.deliver(&notify(
        &subscribe,
        "notifier",
        1,
        "dialog",
        "terminated;reason=probation;retry-after=60",
        None,
    ));
    sim.run_until(60_099);
    assert_eq!(wire(&sim.seen), vec!["100 200 1 NOTIFY"]);
    sim.run_until(60_100);
    assert_eq!(
        wire(&sim.seen),
        vec!["100 200 1 NOTIFY", "60100 SUBSCRIBE 1 SUBSCRIBE"]
    );
    // rejected: never.
    let (mut sim, subscribe) = subscribed();
    sim.take();
    sim.deliver(&notify(
        &subscribe,
        "notifier",
        1,
        "dialog",
        "terminated;reason=rejected",
        None,
    ));
    sim.run_until(10_000_000);
    assert_eq!(wire(&sim.seen), vec!["100 200 1 NOTIFY"]);
    assert_eq!(sim.sub.state(), SubscriptionState::Terminated);
    assert_eq!(
        events(&sim.seen),
        vec![
            "100 subscription_notify sbc1.example.com terminated",
            "100 subscription_terminated sbc1.example.com rejected retry=None"
        ]
    );
}

#[test]
fn a_481_to_a_refresh_starts_a_new_subscription() {
    let (mut sim, subscribe) = subscribed();
    sim.run_until(568_100);
    let refresh = sim.last_sent();
    sim.take();
    sim.deliver(&respond(&refresh, 481, None, &[], None));
    let again = sim.last_sent();
    assert_eq!(again.headers().cseq().unwrap().seq, 1);
    assert_ne!(
        again.headers().call_id().unwrap(),
        subscribe.headers().call_id().unwrap()
    );
}

#[test]
fn a_423_asks_again_for_the_min_expires() {
    let mut sim = SubSim::new(EventPackage::Dialog, BLF);
    sim.input(|s, now| s.registered_on(now, &r(1), local()));
    let first = sim.last_sent();
    sim.deliver(&respond(
        &first,
        423,
        None,
        &[(HeaderName::MinExpires, "7200")],
        None,
    ));
    assert_eq!(sim.last_sent().headers().expires().unwrap(), Some(7200));
}

#[test]
fn unsubscribe_sends_expires_0_in_the_dialog() {
    let (mut sim, _) = subscribed();
    sim.take();
    sim.input(|s, now| s.unsubscribe(now));
    let un = sim.last_sent();
    assert_eq!(un.headers().expires().unwrap(), Some(0));
    assert_eq!(un.headers().to().unwrap().tag(), Some("notifier"));
    assert_eq!(sim.sub.state(), SubscriptionState::Terminated);
    sim.deliver(&respond(
        &un,
        200,
        None,
        &[(HeaderName::Expires, "0")],
        None,
    ));
    sim.run_until(10_000_000);
    assert_eq!(wire(&sim.seen), vec!["100 SUBSCRIBE 2 SUBSCRIBE"]);
}

#[test]
fn every_package_names_its_event_and_accept() {
    for (p, event) in [
        (EventPackage::Dialog, "dialog"),
        (EventPackage::MessageSummary, "message-summary"),
        (EventPackage::CallInfo, "call-info"),
        (EventPackage::LineSeize, "line-seize"),
    ] {
        let mut sim = SubSim::new(p, "sip:1001@example.com");
        sim.input(|s, now| s.registered_on(now, &r(1), local()));
        let m = sim.last_sent();
        assert_eq!(m.headers().get(HeaderName::Event), Some(event));
        assert_eq!(m.headers().get(HeaderName::Accept), Some(p.accept()));
    }
}

#[test]
fn a_pending_notify_then_an_active_one() {
    let (mut sim, subscribe) = subscribed();
    sim.deliver(&notify(
        &subscribe,
        "notifier",
        1,
        "dialog",
        "pending;expires=600",
        None,
    ));
    assert_eq!(sim.sub.state(), SubscriptionState::Pending);
    sim.deliver(&notify(
        &subscribe,
        "notifier",
        2,
        "dialog",
        "active;expires=600",
        None,
    ));
    assert_eq!(sim.sub.state(), SubscriptionState::Active);
    // A NOTIFY whose CSeq goes back is refused (RFC 3261 12.2.2).
    sim.take();
    sim.deliver(&notify(&subscribe, "notifier", 1, "dialog", "active", None));
    assert_eq!(wire(&sim.seen), vec!["100 500 1 NOTIFY"]);
}
