//! From a configured line to what its registration needs: the machine's
//! settings, the name to resolve, and the line's identity on the wire.
//!
//! The configuration model keeps the guide's scopes (`reg.x.*`,
//! `voIpProt.server.y.*`, `voIpProt.SIP.outboundProxy.*`) and records where
//! each value came from; the registration machine only wants effective
//! values. This is the one place that decides which scope feeds which field:
//! requests go to the outbound proxy when one is configured, otherwise to the
//! registrars `reg.x.server.1`, `reg.x.server.2`, ... in that order, and the
//! Request-URI always names the first registrar's domain (RFC 3261 10.2).
//!
//! # Several servers
//!
//! Each configured server contributes its routes to the line's walk after
//! the earlier servers' routes ([`crate::servers`]), so a line whose server
//! 1 is unreachable registers on server 2, and fails back to server 1.
//! Requests to a server's routes use that server's own `retryTimeOut`,
//! `retryMaxCount` and `expires` (`reg.x.server.y.*` over
//! `voIpProt.server.y.*`). The other settings stay line-wide, from the
//! primary (lowest-index) server: the RROFO parameters (the line has one
//! failback policy, whatever server it is on) and `registerRetry.*` (the
//! back-off follows a whole exhausted walk over every server).
//!
//! # With an outbound proxy
//!
//! Decision: with `reg.x.outboundProxy.address` (or the global
//! `voIpProt.SIP.outboundProxy.address`) set, the proxy is the only target
//! and the servers are not walked. Reasons: the guide's Appendix A pairs a
//! core-side `voIpProt.server.1` (the registrar, named in the Request-URI)
//! with an access-side `outboundProxy` whose SRV records give the SBC
//! redundancy ("Assume a single FQDN that resolves via DNS SRV to 2 or more
//! A records representing geo-redundant SBCs"); its Failover definition is
//! moving "from one outbound proxy/SBC to a different SBC"; and its RROFO
//! table scopes the failover parameters to the outbound proxy when one is
//! set. A server behind the proxy is not a next hop the phone can reach
//! or fail over to by itself, so redundancy there belongs in the proxy's
//! DNS records. `sipfleet config check` says which servers are walked.

use std::sync::OnceLock;
use std::time::Duration;

use crate::config::{
    parse_lines, ConfigBuilder, FleetConfig, LineConfig, RegisterPacing, SipSettings,
};
use crate::dns::ResolveTarget;
use crate::keepalive::KeepaliveSettings;
use crate::pacing::PacingSettings;
use crate::register_request::LineIdentity;
use crate::registration::{RegistrationSettings, ServerTimers};

/// The transport's keep-alive schedule from `nat.keepalive.*` and
/// `tcpIpApp.keepalive.*`.
pub fn keepalive_settings(k: &crate::config::KeepaliveSettings) -> KeepaliveSettings {
    KeepaliveSettings {
        nat_interval: Duration::from_secs(k.nat_interval_s.get().into()),
        udp_payload: k.nat_udp_payload.value.clone().into(),
        tcp_payload: k.nat_tcp_payload.value.clone().into(),
        tls_enable: k.tls_enable.get(),
        no_response_transmit_interval: Duration::from_secs(
            k.tcp_no_response_interval_s.get().into(),
        ),
        idle_transmit_interval: Duration::from_secs(k.tcp_idle_interval_s.get().into()),
        persistent_connection: k.tcp_persistent_connection.get(),
    }
}

/// A configuration in which nothing is set: every value is the schema's
/// default. The `Default` of each settings struct is read from it, so the
/// guide's defaults are written once, in the schema table.
pub(crate) fn schema_defaults() -> &'static FleetConfig {
    static DEFAULTS: OnceLock<FleetConfig> = OnceLock::new();
    DEFAULTS.get_or_init(|| {
        let mut b = ConfigBuilder::new();
        b.add_source(parse_lines(
            "reg.1.address=\"default\"\nreg.1.server.1.address=\"default.invalid\"\n",
            "(schema defaults)",
        ));
        match b.build() {
            Ok(config) => config,
            // Two fixed, valid keys: only a broken schema table gets here,
            // and every test of the crate would show it.
            Err(e) => panic!("the schema's defaults do not build: {e}"),
        }
    })
}

