//! The line's diagnostics in the log, each at the level it deserves: a
//! problem an operator must fix (wrong credentials, a certificate, no
//! routes) is a WARN; a line working through trouble is INFO or DEBUG.

use sipfleet_protocol::line::Diagnostic;
use sipfleet_protocol::registration::FailReason;
use slog::Logger;

/// Logs `d` at the level it deserves. Never the password.
pub(super) fn diagnostic(log: &Logger, line: u32, user: &str, d: &Diagnostic) {
    match d {
        Diagnostic::NoRoutes {
            target,
            error,
            retry_in,
        } => slog::warn!(log, "no routes for line";
            "line" => line, "target" => target, "error" => error,
            "retry_in_ms" => retry_in.as_millis() as u64),
        Diagnostic::FlowUnusable { flow, reason } => slog::debug!(log, "flow not usable";
            "line" => line, "flow" => %flow, "reason" => reason),
        Diagnostic::RegisterNotBuilt { error } => slog::warn!(log, "cannot build REGISTER";
            "line" => line, "error" => error),
        Diagnostic::RegisterResponseDropped { error } => {
            slog::warn!(log, "REGISTER response dropped"; "line" => line, "error" => error)
        }
        Diagnostic::RegistrationFailed {
            status,
            reason,
            route,
        } => {
            // A denial the operator must act on (wrong password, a
            // challenge the line cannot answer, a registrar that loops)
            // is a WARN, once per attempt, so once per back-off round.
            let route = route.as_ref().map(|r| r.to_string()).unwrap_or_default();
            match reason {
                FailReason::CredentialsRejected => slog::warn!(log,
                    "registration refused: the registrar rejected the credentials (check reg.x.auth.userId and reg.x.auth.password)";
                    "line" => line, "user" => user,
                    "status" => status, "route" => route),
                _ if !d.is_operator_problem() => slog::info!(log, "registration failed";
                    "line" => line, "reason" => reason.as_str(), "status" => status,
                    "route" => route),
                _ => slog::warn!(log, "registration failed";
                    "line" => line, "reason" => reason.as_str(), "status" => status,
                    "route" => route),
            }
        }
        Diagnostic::RouteFailed {
            route,
            kind,
            tls_detail: Some(detail),
        } => slog::warn!(log, "route failed: TLS handshake";
            "line" => line, "route" => %route, "kind" => kind, "detail" => detail),
        Diagnostic::RouteFailed { route, kind, .. } => slog::info!(log, "route failed";
            "line" => line, "route" => %route, "kind" => kind),
        Diagnostic::FlowLost { route, kind } => slog::info!(log, "flow lost";
            "line" => line, "route" => %route, "kind" => kind),
        Diagnostic::IgnoredRequest { flow, method } => slog::info!(log,
            "ignored request from an SBC without our registration";
            "line" => line, "flow" => %flow, "method" => method),
        Diagnostic::CallsPerLineReached { limit } => slog::debug!(log,
            "INVITE refused: callsPerLineKey reached"; "line" => line, "limit" => limit),
        Diagnostic::MalformedInvite { error } => slog::info!(log, "malformed INVITE";
            "line" => line, "error" => error),
        Diagnostic::MediaRefused { call_id, error } => slog::warn!(log,
            "call refused: no media socket";
            "line" => line, "call_id" => call_id, "error" => error),
        Diagnostic::EmergencyNotPlaced { error } => slog::error!(log,
            "emergency call not placed"; "line" => line, "error" => error),
        Diagnostic::InviteNotRetried { call_id, error } => slog::debug!(log,
            "INVITE not retried"; "line" => line, "call_id" => call_id, "error" => error),
    }
}
