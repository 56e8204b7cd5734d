//! The endpoints: each one call of the fleet's control API
//! ([`sipfleet_actors::fleet::Fleet`]), its answer as JSON. Routes are
//! shaped as in `--events json` (`{"transport","host","address","source"}`).

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use sipfleet_actors::fleet::{ControlError, Fleet};
use sipfleet_protocol::dns::TransportSetting;
use sipfleet_protocol::line::CallAction;

use super::error::ApiError;
use super::events::EventLog;
use crate::run_commands::target_uri;

/// How long `DELETE /v1/lines/{n}` waits for the line's un-REGISTER.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the handlers reach: the fleet, and the recent events for the
/// WebSocket's replay.
#[derive(Clone)]
pub struct ApiState {
    pub(super) fleet: Arc<Fleet>,
    pub(super) events: Arc<EventLog>,
    /// The run's configuration files: a line added over HTTP is built over
    /// them, so it inherits their fleet-wide keys as the configured lines do.
    config: Arc<Vec<std::path::PathBuf>>,
}

impl ApiState {
    pub fn new(fleet: Arc<Fleet>, events: Arc<EventLog>, config: Vec<std::path::PathBuf>) -> Self {
        ApiState {
            fleet,
            events,
            config: Arc::new(config),
        }
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(status_page))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .route("/v1/lines", web::get().to(lines))
        .route("/v1/lines", web::post().to(add_line))
        .route("/v1/lines/{n}", web::get().to(line))
        .route("/v1/lines/{n}", web::delete().to(remove_line))
        .route("/v1/lines/{n}/register", web::post().to(register_now))
        .route("/v1/lines/{n}/calls", web::post().to(place_call))
        .route("/v1/calls", web::get().to(calls))
        .route("/v1/calls/{id}/{action}", web::post().to(call_action))
        .route("/v1/routes", web::get().to(routes_of))
        .route("/v1/events", web::get().to(super::events::websocket));
}

/// The HTTP status of a control error ([`ControlError::http_status`]):
/// the client's fault (4xx) or the line's state (409), never a 500 for
/// input; configuration text names the `config` field.
impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status == StatusCode::BAD_REQUEST {
            return ApiError::bad_field("config", e.to_string());
        }
        ApiError::new(status, e.to_string())
    }
}

/// The status page: one embedded HTML file, no external resource; its
/// script reads `/v1/lines` and follows `/v1/events`.
async fn status_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(include_str!("status.html"))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ready {
    ratio: Option<f64>,
}

/// Ready when at least `ratio` (0 to 1, default 1) of the fleet's lines
/// hold a registration.
async fn readyz(
    state: web::Data<ApiState>,
    query: web::Query<Ready>,
) -> Result<HttpResponse, ApiError> {
    let ratio = query.ratio.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&ratio) {
        return Err(ApiError::bad_field("ratio", "ratio must be 0 to 1"));
    }
    let details = state.fleet.line_details().await;
    let registered = details
        .iter()
        .filter(|d| d.status.registered_route.is_some())
        .count();
    let ready = state.fleet.ready(ratio);
    let body = json!({
        "ready": ready,
        "registered": registered,
        "lines": details.len(),
        "ratio": ratio,
    });
    Ok(if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    })
}

/// The Prometheus text exposition.
async fn metrics(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.fleet.metrics_text().await)
}

async fn lines(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok().json(state.fleet.line_details().await)
}

async fn line(state: web::Data<ApiState>, n: web::Path<u32>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.fleet.line_detail(*n).await?))
}

/// `POST /v1/lines`: one `reg.x` block, as Poly configuration text
/// (`Content-Type: text/plain`, `key="value"` lines or XML) or as a JSON
/// object of keys and values, built over the run's configuration files
/// (their `voIpProt.*` keys apply, the block's own keys override).
/// 201 with the new line's index; it starts registering at once.
async fn add_line(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let text = config_text(&req, &body)?;
    let line = sipfleet::config_files::load_line(&state.config, &text)?;
    let n = state.fleet.add_line(&line)?;
    Ok(HttpResponse::Created().json(json!({"line": n})))
}