impl Default for RegistrationSettings {
    /// The guide's defaults, from the schema table.
    fn default() -> Self {
        let d = schema_defaults();
        match d.lines.first() {
            Some(line) => registration_settings(line, &d.sip),
            None => panic!("the schema's defaults have no line"),
        }
    }
}

impl Default for KeepaliveSettings {
    /// The guide's defaults, from the schema table.
    fn default() -> Self {
        keepalive_settings(&schema_defaults().keepalive)
    }
}

/// The registration settings in force for `line`.
pub fn registration_settings(line: &LineConfig, sip: &SipSettings) -> RegistrationSettings {
    let timers = &line.registration;
    let failover = &line.failover;
    let settings = RegistrationSettings {
        retry_timeout_ms: timers.retry_timeout_ms.get(),
        retry_max_count: timers.retry_max_count.get(),
        tcp_fast_failover: sip.tcp_fast_failover.get(),
        tcp_fast_failover_timeout_ms: sip.tcp_fast_failover_timeout_ms.get(),
        failover_on_503: sip.failover_on_503.get(),
        register_retry_base_s: timers.register_retry_base_s.get(),
        register_retry_max_s: timers.register_retry_max_s.get(),
        re_register_on: failover.re_register_on.get(),
        only_signal_with_registered: failover.only_signal_with_registered.get(),
        fail_registration_on: failover.fail_registration_on.get(),
        failback_mode: failover.failback_mode.get(),
        failback_timeout_s: failover.failback_timeout_s.get(),
        unregister_on_failback: failover.unregister_on_failback.get(),
        auth_optimized_in_failover: sip.auth_optimized_in_failover.get(),
        new_call_on_unregister: sip.new_call_on_unregister.get(),
        enhanced_failover: sip.enhanced_failover.get() || failover.enhanced.get(),
        expires_s: timers.expires_s.get(),
        expires_overlap_s: timers.expires_overlap_s.get(),
        per_server: Vec::new(),
        // A line on its own behaves as one phone: nothing to pace, Poly's
        // refresh point exactly. The fleet's keys come in through
        // `fleet_registration_settings`.
        paced: false,
        refresh_spread_pct: 0,
    };
    if line.outbound_proxy.is_some() || line.servers.len() < 2 {
        return settings;
    }
    let per_server: Vec<ServerTimers> = line
        .servers
        .iter()
        .map(|s| ServerTimers {
            retry_timeout_ms: s.timers.retry_timeout_ms.get(),
            retry_max_count: s.timers.retry_max_count.get(),
            expires_s: s.timers.expires_s.get(),
        })
        .collect();
    RegistrationSettings {
        // The floor under every server's own expiry; a 423 raises it.
        expires_s: per_server
            .iter()
            .map(|s| s.expires_s)
            .min()
            .unwrap_or(settings.expires_s),
        per_server,
        ..settings
    }
}

/// The registration settings of `line` as a line of the fleet `config`:
/// [`registration_settings`] plus the fleet's `sipfleet.register.*` keys
/// (paced when the fleet runs a pacer, refreshes spread as configured).
pub fn fleet_registration_settings(
    line: &LineConfig,
    config: &FleetConfig,
) -> RegistrationSettings {
    RegistrationSettings {
        paced: pacing_settings(&config.pacing).is_some(),
        refresh_spread_pct: config.pacing.refresh_spread_pct.get(),
        ..registration_settings(line, &config.sip)
    }
}

/// The fleet's pacer from `sipfleet.register.rate` and `.window`; `None`
/// when both are 0 (no pacer: every exchange starts at once).
pub fn pacing_settings(pacing: &RegisterPacing) -> Option<PacingSettings> {
    Some(PacingSettings::new(pacing.rate.get(), pacing.window.get())).filter(|p| !p.is_unlimited())
}

