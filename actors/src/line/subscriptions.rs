//! The line's subscriptions (BLF, MWI, SCA) and the guide's failover rule
//! for them: invalidated when a REGISTER is accepted by a new SBC (or at
//! failover start with `failRegistrationOn=1`), re-created on the newly
//! registered SBC at once. The registration machine says when
//! (`SubscriptionsInvalidated`, `Registered`); this file only relays it to
//! each [`Subscription`] — the same glue `protocol/tests/subscription_failover.rs`
//! proves in virtual time with the real machines.

use std::time::Duration;

use actix::prelude::*;
use rand::rngs::StdRng;
use rand::Rng;
use sipfleet_protocol::config::{LineConfig, SipSettings};
use sipfleet_protocol::registration::InvalidationReason;
use sipfleet_protocol::route::Route;
use sipfleet_protocol::subscription::{
    EventPackage, Subscription, SubscriptionOutput, SubscriptionSettings,
};
use sipfleet_transport::flow::FlowKey;

use super::{now, Line, LineSetup};

/// What a line does beyond registering: sipfleet's own per-line keys
/// (`reg.x.autoAnswer`, `reg.x.subscribe.*`) and the emergency line seize.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineFeatures {
    /// Answer incoming calls at once (`reg.x.autoAnswer=1`).
    pub auto_answer: bool,
    /// MWI on the line's AOR (`reg.x.subscribe.mwi=1`).
    pub mwi: bool,
    /// SCA call-info on the line's AOR (`reg.x.subscribe.sca=1`).
    pub sca: bool,
    /// BLF resources: extensions or SIP URIs (`reg.x.subscribe.blf="1002,1003"`).
    pub blf: Vec<String>,
    /// `voIpProt.SIP.lineSeize.retries`.
    pub line_seize_retries: u32,
    /// `reg.x.callsPerLineKey` / `call.callsPerLineKey`: calls at once.
    pub calls_per_line: u32,
    /// `sipfleet.call.ringTimeout` (`None`: 0, no timeout).
    pub ring_timeout: Option<std::time::Duration>,
}

impl Default for LineFeatures {
    fn default() -> Self {
        LineFeatures {
            auto_answer: false,
            mwi: false,
            sca: false,
            blf: Vec::new(),
            line_seize_retries: 10,
            calls_per_line: sipfleet_protocol::call::DEFAULT_CALLS_PER_LINE,
            ring_timeout: Some(sipfleet_protocol::call::DEFAULT_RING_TIMEOUT),
        }
    }
}

impl LineFeatures {
    pub fn from_config(line: &LineConfig, sip: &SipSettings) -> Self {
        let f = &line.features;
        LineFeatures {
            auto_answer: f.auto_answer.get(),
            mwi: f.subscribe_mwi.get(),
            sca: f.subscribe_sca.get(),
            blf: f
                .subscribe_blf
                .value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            line_seize_retries: sip.line_seize_retries.get(),
            calls_per_line: f.calls_per_line.get(),
            ring_timeout: f.ring_timeout(),
        }
    }
}

/// A BLF resource as a SIP URI: an extension is taken in the line's domain.
fn blf_uri(resource: &str, domain: &str) -> String {
    if resource.starts_with("sip:") || resource.starts_with("sips:") {
        resource.to_owned()
    } else if resource.contains('@') {
        format!("sip:{resource}")
    } else {
        format!("sip:{resource}@{domain}")
    }
}

/// The subscriptions `setup` asks for, idle until the line registers.
pub(super) fn build(setup: &LineSetup, ids: &mut StdRng) -> Vec<Subscription> {
    let identity = &setup.identity;
    let aor = identity.aor();
    let mut wanted: Vec<(EventPackage, String)> = Vec::new();
    if setup.features.mwi {
        wanted.push((EventPackage::MessageSummary, aor.clone()));
    }
    if setup.features.sca {
        wanted.push((EventPackage::CallInfo, aor.clone()));
    }
    for r in &setup.features.blf {
        wanted.push((EventPackage::Dialog, blf_uri(r, &identity.domain)));
    }
    let settings = SubscriptionSettings {
        policy: setup.settings.retry_policy(),
        expires: 3600,
        retry_after_failure: Duration::from_secs(30),
        user_agent: identity.user_agent.clone(),
    };
    wanted
        .into_iter()
        .map(|(package, resource)| {
            Subscription::new(
                settings.clone(),
                identity.clone(),
                Some(setup.digest.clone()),
                package,
                resource,
                ids.random(),
            )
        })
        .collect()
}

impl Line {
    /// The registration was accepted on `route`: every subscription lives
    /// there now (re-created at once if it lived elsewhere).
    pub(super) fn registered_on(&mut self, route: &Route) {
        let Some(local) = self.flows.get(&FlowKey::of(route)).and_then(|f| f.local) else {
            return;
        };
        let now = now();
        for sub in &mut self.subs {
            sub.registered_on(now, route, local);
        }
    }

    /// The registration moved (or failover began): drop every
    /// subscription without a word to the old SBC.
    pub(super) fn invalidate_subscriptions(&mut self, reason: InvalidationReason) {
        for sub in &mut self.subs {
            sub.invalidate(reason);
        }
    }

    /// Sends what the subscriptions queued and reports their events.
    pub(super) fn drain_subscriptions(&mut self, ctx: &mut Context<Self>) -> bool {
        let mut outputs = Vec::new();
        for sub in &mut self.subs {
            outputs.extend(std::iter::from_fn(|| sub.poll_output()));
        }
        let progressed = !outputs.is_empty();
        for output in outputs {
            match output {
                SubscriptionOutput::Send(t) => self.send_transmit(t, ctx),
                SubscriptionOutput::Event(e) => self.emit(e),
            }
        }
        progressed
    }

    /// Routes a response or NOTIFY to the subscription it belongs to.
    pub(super) fn subscription_message(
        &mut self,
        msg: &sipfleet_protocol::message::Message,
    ) -> bool {
        match self.subs.iter_mut().find(|s| s.accepts(msg)) {
            Some(sub) => {
                sub.handle_message(now(), msg);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::blf_uri;

    #[test]
    fn blf_resources_become_uris_in_the_line_domain() {
        assert_eq!(blf_uri("1002", "lab.test"), "sip:1002@lab.test");
        assert_eq!(
            blf_uri("1002@other.test", "lab.test"),
            "sip:1002@other.test"
        );
        assert_eq!(blf_uri("sip:1003@x.test", "lab.test"), "sip:1003@x.test");
    }
}