/// The configuration text of an add-line body: the text itself, or the
/// JSON object's keys and values as `key="value"` lines.
fn config_text(req: &HttpRequest, body: &[u8]) -> Result<String, ApiError> {
    let json = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return String::from_utf8(body.to_vec())
            .map_err(|_| ApiError::bad_field("config", "the configuration text is not UTF-8"));
    }
    let object: serde_json::Map<String, Value> = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_field(
            "config",
            format!("a JSON object of Poly keys and values is expected: {e}"),
        )
    })?;
    let mut text = String::new();
    for (key, value) in &object {
        let value = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => u8::from(*b).to_string(),
            _ => {
                return Err(ApiError::bad_field(
                    "config",
                    format!(
                        "{}: a string, number or boolean is expected",
                        crate::output::clip(key)
                    ),
                ))
            }
        };
        if key.contains(['=', '\n', '\r', '"']) || value.contains(['\n', '\r', '"']) {
            return Err(ApiError::bad_field(
                "config",
                format!(
                    "{}: quotes and line breaks are not allowed",
                    crate::output::clip(key)
                ),
            ));
        }
        text.push_str(&format!("{key}=\"{value}\"\n"));
    }
    Ok(text)
}

/// `DELETE /v1/lines/{n}`: un-REGISTERs (Expires: 0, at most 5 s), then
/// the line is gone.
async fn remove_line(
    state: web::Data<ApiState>,
    n: web::Path<u32>,
) -> Result<HttpResponse, ApiError> {
    state.fleet.remove_line(*n, REMOVE_TIMEOUT).await?;
    Ok(HttpResponse::Ok().json(json!({"line": *n, "removed": true})))
}

/// `POST /v1/lines/{n}/register`: a REGISTER now, as if the refresh came.
async fn register_now(
    state: web::Data<ApiState>,
    n: web::Path<u32>,
) -> Result<HttpResponse, ApiError> {
    let started = state.fleet.register_now(*n).await?;
    Ok(HttpResponse::Accepted().json(json!({"line": *n, "started": started})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCall {
    to: String,
}

/// Places a call from line `n`; 201 with its Call-ID, the id every later
/// event of the call carries and `/v1/calls/{id}/...` takes.
async fn place_call(
    state: web::Data<ApiState>,
    n: web::Path<u32>,
    body: web::Json<NewCall>,
) -> Result<HttpResponse, ApiError> {
    let target = target_uri(&body.to).map_err(|e| ApiError::bad_field("to", e))?;
    let call_id = state.fleet.place_call(*n, &target).await?;
    Ok(HttpResponse::Created().json(json!({"call_id": call_id, "line": *n})))
}

async fn calls(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok().json(state.fleet.calls().await)
}

/// `POST /v1/calls/{id}/answer|hold|resume|hangup`.
async fn call_action(
    state: web::Data<ApiState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, action) = path.into_inner();
    let action = match action.as_str() {
        "answer" => CallAction::Answer,
        "hold" => CallAction::Hold,
        "resume" => CallAction::Resume,
        "hangup" => CallAction::Hangup,
        other => {
            return Err(ApiError::not_found(format!(
                "no call action {:?}: answer, hold, resume or hangup",
                crate::output::clip(other)
            )))
        }
    };
    state.fleet.call_action(&id, action).await?;
    Ok(HttpResponse::Ok().json(json!({"call_id": id, "done": true})))
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
        None => None,
        Some(t) => Some(TransportSetting::parse(t).ok_or_else(|| {
            ApiError::bad_field(
                "transport",
                "dnsNaptr, TLS, TCPOnly, TCPpreferred or UDPOnly",
            )
        })?),
    };
    let routes = state.fleet.routes(name, transport, query.port).await?;
    Ok(HttpResponse::Ok().json(routes))
}
