//! The control API of a running fleet: one method per operation of the
//! HTTP API that will sit on it (`GET /v1/lines`, `POST /v1/lines/{n}/calls`,
//! `POST /v1/calls/{id}/hangup`, `GET /metrics`, ...), each answering a
//! typed value or a [`ControlError`] that names the line or call at fault.
//!
//! | HTTP | method |
//! |---|---|
//! | `GET /v1/lines`, `GET /v1/lines/{n}` | [`Fleet::line_details`], [`Fleet::line_detail`] |
//! | `POST /v1/lines`, `DELETE /v1/lines/{n}` | [`Fleet::add_line_text`] (or [`Fleet::add_line`]), [`Fleet::remove_line`] |
//! | `POST /v1/lines/{n}/register` | [`Fleet::register_now`] |
//! | `POST /v1/lines/{n}/calls {to}` | [`Fleet::place_call`] |
//! | `POST /v1/calls/{id}/answer\|hold\|resume\|hangup` | [`Fleet::call_action`] (or [`Fleet::answer`], ...) |
//! | `GET /v1/calls` | [`Fleet::calls`] |
//! | `GET /v1/routes?name=…` | [`Fleet::routes`] |
//! | `GET /metrics` | [`Fleet::metrics_text`] |
//! | `GET /readyz` | [`Fleet::ready`] |
//! | event stream (WebSocket) | [`Fleet::subscribe`] |

use std::time::Duration;

use actix::Recipient;
use futures_util::future::join_all;
use serde::Serialize;
use sipfleet_protocol::config::{parse_auto, ConfigBuilder, FleetConfig, LineConfig, ServerConfig};
use sipfleet_protocol::dns::{ResolveTarget, RouteSet, TransportSetting};
use sipfleet_protocol::line::{CallAction, CallInfo, LineStatus};

use super::{ControlError, Fleet};
use crate::connection::FlowCounts;
use crate::events::LineEvent;
use crate::hub::EventStream;
use crate::line::{GetStatus, OnCall, PlaceCall, RegisterNow, Shutdown};
use crate::resolver::Resolve;
use crate::views::{LineState, LineView};

/// How long [`Fleet::remove_line`] waits for the line's actor to stop once
/// its un-REGISTER is over (it stops at once; this bounds a stuck arbiter).
const STOP_WAIT: Duration = Duration::from_secs(1);

/// One line as `GET /v1/lines/{n}` shows it: the line's own snapshot
/// (phase, registered route, primary, routes, calls) and what its events
/// told (state, expiry granted, last failure, subscriptions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineDetail {
    /// The line's snapshot.
    pub status: LineStatus,
    /// What its events told.
    pub view: LineView,
}

/// One call of the fleet, as `GET /v1/calls` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSummary {
    /// `reg.x` of the line that holds it.
    pub line: u32,
    /// The call: Call-ID, direction, state, remote, route, media counts.
    pub call: CallInfo,
}

/// One route of `GET /v1/routes?name=…`, in the guide's selection order
/// (what `sipfleet routes NAME` prints).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteRow {
    /// The guide's "Selection Order" (1-based).
    pub selection_order: usize,
    /// The configured server (group) the route belongs to.
    pub group: usize,
    /// `udp`, `tcp` or `tls`.
    pub transport: &'static str,
    /// NAPTR order, if NAPTR was used.
    pub naptr_order: Option<u16>,
    /// NAPTR preference, if NAPTR was used.
    pub naptr_preference: Option<u16>,
    /// The SRV name queried, if SRV was used.
    pub srv_name: Option<String>,
    /// SRV priority.
    pub priority: u16,
    /// SRV weight.
    pub weight: u16,
    /// The host name the address came from.
    pub target: String,
    /// The IP address.
    pub address: String,
    /// The port.
    pub port: u16,
    /// Seconds until the shortest-lived record behind the route expires
    /// (`null` for an IP literal).
    pub ttl_left_s: Option<u64>,
    /// `network`, `static`, `restored` or `literal`.
    pub source: &'static str,
}

/// A name's routes, as `sipfleet routes NAME --json` prints them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Routes {
    /// The name resolved.
    pub name: String,
    /// The transport setting used (`dnsNaptr`, `TLS`, ...).
    pub transport_setting: &'static str,
    /// The port asked (0: SRV).
    pub port: u16,
    /// The routes in selection order.
    pub routes: Vec<RouteRow>,
}

impl Routes {
    /// The rows of `set`, with TTLs counted from `now`.
    pub fn of(set: &RouteSet, now: std::time::Instant) -> Self {
        let target = &set.target;
        Routes {
            name: target.name.clone(),
            transport_setting: target.transport_setting.as_str(),
            port: target.port,
            routes: set
                .entries
                .iter()
                .map(|e| RouteRow {
                    selection_order: e.selection_order,
                    group: e.route.group,
                    transport: e.route.transport.as_str(),
                    naptr_order: e.naptr.map(|n| n.0),
                    naptr_preference: e.naptr.map(|n| n.1),
                    srv_name: e.srv_name.clone(),
                    priority: e.route.priority,
                    weight: e.route.weight,
                    target: e.route.host.clone(),
                    address: e.route.addr.ip().to_string(),
                    port: e.route.addr.port(),
                    ttl_left_s: e
                        .expires
                        .map(|t| ceil_secs(t.saturating_duration_since(now))),
                    source: e.route.source.as_str(),
                })
                .collect(),
        }
    }
}

