//! The endpoints: each reads or asks the lines by actor message and answers
//! JSON. The shapes follow `--events json` (routes as
//! `{"transport","host","address","source"}`).

use std::collections::BTreeMap;

use actix::Addr;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use futures_util::future::join_all;
use serde::Deserialize;
use serde_json::{json, Value};
use sipfleet_actors::line::{GetStatus, Line, LineStatus, PlaceCall};
use sipfleet_actors::resolver::{Resolve, Resolver};
use sipfleet_protocol::dns::{ResolveTarget, TransportSetting};
use sipfleet_protocol::registration::Phase;

use super::error::ApiError;
use crate::run_commands::target_uri;

/// What the handlers reach: the lines by `reg.x` index, and the fleet's
/// resolver (its cache, static entries and restore policy).
#[derive(Clone)]
pub struct ApiState {
    lines: BTreeMap<u32, Addr<Line>>,
    resolver: Addr<Resolver>,
}

impl ApiState {
    pub fn new(lines: BTreeMap<u32, Addr<Line>>, resolver: Addr<Resolver>) -> Self {
        ApiState { lines, resolver }
    }

    fn line(&self, n: u32) -> Result<&Addr<Line>, ApiError> {
        self.lines
            .get(&n)
            .ok_or_else(|| ApiError::not_found(format!("no line {n} (reg.{n}) is configured")))
    }

    async fn status(&self, n: u32) -> Result<LineStatus, ApiError> {
        self.line(n)?.send(GetStatus).await.map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("line {n} is not running: {e}"),
            )
        })
    }

    async fn all_status(&self) -> Vec<LineStatus> {
        join_all(self.lines.values().map(|l| l.send(GetStatus)))
            .await
            .into_iter()
            .filter_map(Result::ok)
            .collect()
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/v1/lines", web::get().to(lines))
        .route("/v1/lines/{n}", web::get().to(line))
        .route("/v1/lines/{n}/calls", web::post().to(place_call))
        .route("/v1/routes", web::get().to(routes_of));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutesQuery {
    name: String,
    transport: Option<String>,
    port: Option<u16>,
}

/// What `sipfleet routes NAME --json` prints, from the fleet's own
/// resolver: the routes a line with this server would walk, in order.
async fn routes_of(
    state: web::Data<ApiState>,
    query: web::Query<RoutesQuery>,
) -> Result<HttpResponse, ApiError> {
    let name = query.name.trim();
    if name.is_empty()
        || name.len() > 253
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::bad_field(
            "name",
            "a host name, domain or IP address",
        ));
    }
    let transport = match &query.transport {
        None => TransportSetting::DnsNaptr,
        Some(t) => TransportSetting::parse(t).ok_or_else(|| {
            ApiError::bad_field(
                "transport",
                "dnsNaptr, TLS, TCPOnly, TCPpreferred or UDPOnly",
            )
        })?,
    };
    let target = ResolveTarget::new(name.to_string(), transport, query.port.unwrap_or(0));
    let set = state
        .resolver
        .send(Resolve {
            target: target.clone(),
        })
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("resolver: {e}")))?
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, format!("{name}: {e}")))?;
    let rows = crate::cmd_routes::rows(&set, crate::cmd_routes::tokio_now());
    Ok(HttpResponse::Ok().json(crate::cmd_routes::JsonOutput {
        name: &target.name,
        transport_setting: target.transport_setting.as_str(),
        port: target.port,
        routes: rows,
    }))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

#[derive(Deserialize)]
struct Ready {
    ratio: Option<f64>,
}

/// Ready when at least `ratio` (0 to 1, default 1) of the configured lines
/// hold a registration.
async fn readyz(
    state: web::Data<ApiState>,
    query: web::Query<Ready>,
) -> Result<HttpResponse, ApiError> {
    let ratio = query.ratio.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&ratio) {
        return Err(ApiError::bad_field("ratio", "ratio must be 0 to 1"));
    }
    let statuses = state.all_status().await;
    let configured = state.lines.len();
    let registered = statuses
        .iter()
        .filter(|s| s.registered_route.is_some())
        .count();
    let ready = configured > 0 && registered as f64 >= ratio * configured as f64;
    let body = json!({
        "ready": ready,
        "registered": registered,
        "lines": configured,
        "ratio": ratio,
    });
    Ok(if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    })
}

async fn lines(state: web::Data<ApiState>) -> HttpResponse {
    let statuses = state.all_status().await;
    HttpResponse::Ok().json(statuses.iter().map(line_json).collect::<Vec<_>>())
}

async fn line(state: web::Data<ApiState>, n: web::Path<u32>) -> Result<HttpResponse, ApiError> {
    let status = state.status(*n).await?;
    Ok(HttpResponse::Ok().json(line_json(&status)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCall {
    to: String,
}

/// Places a call from line `n`; 201 with its Call-ID, the id every later
/// event of the call carries.
async fn place_call(
    state: web::Data<ApiState>,
    n: web::Path<u32>,
    body: web::Json<NewCall>,
) -> Result<HttpResponse, ApiError> {
    let target = target_uri(&body.to).map_err(|e| ApiError::bad_field("to", e))?;
    let line = state.line(*n)?;
    let placed = line.send(PlaceCall { target }).await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("line {n} is not running: {e}"),
        )
    })?;
    match placed {
        Ok(call_id) => Ok(HttpResponse::Created().json(json!({"call_id": call_id, "line": *n}))),
        Err(e) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("line {n}: {e}"),
        )),
    }
}

/// `snake_case` of a registration phase, as the events spell states.
fn phase_name(phase: Phase) -> &'static str {
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

fn line_json(s: &LineStatus) -> Value {
    json!({
        "line": s.index,
        "state": phase_name(s.phase),
        "registered_route": s.registered_route,
        "primary": s.primary,
        "call_id": s.call_id,
        "routes": s.routes,
        "register_retransmissions": s.register_retransmissions,
        "calls": s.calls.iter().map(|c| json!({
            "call_id": c.call_id,
            "direction": c.direction,
            "state": format!("{:?}", c.state).to_lowercase(),
            "held": c.held,
            "rtp_sent": c.rtp_sent,
            "rtp_received": c.rtp_received,
        })).collect::<Vec<_>>(),
    })
}
