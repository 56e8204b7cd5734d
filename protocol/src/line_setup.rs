//! From a configured line to what its registration needs: the machine's
//! settings, the name to resolve, and the line's identity on the wire.
//!
//! The configuration model keeps the guide's scopes (`reg.x.*`,
//! `voIpProt.server.y.*`, `voIpProt.SIP.outboundProxy.*`) and records where
//! each value came from; the registration machine only wants effective
//! values. This is the one place that decides which scope feeds which field:
//! requests go to the outbound proxy when one is configured, otherwise to the
//! first registrar, and the Request-URI always names the registrar domain
//! (RFC 3261 10.2).

use crate::config::{LineConfig, SipSettings};
use crate::dns::ResolveTarget;
use crate::register_request::LineIdentity;
use crate::registration::RegistrationSettings;

/// The registration settings in force for `line`.
pub fn registration_settings(line: &LineConfig, sip: &SipSettings) -> RegistrationSettings {
    let timers = &line.registration;
    let failover = &line.failover;
    RegistrationSettings {
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
    }
}

/// Where the line's requests go: the outbound proxy when configured,
/// otherwise its first registrar. Port `None` means "look up SRV".
pub fn registration_target(line: &LineConfig) -> Option<ResolveTarget> {
    let server = line
        .outbound_proxy
        .as_ref()
        .or_else(|| line.servers.first())?;
    let address = server.address.value.trim();
    if address.is_empty() {
        return None;
    }
    Some(ResolveTarget::new(
        address,
        server.transport.get(),
        server.port.get().unwrap_or(0),
    ))
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
    }
}