/// Whole seconds left, rounded up: a record with 300 s to live shows 300.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The first configured server or outbound proxy of `config` whose
/// address is `name` (case-insensitive).
pub fn configured_server<'a>(config: &'a FleetConfig, name: &str) -> Option<&'a ServerConfig> {
    config
        .lines
        .iter()
        .flat_map(|l| l.servers.iter().chain(l.outbound_proxy.iter()))
        .find(|s| s.address.value.eq_ignore_ascii_case(name))
}

/// What to resolve for `name`: the given transport and port, or else the
/// settings of `configured` (the server with that address), or else NAPTR
/// with SRV (the guide's defaults).
pub fn routes_target(
    name: &str,
    transport: Option<TransportSetting>,
    port: Option<u16>,
    configured: Option<&ServerConfig>,
) -> ResolveTarget {
    let transport = transport
        .or(configured.map(|s| s.transport.get()))
        .unwrap_or(TransportSetting::DnsNaptr);
    let port = port.or(configured.and_then(|s| s.port.get())).unwrap_or(0);
    ResolveTarget::new(name.to_owned(), transport, port)
}

impl Fleet {
    /// Every event of every line from now on, in order; see
    /// [`crate::hub`] for what a subscriber that falls behind reads.
    pub fn subscribe(&self) -> EventStream {
        self.hub.subscribe()
    }

    /// Every event from now on goes to `recipient` too (an actix actor's
    /// mailbox: none is lost; a slow actor queues them), until its actor
    /// stops.
    pub fn subscribe_recipient(&self, recipient: Recipient<LineEvent>) {
        self.hub.subscribe_recipient(recipient);
    }

    /// Adds the line `line` (built like the configured ones: the fleet's
    /// fleet-wide settings, services and seed) and starts it; answers its
    /// index.
    pub fn add_line(&self, line: &LineConfig) -> Result<u32, ControlError> {
        if self.table().contains_key(&line.index) {
            return Err(ControlError::LineExists(line.index));
        }
        let setup = self.base.setup(line)?;
        self.base.remember_servers(line);
        Ok(self.start_line(setup))
    }

    /// Adds the line of one `reg.x` block, Poly `key="value"` lines or XML
    /// (`POST /v1/lines`). The text is built on its own: keys other than
    /// `reg.x.*` scope only this line (a `voIpProt.server.1.address` in it
    /// is its registrar), and the fleet's fleet-wide settings (DNS,
    /// keep-alive, pacing) stay as they are. To inherit the configuration
    /// files' keys instead, build the line with the facade's
    /// `config_files::load_line` and pass it to [`Fleet::add_line`].
    pub fn add_line_text(&self, text: &str) -> Result<u32, ControlError> {
        let mut builder = ConfigBuilder::new();
        builder.add_source(parse_auto(text, "added line"));
        let config = builder.build()?;
        match config.lines.as_slice() {
            [line] => self.add_line(line),
            lines => Err(ControlError::LineCount { found: lines.len() }),
        }
    }

    /// Removes line `index`: it hangs up its calls, withdraws its
    /// subscriptions, un-REGISTERs (`Expires: 0`, bounded by `timeout`) and
    /// stops. New commands to it fail at once ([`ControlError::UnknownLine`]).
    pub async fn remove_line(&self, index: u32, timeout: Duration) -> Result<(), ControlError> {
        let line = self
            .table()
            .remove(&index)
            .ok_or(ControlError::UnknownLine(index))?;
        // It no longer counts for readiness or the gauges.
        self.metrics.views().remove_line(index);
        let done = line.send(Shutdown { timeout }).await;
        // The actor's `stopped` hands its flows and pacer slot back under
        // its index: wait for it, so that a line added again under the
        // same index does not lose them.
        let until = tokio::time::Instant::now() + STOP_WAIT;
        while line.connected() && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        done.map_err(|_| ControlError::LineStopped(index))
    }

    /// Registers line `index` again at once (`POST /v1/lines/{n}/register`);
    /// answers whether a REGISTER exchange started (`false`: one is under
    /// way already, or the line waits for routes or the pacer).
    pub async fn register_now(&self, index: u32) -> Result<bool, ControlError> {
        self.line(index)?
            .send(RegisterNow)
            .await
            .map_err(|_| ControlError::LineStopped(index))
    }

    /// Line `index`'s snapshot and what its events told.
    pub async fn line_detail(&self, index: u32) -> Result<LineDetail, ControlError> {
        let status = self
            .line(index)?
            .send(GetStatus)
            .await
            .map_err(|_| ControlError::LineStopped(index))?;
        let view = self
            .metrics
            .views()
            .line(index)
            .ok_or(ControlError::UnknownLine(index))?;
        Ok(LineDetail { status, view })
    }

