//! The REST routes: one table of (method, path, handler) that both builds the router and
//! is checked against the OpenAPI description by a test. Read routes need a supervisor
//! token, agent control an admin token; /metrics may be open; the page and the OpenAPI
//! description are open (they hold no data).

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, header};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get, post};
use serde::Deserialize;
use tokio::sync::oneshot;

use crate::endpoint::TrunkStatus;
use crate::events::now_ms;
use crate::stats::tz::parse_date;
use crate::stats::{AgentView, Overview, QueueDay, QueueView, StoredEvent};

use super::auth::Caller;
use super::config::{DashboardConfig, Role};
use super::control::{AgentCommand, AgentControl, ControlError, ReloadRequest};
use super::error::ApiError;
use super::state::AppState;
use super::{dashboard, prometheus, stream};

/// How long an agent command waits for the ACD's answer.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn table() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/", get(dashboard::index)),
        (Method::GET, "/app.js", get(dashboard::script)),
        (Method::GET, "/style.css", get(dashboard::style)),
        (Method::GET, "/openapi.json", get(openapi)),
        (Method::GET, "/metrics", get(metrics)),
        (Method::GET, "/api/v1/overview", get(overview)),
        (Method::GET, "/api/v1/queues", get(queues)),
        (Method::GET, "/api/v1/queues/{queue}", get(queue)),
        (
            Method::GET,
            "/api/v1/queues/{queue}/intervals",
            get(intervals),
        ),
        (Method::GET, "/api/v1/agents", get(agents)),
        (Method::GET, "/api/v1/agents/{agent}", get(agent)),
        (Method::POST, "/api/v1/agents/{agent}/login", post(login)),
        (Method::POST, "/api/v1/agents/{agent}/logout", post(logout)),
        (Method::POST, "/api/v1/agents/{agent}/pause", post(pause)),
        (Method::POST, "/api/v1/agents/{agent}/resume", post(resume)),
        (Method::GET, "/api/v1/events", get(events)),
        (Method::GET, "/api/v1/trunks", get(trunks)),
        (Method::GET, "/api/v1/peers", get(peers)),
        (Method::POST, "/api/v1/reload", post(reload)),
        (Method::GET, "/api/v1/stream", get(stream::stream)),
        (Method::GET, "/api/v1/dashboard", get(dashboard_config)),
    ]
}

pub(super) const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn metrics(
    caller: Result<Caller, ApiError>,
    State(s): State<AppState>,
) -> Result<impl IntoResponse, ApiError> {
    if !s.metrics_open {
        caller?;
    }
    let overview = s.stats.overview(now_ms()).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        prometheus::render(&s.metrics, &overview),
    ))
}

async fn overview(_: Caller, State(s): State<AppState>) -> Result<Json<Overview>, ApiError> {
    Ok(Json(s.stats.overview(now_ms()).await?))
}

async fn queues(_: Caller, State(s): State<AppState>) -> Result<Json<Vec<QueueView>>, ApiError> {
    Ok(Json(s.stats.overview(now_ms()).await?.queues))
}

async fn queue(
    _: Caller,
    State(s): State<AppState>,
    Path(queue): Path<String>,
) -> Result<Json<QueueView>, ApiError> {
    let overview = s.stats.overview(now_ms()).await?;
    overview
        .queues
        .into_iter()
        .find(|q| q.queue == queue)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no queue {queue:?}")))
}

#[derive(Deserialize)]
struct DateQuery {
    date: Option<String>,
}

async fn intervals(
    _: Caller,
    State(s): State<AppState>,
    Path(queue): Path<String>,
    Query(q): Query<DateQuery>,
) -> Result<Json<QueueDay>, ApiError> {
    let date = match q.date.as_deref() {
        None | Some("") => None,
        Some(d) => Some(
            parse_date(d)
                .ok_or_else(|| ApiError::BadRequest(format!("date {d:?} is not YYYY-MM-DD")))?,
        ),
    };
    s.stats
        .queue_day(&queue, date, now_ms())
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no queue {queue:?}")))
}

/// The registering trunks and where their registrations stand.
async fn trunks(_: Caller, State(s): State<AppState>) -> Json<Vec<TrunkStatus>> {
    Json(s.trunks.borrow().clone())
}