/// Where the line's requests go, in walk order: the outbound proxy alone
/// when configured, otherwise every registrar in `y` order. Port 0 means
/// "look up SRV". Empty when no address is set.
pub fn registration_targets(line: &LineConfig) -> Vec<ResolveTarget> {
    let servers: Vec<&crate::config::ServerConfig> = match &line.outbound_proxy {
        Some(proxy) => vec![proxy],
        None => line.servers.iter().collect(),
    };
    servers
        .into_iter()
        .filter(|s| !s.address.value.trim().is_empty())
        .map(|s| {
            ResolveTarget::new(
                s.address.value.trim(),
                s.transport.get(),
                s.port.get().unwrap_or(0),
            )
        })
        .collect()
}

/// The first of [`registration_targets`]: the outbound proxy, or server 1.
pub fn registration_target(line: &LineConfig) -> Option<ResolveTarget> {
    registration_targets(line).into_iter().next()
}

/// The line's identity: AOR in the registrar domain, display name, and the
/// user agent string.
pub fn identity(line: &LineConfig, user_agent: &str) -> Option<LineIdentity> {
    let domain = line
        .servers
        .first()
        .map(|s| s.address.value.trim().to_string())
        .filter(|d| !d.is_empty())?;
    let display = line.display_name.value.trim();
    Some(LineIdentity {
        address: line.address.value.trim().to_string(),
        display_name: (!display.is_empty()).then(|| display.to_string()),
        domain,
        user_agent: user_agent.to_string(),
    })
}