    /// Every line's detail, in index order (lines stopping meanwhile are
    /// left out).
    pub async fn line_details(&self) -> Vec<LineDetail> {
        let views = self.metrics.views().lines();
        self.status()
            .await
            .into_iter()
            .filter_map(|status| {
                let view = views.get(&status.index)?.clone();
                Some(LineDetail { status, view })
            })
            .collect()
    }

    /// Every call of every line, by line then age.
    pub async fn calls(&self) -> Vec<CallSummary> {
        self.status()
            .await
            .into_iter()
            .flat_map(|s| {
                let line = s.index;
                s.calls
                    .into_iter()
                    .map(move |call| CallSummary { line, call })
            })
            .collect()
    }

    /// Calls `to` (a SIP URI) from line `index` via the SBC that holds its
    /// registration; answers the call's Call-ID, which addresses it from
    /// then on.
    pub async fn place_call(&self, index: u32, to: &str) -> Result<String, ControlError> {
        self.line(index)?
            .send(PlaceCall {
                target: to.to_owned(),
            })
            .await
            .map_err(|_| ControlError::LineStopped(index))?
            .map_err(|source| ControlError::Call {
                line: index,
                source,
            })
    }

    /// The line that holds the call `call_id`.
    pub fn line_of_call(&self, call_id: &str) -> Result<u32, ControlError> {
        self.metrics
            .views()
            .line_of_call(call_id)
            .ok_or_else(|| ControlError::UnknownCall(call_id.to_owned()))
    }

    /// Runs `action` on the call `call_id`, whichever line holds it.
    pub async fn call_action(&self, call_id: &str, action: CallAction) -> Result<(), ControlError> {
        let index = self.line_of_call(call_id)?;
        let line = self.line(index)?;
        let result = line
            .send(OnCall {
                call_id: call_id.to_owned(),
                action,
            })
            .await
            .map_err(|_| ControlError::LineStopped(index))?;
        match result {
            Ok(_) => Ok(()),
            Err(sipfleet_protocol::line::CallCommandError::UnknownCall(id)) => {
                Err(ControlError::UnknownCall(id))
            }
            Err(source) => Err(ControlError::Call {
                line: index,
                source,
            }),
        }
    }

    /// Answers the ringing call `call_id`.
    pub async fn answer(&self, call_id: &str) -> Result<(), ControlError> {
        self.call_action(call_id, CallAction::Answer).await
    }

    /// Holds the call `call_id`.
    pub async fn hold(&self, call_id: &str) -> Result<(), ControlError> {
        self.call_action(call_id, CallAction::Hold).await
    }

    /// Resumes the call `call_id`.
    pub async fn resume(&self, call_id: &str) -> Result<(), ControlError> {
        self.call_action(call_id, CallAction::Resume).await
    }

    /// Ends the call `call_id` (CANCEL, 603 or BYE as its state requires).
    pub async fn hangup(&self, call_id: &str) -> Result<(), ControlError> {
        self.call_action(call_id, CallAction::Hangup).await
    }

    /// The routes of `name` in selection order, through the fleet's
    /// resolver (its cache, static entries and restore policy); transport
    /// and port as [`routes_target`] picks them from the fleet's servers.
    pub async fn routes(
        &self,
        name: &str,
        transport: Option<TransportSetting>,
        port: Option<u16>,
    ) -> Result<Routes, ControlError> {
        let configured = self.base.server(name);
        let target = routes_target(name, transport, port, configured.as_ref());
        let failed = |error: String| ControlError::Routes {
            name: name.to_owned(),
            error,
        };
        let set = self
            .resolver
            .send(Resolve { target })
            .await
            .map_err(|e| failed(e.to_string()))?
            .map_err(|e| failed(e.to_string()))?;
        Ok(Routes::of(&set, crate::now()))
    }

    /// The Prometheus text exposition of the fleet's metrics (see
    /// [`crate::metrics`]).
    pub async fn metrics_text(&self) -> String {
        let flows = self.flows.send(FlowCounts).await.unwrap_or_default();
        let dns = self
            .resolver
            .send(crate::resolver::GetDnsStats)
            .await
            .unwrap_or_default();
        self.metrics.render(&flows, &dns)
    }

    /// Whether at least `ratio` (0 to 1) of the fleet's lines are
    /// registered (`GET /readyz`; `1.0`: every line). A fleet without
    /// lines is ready.
    pub fn ready(&self, ratio: f64) -> bool {
        let counts = self.metrics.views().count_by_state();
        let total: usize = counts.values().sum();
        let registered = counts.get(&LineState::Registered).copied().unwrap_or(0);
        total == 0 || registered as f64 >= ratio.clamp(0.0, 1.0) * total as f64
    }

    /// Un-registers the lines `indexes` in parallel (each bounded by
    /// `timeout`) and stops them; the others go on.
    pub async fn remove_lines(&self, indexes: &[u32], timeout: Duration) -> Vec<ControlError> {
        join_all(indexes.iter().map(|&i| self.remove_line(i, timeout)))
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect()
    }
}