/// The trunks and agents probed with OPTIONS, and whether each answers.
async fn peers(_: Caller, State(s): State<AppState>) -> Json<Vec<crate::endpoint::PeerStatus>> {
    Json(s.peers.borrow().clone())
}

async fn agents(_: Caller, State(s): State<AppState>) -> Result<Json<Vec<AgentView>>, ApiError> {
    Ok(Json(s.stats.overview(now_ms()).await?.agents))
}

async fn agent(
    _: Caller,
    State(s): State<AppState>,
    Path(agent): Path<String>,
) -> Result<Json<AgentView>, ApiError> {
    let overview = s.stats.overview(now_ms()).await?;
    overview
        .agents
        .into_iter()
        .find(|a| a.agent == agent)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no agent {agent:?} in the event log")))
}

#[derive(Deserialize)]
struct EventsQuery {
    limit: Option<u32>,
    before: Option<i64>,
}

async fn events(
    _: Caller,
    State(s): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Vec<StoredEvent>>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(s.stats.recent(limit, q.before).await?))
}

async fn dashboard_config(_: Caller, State(s): State<AppState>) -> Json<DashboardConfig> {
    Json(s.dashboard.clone())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: Option<String>,
}

fn reason(body: &Bytes) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let b: ReasonBody =
        serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("body: {e}")))?;
    Ok(b.reason.filter(|r| !r.trim().is_empty()))
}

async fn login(
    c: Caller,
    State(s): State<AppState>,
    Path(agent): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    control(&s, c, agent, AgentCommand::Login).await
}

async fn logout(
    c: Caller,
    State(s): State<AppState>,
    Path(agent): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let reason = reason(&body)?.unwrap_or_else(|| "api".to_owned());
    control(&s, c, agent, AgentCommand::Logout { reason }).await
}

async fn pause(
    c: Caller,
    State(s): State<AppState>,
    Path(agent): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let reason =
        reason(&body)?.ok_or_else(|| ApiError::BadRequest("a pause needs a reason".to_owned()))?;
    control(&s, c, agent, AgentCommand::Pause { reason }).await
}

async fn resume(
    c: Caller,
    State(s): State<AppState>,
    Path(agent): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    control(&s, c, agent, AgentCommand::Resume).await
}

async fn control(
    s: &AppState,
    caller: Caller,
    agent: String,
    command: AgentCommand,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Admin)?;
    let tx = s
        .control
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("agent control is not connected".to_owned()))?;
    let (reply, answer) = oneshot::channel();
    tracing::info!(agent, ?command, by = caller.name, "agent control");
    let request = AgentControl {
        agent,
        command,
        requested_by: caller.name,
        reply,
    };
    tx.send(request)
        .await
        .map_err(|_| ApiError::Unavailable("the ACD has stopped".to_owned()))?;
    match tokio::time::timeout(CONTROL_TIMEOUT, answer).await {
        Err(_) => Err(ApiError::Timeout),
        Ok(Err(_)) => Err(ApiError::Unavailable(
            "the ACD dropped the request".to_owned(),
        )),
        Ok(Ok(Err(e @ ControlError::UnknownAgent(_)))) => Err(ApiError::NotFound(e.to_string())),
        Ok(Ok(Err(e @ ControlError::Refused(_)))) => Err(ApiError::Conflict(e.to_string())),
        Ok(Ok(Ok(()))) => Ok(Json(serde_json::json!({ "ok": true }))),
    }
}

/// Loads the dialplans again (admin): 200 with how many are in force, or 422 with every
/// problem (the running dialplans stay).
async fn reload(c: Caller, State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    c.require(Role::Admin)?;
    let tx = s
        .reload
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("reload is not connected".to_owned()))?;
    let (reply, answer) = oneshot::channel();
    tx.send(ReloadRequest {
        requested_by: c.name,
        reply,
    })
    .await
    .map_err(|_| ApiError::Unavailable("the engine has stopped".to_owned()))?;
    match answer.await {
        Err(_) => Err(ApiError::Unavailable(
            "the engine dropped the request".to_owned(),
        )),
        Ok(Ok(dialplans)) => Ok((
            axum::http::StatusCode::OK,
            Json(serde_json::json!({ "dialplans": dialplans })),
        )),
        Ok(Err(problems)) => Ok((
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({ "problems": problems })),
        )),
    }
}
