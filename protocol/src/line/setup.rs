//! Everything one line needs, built once from the configuration: its
//! identity, credentials, registration settings, targets, features and
//! `+sip.instance`. [`LineSetup::from_config`] is the one place a
//! configured line becomes a [`super::Line`]; every default comes from the
//! config schema (through [`crate::line_setup`]), never from a literal here.

use std::time::Duration;

use rand::Rng;

use crate::auth::DigestClient;
use crate::config::{FleetConfig, LineConfig, SipSettings};
use crate::dns::ResolveTarget;
use crate::line_setup;
use crate::register_request::LineIdentity;
use crate::registration::RegistrationSettings;
use crate::subscription::{EventPackage, Subscription, SubscriptionSettings};

/// Everything a line needs, already resolved from the configuration.
#[derive(Clone, Debug)]
pub struct LineSetup {
    /// `x` of `reg.x`; also the line's id among the users of a flow.
    pub index: u32,
    /// Who the line registers as (`reg.x.address`, display name, registrar).
    pub identity: LineIdentity,
    /// Credentials answering 401/407 challenges (`reg.x.auth.*`).
    pub digest: DigestClient,
    /// Expires, retry and failover settings of the registration.
    pub settings: RegistrationSettings,
    /// Where requests go, in walk order: the outbound proxy alone, or every
    /// server (`reg.x.server.y`) in `y` order. Never empty.
    pub targets: Vec<ResolveTarget>,
    /// Seeds the back-off randomisation and Call-IDs; `None` seeds from the OS.
    pub seed: Option<u64>,
    /// Calls and subscriptions of the line.
    pub features: LineFeatures,
    /// The line's `+sip.instance` URN (RFC 5626), stable per line and
    /// device; `None` sends no instance.
    pub instance: Option<String>,
}

/// What a line's configuration lacks for a fleet to start it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineConfigError {
    /// No registrar to build the line's identity from.
    #[error("no registrar configured (reg.{line}.server.1.address or voIpProt.server.1.address)")]
    NoRegistrar {
        /// The line (`reg.x` index).
        line: u32,
    },
    /// No server to register with.
    #[error("no server configured (reg.{line}.server.1.address or voIpProt.server.1.address)")]
    NoServer {
        /// The line (`reg.x` index).
        line: u32,
    },
}

impl LineSetup {
    /// The setup of the configured `line` of `fleet` (the fleet's pacing
    /// keys apply to it). `device` tells this device from
    /// others in the line's `+sip.instance`; `seed` (the fleet's) is mixed
    /// with the line index so that lines draw different numbers.
    pub fn from_config(
        line: &LineConfig,
        fleet: &FleetConfig,
        user_agent: &str,
        device: &str,
        seed: Option<u64>,
    ) -> Result<LineSetup, LineConfigError> {
        let index = line.index;
        Ok(LineSetup {
            index,
            identity: line_setup::identity(line, user_agent)
                .ok_or(LineConfigError::NoRegistrar { line: index })?,
            digest: line.digest_client(),
            settings: line_setup::fleet_registration_settings(line, fleet),
            targets: Some(line_setup::registration_targets(line))
                .filter(|t| !t.is_empty())
                .ok_or(LineConfigError::NoServer { line: index })?,
            seed: seed.map(|s| s ^ u64::from(index).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            features: LineFeatures::from_config(line, &fleet.sip),
            instance: Some(line_setup::instance_urn(device, &line.address.value, index)),
        })
    }
}

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
    pub ring_timeout: Option<Duration>,
}

impl Default for LineFeatures {
    /// The schema's defaults.
    fn default() -> Self {
        let defaults = line_setup::schema_defaults();
        match defaults.lines.first() {
            Some(line) => LineFeatures::from_config(line, &defaults.sip),
            None => LineFeatures {
                auto_answer: false,
                mwi: false,
                sca: false,
                blf: Vec::new(),
                line_seize_retries: crate::line_seize::DEFAULT_RETRIES,
                calls_per_line: crate::call::DEFAULT_CALLS_PER_LINE,
                ring_timeout: Some(crate::call::DEFAULT_RING_TIMEOUT),
            },
        }
    }
}

impl LineFeatures {
    /// The line's features from its `reg.x` settings, with fleet-wide defaults from `sip`.
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
pub fn blf_uri(resource: &str, domain: &str) -> String {
    if resource.starts_with("sip:") || resource.starts_with("sips:") {
        resource.to_owned()
    } else if resource.contains('@') {
        format!("sip:{resource}")
    } else {
        format!("sip:{resource}@{domain}")
    }
}

/// The subscriptions `setup` asks for, idle until the line registers.
pub(super) fn subscriptions(setup: &LineSetup, ids: &mut impl Rng) -> Vec<Subscription> {
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
        user_agent: identity.user_agent.clone(),
        ..SubscriptionSettings::default()
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