/// The line's `+sip.instance` (RFC 5626 4.1): a UUID URN that stays the
/// same for the same line on the same device across restarts, so a
/// registrar that matches on it replaces the line's binding from the last
/// run instead of keeping both. `device` tells devices apart (the machine
/// id); `aor` and `index` tell the lines of one device apart. A name-based
/// UUID (version 8 of RFC 9562, from SHA-256) needs no state on disk.
pub fn instance_urn(device: &str, aor: &str, index: u32) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("sipfleet/instance\0{device}\0{aor}\0{index}"));
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_lines, ConfigBuilder, FleetConfig, TransportSetting};

    fn fleet(text: &str) -> FleetConfig {
        let mut b = ConfigBuilder::new();
        b.add_source(parse_lines(text, "test.cfg"));
        b.build().expect("valid config")
    }

    /// The guide's Appendix A UDP example: the outbound proxy scope wins for
    /// failover settings, the server scope for timers.
    #[test]
    fn appendix_a_udp_maps_onto_registration_settings() {
        let f = fleet(
            r#"reg.1.address="5551239999"
voIpProt.server.1.address="server.coreSide.com"
voIpProt.server.1.retryTimeOut="500"
voIpProt.server.1.retryMaxCount="3"
voIpProt.SIP.authOptimizedInFailover="1"
voIpProt.SIP.failoverOn503Response="1"
voIpProt.SIP.outboundProxy.address="sbc.accessSide.com"
voIpProt.SIP.outboundProxy.port="0"
voIpProt.SIP.outboundProxy.transport="UDPOnly"
voIpProt.SIP.outboundProxy.failOver.reRegisterOn="1"
voIpProt.SIP.outboundProxy.failOver.onlySignalWithRegistered="1"
voIpProt.SIP.outboundProxy.failOver.failBack.mode="duration"
voIpProt.SIP.outboundProxy.failOver.failBack.timeout="600"
voIpProt.SIP.outboundProxy.failOver.failRegistrationOn="1"
"#,
        );
        let line = &f.lines[0];
        let s = registration_settings(line, &f.sip);
        assert_eq!(s.retry_timeout_ms, 500);
        assert_eq!(s.retry_max_count, 3);
        assert!(s.auth_optimized_in_failover);
        assert!(s.re_register_on);
        assert_eq!(s.failback_mode, crate::config::FailbackMode::Duration);
        assert_eq!(s.failback_timeout_s, 600);
        let target = registration_target(line).unwrap();
        assert_eq!(target.name, "sbc.accessSide.com");
        assert_eq!(target.transport_setting, TransportSetting::UdpOnly);
        assert_eq!(target.port, 0);
        let id = identity(line, "ua").unwrap();
        assert_eq!(id.aor(), "sip:5551239999@server.coreSide.com");
        assert_eq!(line.digest_client().username(), "5551239999");
    }

    #[test]
    fn instance_urns_are_stable_uuids_unique_per_line_and_device() {
        let a = instance_urn("m1", "sip:1001@example.com", 1);
        assert_eq!(a, instance_urn("m1", "sip:1001@example.com", 1));
        assert_ne!(a, instance_urn("m1", "sip:1001@example.com", 2));
        assert_ne!(a, instance_urn("m2", "sip:1001@example.com", 1));
        assert_ne!(a, instance_urn("m1", "sip:1002@example.com", 1));
        let uuid = a.strip_prefix("urn:uuid:").unwrap();
        let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert!(uuid.as_bytes()[14] == b'8', "version 8: {uuid}");
        assert!(
            matches!(uuid.as_bytes()[19], b'8' | b'9' | b'a' | b'b'),
            "variant: {uuid}"
        );
    }

    #[test]
    fn without_outbound_proxy_the_first_server_is_the_target() {
        let f = fleet(
            r#"reg.1.address="1001"
reg.1.auth.userId="u1001"
reg.1.server.1.address="lab.sipfleet.test"
reg.1.server.1.port="5060"
reg.1.server.1.transport="TCPOnly"
reg.1.server.1.retryTimeOut="5000"
reg.1.server.1.retryMaxCount="2"
"#,
        );
        let line = &f.lines[0];
        let target = registration_target(line).unwrap();
        assert_eq!(target.name, "lab.sipfleet.test");
        assert_eq!(target.port, 5060);
        assert_eq!(target.transport_setting, TransportSetting::TcpOnly);
        let s = registration_settings(line, &f.sip);
        assert_eq!((s.retry_timeout_ms, s.retry_max_count), (5000, 2));
        assert!(!s.re_register_on, "the guide's default is reRegisterOn=0");
        assert_eq!(line.digest_client().username(), "u1001");
        assert!(s.per_server.is_empty());
    }

    /// Every server is a target in `y` order, each with its own timers;
    /// the line's expiry is the floor of theirs.
    #[test]
    fn several_servers_are_targets_in_order_with_their_own_timers() {
        let f = fleet(
            r#"reg.1.address="1001"
voIpProt.server.1.address="one.example.com"
voIpProt.server.1.retryTimeOut="5000"
voIpProt.server.1.retryMaxCount="2"
reg.1.server.2.address="two.example.com"
reg.1.server.2.port="5070"
reg.1.server.2.transport="TCPpreferred"
reg.1.server.2.expires="600"
voIpProt.server.2.retryMaxCount="4"
"#,
        );
        let line = &f.lines[0];
        let targets = registration_targets(line);
        assert_eq!(
            targets,
            [
                ResolveTarget::new("one.example.com", TransportSetting::DnsNaptr, 0),
                ResolveTarget::new("two.example.com", TransportSetting::TcpPreferred, 5070),
            ]
        );
        let s = registration_settings(line, &f.sip);
        assert_eq!(
            s.per_server,
            [
                ServerTimers {
                    retry_timeout_ms: 5000,
                    retry_max_count: 2,
                    expires_s: 3600
                },
                ServerTimers {
                    retry_timeout_ms: 0,
                    retry_max_count: 4,
                    expires_s: 600
                },
            ]
        );
        assert_eq!(s.expires_s, 600);
        // The line-wide fields stay server 1's.
        assert_eq!((s.retry_timeout_ms, s.retry_max_count), (5000, 2));
    }

    /// With an outbound proxy the proxy is the only target (see the module
    /// docs), whatever servers are configured.
    #[test]
    fn an_outbound_proxy_is_the_only_target() {
        let f = fleet(
            r#"reg.1.address="1001"
voIpProt.server.1.address="one.example.com"
voIpProt.server.2.address="two.example.com"
voIpProt.SIP.outboundProxy.address="sbc.example.com"
"#,
        );
        let line = &f.lines[0];
        let targets = registration_targets(line);
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].name, "sbc.example.com");
        assert!(registration_settings(line, &f.sip).per_server.is_empty());
    }
}
