//! Runs: `/v1/smiths/{sid}/runs…` and `/v1/runs`. Synchronous calls hold the connection
//! until the run finishes or pauses; `stream: true` answers with the native SSE envelope.

use std::time::Duration;

use std::collections::BTreeMap;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::api::pagination::{PageParams, list_type};
use crate::api::schemas;
use crate::http::ApiResult;
use crate::http::INPUT_BODY_LIMIT;
use crate::http::auth::{Authorized, scopes};
use crate::http::extract::{Json, OptionalJson, Path, Query};
use crate::http::headers;
use ingram_core::auth::Caller;
use ingram_core::auth::Scope;
use ingram_core::domain::approvals::{Decision, Verdict as CoreVerdict};
use ingram_core::domain::runs::{self, RunFilters};
use ingram_core::domain::smiths;
use ingram_core::domain::turn::TurnInstructions;
use ingram_core::engine::events::Subscription;
use ingram_core::engine::start::{Submission, Turn};
use ingram_core::engine::{OnBusy, ToolOutput};
use ingram_core::error::{Error, ErrorBody};
use ingram_core::ids::{ApprovalId, RunId, SmithId};
use ingram_core::providers::{Role, StopReason};
use ingram_core::store::{decode_json, decode_json_opt, run};
use ingram_core::types::{
    FunctionTool, InputMessage, RequiredAction, RunConfig, RunMode, RunOutput, RunStatus, RunUsage,
};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Run {
    #[schema(value_type = schemas::RunId)]
    pub id: RunId,
    #[schema(value_type = schemas::RunStatus)]
    pub status: RunStatus,
    #[schema(value_type = schemas::SmithId)]
    pub smith_id: SmithId,
    pub thread_id: String,
    #[schema(value_type = Vec<schemas::InputMessage>)]
    pub input: Vec<InputMessage>,
    #[schema(value_type = Option<schemas::RunOutput>)]
    pub output: Option<RunOutput>,
    #[schema(value_type = Option<schemas::RunUsage>)]
    pub usage: Option<RunUsage>,
    /// Set when the run failed.
    #[schema(value_type = Option<schemas::ErrorBody>)]
    pub error: Option<ErrorBody>,
    /// Set while the run waits for client tool results or decisions on approvals.
    #[schema(value_type = Option<schemas::RequiredAction>)]
    pub required_action: Option<RequiredAction>,
    #[schema(value_type = Option<schemas::StopReason>)]
    pub stop_reason: Option<StopReason>,
    /// The config the run resolved at creation.
    #[schema(value_type = schemas::RunConfig)]
    pub config: RunConfig,
    pub metadata: Option<BTreeMap<String, String>>,
    /// The run this one replays.
    #[schema(value_type = Option<schemas::RunId>)]
    pub replay_of: Option<RunId>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

list_type!(RunList, Run);

impl TryFrom<run::Model> for Run {
    type Error = Error;

    fn try_from(model: run::Model) -> Result<Self, Error> {
        let id = model.id.as_str();
        Ok(Self {
            status: model.status,
            input: decode_json(id, "input", &model.input)?,
            config: decode_json(id, "config", &model.config)?,
            output: decode_json_opt(id, "output", model.output.as_ref())?,
            usage: decode_json_opt(id, "usage", model.usage.as_ref())?,
            error: decode_json_opt(id, "error", model.error.as_ref())?,
            required_action: decode_json_opt(id, "required_action", model.required_action.as_ref())?,
            stop_reason: model.stop_reason,
            metadata: decode_json_opt(id, "metadata", model.metadata.as_ref())?,
            id: model.id,
            smith_id: model.smith_id,
            thread_id: model.thread_id,
            replay_of: model.replay_of,
            created_at: model.created_at,
            started_at: model.started_at,
            completed_at: model.completed_at,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRunRequest {
    /// The new messages of this turn.
    #[schema(value_type = Vec<schemas::InputMessage>, max_items = 2048)]
    pub input: Vec<InputMessage>,
    /// Your own thread id, or a `thr_` id from an earlier run; a new thread when absent.
    #[schema(max_length = 128)]
    pub thread_id: Option<String>,
    /// Answer with the SSE event stream instead of the finished run.
    #[serde(default)]
    pub stream: bool,
    #[schema(schema_with = crate::api::metadata_schema)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Overrides the model for this run, within the smith's `allowed_models` when set.
    #[schema(max_length = 256)]
    pub model: Option<String>,
    /// This run's instructions. From a tenant-admin token they replace the smith's; from a
    /// smith token they are added after them (a browser never removes the design).
    #[schema(max_length = 262144)]
    pub instructions: Option<String>,
    /// Client-side functions: the run pauses with `requires_action` when the model calls one.
    #[schema(value_type = Option<Vec<schemas::FunctionTool>>, max_items = 128)]
    pub tools: Option<Vec<FunctionTool>>,
    /// When the thread has an active run: `reject` (409 thread_busy, the default), `enqueue` or `interrupt`.
    #[serde(default)]
    #[schema(value_type = schemas::OnBusy)]
    pub on_busy: OnBusy,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitToolOutputsRequest {
    /// The outputs of the client calls a run waits for (`submit_tool_outputs`).
    #[serde(default)]
    #[schema(value_type = Option<Vec<schemas::ToolOutput>>, max_items = 128)]
    pub tool_outputs: Vec<ToolOutput>,
    /// Decisions on approvals a run waits for (`submit_approvals`); needs `approvals:write`.
    /// Each names a pending approval of this run; the run resumes once none is pending.
    #[schema(max_items = 16)]
    pub approvals: Option<Vec<ApprovalDecision>>,
    #[serde(default)]
    pub stream: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalDecision {
    #[schema(value_type = schemas::ApprovalId)]
    pub approval_id: ApprovalId,
    pub decision: Verdict,
    /// Approve the call with these arguments instead of the model's: a JSON object of at most
    /// 64 KiB (approve only).
    #[schema(value_type = Option<Object>)]
    pub arguments: Option<serde_json::Value>,
    /// Why; a rejection's reason is what the model reads.
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The call runs, once.
    Approve,
    /// The call does not run; the model reads that it was rejected, and why.
    Reject,
}

impl From<ApprovalDecision> for Decision {
    fn from(decision: ApprovalDecision) -> Self {
        Self {
            approval_id: decision.approval_id,
            verdict: match decision.decision {
                Verdict::Approve => CoreVerdict::Approve,
                Verdict::Reject => CoreVerdict::Reject,
            },
            arguments: decision.arguments,
            reason: decision.reason,
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRunRequest {
    #[serde(default)]
    pub stream: bool,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListRunsParams {
    #[param(value_type = Option<schemas::SmithId>)]
    pub smith_id: Option<SmithId>,
    /// queued, running, requires_action, completed, failed or cancelled.
    #[param(value_type = Option<schemas::RunStatus>)]
    pub status: Option<RunStatus>,
    /// Only runs of smiths whose external_id starts with this.
    pub external_id_prefix: Option<String>,
    /// Only runs created at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_run, list_smith_runs))
        .layer(DefaultBodyLimit::max(INPUT_BODY_LIMIT))
        .routes(routes!(get_run))
        .routes(routes!(run_events))
        .routes(routes!(submit_tool_outputs))
        .routes(routes!(replay_run))
        .routes(routes!(cancel_run))
        .routes(routes!(list_runs))
}

const SID: &str = "The smith's id (smt_…).";
const RID: &str = "The run's id (run_…).";
fn validate_create(request: &CreateRunRequest) -> ingram_core::Result<()> {
    if request.input.is_empty() {
        return Err(Error::invalid_param("input", "input needs at least one message."));
    }
    if request.input.iter().any(|message| message.role == Role::Tool) {
        return Err(Error::invalid_param("input", "Tool results go to POST …/runs/{rid}/submit, not into input."));
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/smiths/{sid}/runs", tag = "runs", params(("sid" = schemas::SmithId, Path, description = SID)),
    request_body = CreateRunRequest,
    responses((status = 200, description = "The finished (or paused) run; with `stream: true`, its events as SSE frames `event: <type>`, `id: <seq>`, `data: {\"v\":1,…}`.",
        content((Run = "application/json"), (schemas::RunEventData = "text/event-stream")))))]
async fn create_run(
    State(state): State<AppState>,
    caller: Authorized<scopes::RunsWrite>,
    Path(sid): Path<SmithId>,
    Json(request): Json<CreateRunRequest>,
) -> ApiResult<Response> {
    let smith = smiths::get_with_agent(&state.db, &state.caches, &caller, &sid).await?;
    validate_create(&request)?;
    let turn = Turn {
        thread_id: request.thread_id,
        model: request.model,
        instructions: match request.instructions {
            Some(text) => TurnInstructions::Replace(text),
            None => TurnInstructions::Append(Vec::new()),
        },
        client_tools: request.tools.unwrap_or_default(),
        metadata: request.metadata,
        on_busy: request.on_busy,
        stream: request.stream,
        ..Turn::new(RunMode::Native, request.input)
    };
    let started = state.engine.start(&caller, &smith, turn).await?;
    answer(&state, started.run.id, 0, started.events).await
}

/// The run's SSE stream (when given its events), or (synchronously) the run once it
/// finished or paused.
async fn answer(state: &AppState, run_id: RunId, after: i32, events: Option<Subscription>) -> ApiResult<Response> {
    if let Some(events) = events {
        return Ok(sse(&run_id, after, events));
    }
    let settled = state.engine.wait_settled(&run_id, after).await?;
    Ok(axum::Json(Run::try_from(settled)?).into_response())
}

fn sse(run_id: &RunId, after: i32, subscription: Subscription) -> Response {
    let frames = futures::stream::unfold(subscription, |mut subscription| async move {
        match subscription.next().await {
            Ok(Some(event)) => {
                let frame =
                    Event::default().event(event.kind.as_str()).id(event.seq.to_string()).data(event.data.as_str());
                Some((Ok::<_, std::convert::Infallible>(frame), subscription))
            }
            Ok(None) => None,
            Err(err) => {
                tracing::warn!(code = %err.code, "a run event stream broke off");
                None
            }
        }
    });
    let sse = Sse::new(frames).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)));
    ([(headers::RUN_ID, run_id.to_string()), (headers::STREAM_AFTER, after.to_string())], sse).into_response()
}

#[utoipa::path(get, path = "/v1/smiths/{sid}/runs", tag = "runs", params(("sid" = schemas::SmithId, Path, description = SID), PageParams),
    responses((status = 200, description = "The smith's runs, newest first.", body = RunList)))]
async fn list_smith_runs(
    State(state): State<AppState>,
    caller: Authorized<scopes::RunsRead>,
    Path(sid): Path<SmithId>,
    Query(params): Query<PageParams>,
) -> ApiResult<axum::Json<RunList>> {
    smiths::get(&state.db, &caller, &sid).await?;
    let filters = RunFilters { smith_id: Some(sid), ..RunFilters::default() };
    list(&state, &caller, &filters, &params).await
}

#[utoipa::path(get, path = "/v1/runs", tag = "runs", params(ListRunsParams),
    responses((status = 200, description = "Runs across the project's smiths, newest first.", body = RunList)))]
async fn list_runs(
    State(state): State<AppState>,
    caller: Authorized<scopes::RunsRead>,
    Query(params): Query<ListRunsParams>,
) -> ApiResult<axum::Json<RunList>> {
    let filters = RunFilters {
        smith_id: params.smith_id,
        status: params.status,
        external_id_prefix: params.external_id_prefix,
        since: params.since,
    };
    list(&state, &caller, &filters, &PageParams { limit: params.limit, cursor: params.cursor }).await
}

async fn list(
    state: &AppState,
    caller: &Caller,
    filters: &RunFilters,
    params: &PageParams,
) -> ApiResult<axum::Json<RunList>> {
    let page = runs::list(&state.db, caller, filters, &params.validate()?).await?;
    Ok(axum::Json(page.try_map(Run::try_from)?.into()))
}

#[utoipa::path(get, path = "/v1/smiths/{sid}/runs/{rid}", tag = "runs",
    params(("sid" = schemas::SmithId, Path, description = SID), ("rid" = schemas::RunId, Path, description = RID)),
    responses((status = 200, description = "The run.", body = Run)))]
async fn get_run(
    State(state): State<AppState>,
    caller: Authorized<scopes::RunsRead>,
    Path((sid, rid)): Path<(SmithId, RunId)>,
) -> ApiResult<axum::Json<Run>> {
    Ok(axum::Json(Run::try_from(runs::get(&state.db, &caller, &sid, &rid).await?)?))
}

#[utoipa::path(get, path = "/v1/smiths/{sid}/runs/{rid}/events", tag = "runs",
    params(("sid" = schemas::SmithId, Path, description = SID), ("rid" = schemas::RunId, Path, description = RID),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event sequence number.")),
    responses((status = 200, description = "The run's stored events, then live ones until it finishes or pauses.",
        content((schemas::RunEventData = "text/event-stream")))))]
async fn run_events(
    State(state): State<AppState>,
    caller: Authorized<scopes::RunsRead>,
    Path((sid, rid)): Path<(SmithId, RunId)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let run = runs::get(&state.db, &caller, &sid, &rid).await?;
    let after = match headers.get("last-event-id") {
        None => 0,
        Some(value) => {
            value.to_str().ok().and_then(|value| value.trim().parse::<i32>().ok()).filter(|seq| *seq >= 0).ok_or_else(
                || {
                    Error::bad_request("invalid_last_event_id", "Last-Event-ID must be an event sequence number.")
                        .with_param("Last-Event-ID")
                },
            )?
        }
    };
    Ok(sse(&run.id, after, state.engine.follow(&run, after).await?))
}

#[utoipa::path(post, path = "/v1/smiths/{sid}/runs/{rid}/submit", tag = "runs",
    params(("sid" = schemas::SmithId, Path, description = SID), ("rid" = schemas::RunId, Path, description = RID)), request_body = SubmitToolOutputsRequest,
    responses((status = 200, description = "The resumed run once it finished or paused again; with `stream: true`, its further events.",
        content((Run = "application/json"), (schemas::RunEventData = "text/event-stream")))))]
async fn submit_tool_outputs(
    State(state): State<AppState>,
    caller: Authorized<scopes::RunsWrite>,
    Path((sid, rid)): Path<(SmithId, RunId)>,
    Json(request): Json<SubmitToolOutputsRequest>,
) -> ApiResult<Response> {
    let run = runs::get(&state.db, &caller, &sid, &rid).await?;
    let submission = match request.approvals {
        Some(_) if !request.tool_outputs.is_empty() => {
            return Err(Error::invalid_param(
                "approvals",
                "Submit approvals and tool outputs separately: a run asks for decisions first.",
            )
            .into());
        }
        Some(decisions) => {
            caller.require(Scope::ApprovalsWrite)?;
            Submission::Approvals(decisions.into_iter().map(Decision::from).collect())
        }
        None => Submission::ToolOutputs(request.tool_outputs),
    };
    let resumed = state.engine.resume(&run, submission, request.stream).await?;
    if resumed.still_waiting && resumed.events.is_none() {
        // Other approvals of the pause are undecided: the run, as it waits.
        let waiting = runs::get(&state.db, &caller, &sid, &rid).await?;
        return Ok(axum::Json(Run::try_from(waiting)?).into_response());
    }
    answer(&state, run.id, run.last_seq, resumed.events).await
}

#[utoipa::path(post, path = "/v1/smiths/{sid}/runs/{rid}/replay", tag = "runs",
    params(("sid" = schemas::SmithId, Path, description = SID), ("rid" = schemas::RunId, Path, description = RID)), request_body = ReplayRunRequest,
    responses((status = 200, description = "A new run with the original's input and config, on a new thread, linked by `replay_of`.",
        content((Run = "application/json"), (schemas::RunEventData = "text/event-stream")))))]
async fn replay_run(
    State(state): State<AppState>,
    caller: Authorized<scopes::RunsWrite>,
    Path((sid, rid)): Path<(SmithId, RunId)>,
    OptionalJson(request): OptionalJson<ReplayRunRequest>,
) -> ApiResult<Response> {
    let original = runs::get(&state.db, &caller, &sid, &rid).await?;
    let smith = smiths::get_with_agent(&state.db, &state.caches, &caller, &sid).await?;
    let started = state.engine.replay(&caller, &smith, original, request.stream).await?;
    answer(&state, started.run.id, 0, started.events).await
}

#[utoipa::path(post, path = "/v1/smiths/{sid}/runs/{rid}/cancel", tag = "runs",
    params(("sid" = schemas::SmithId, Path, description = SID), ("rid" = schemas::RunId, Path, description = RID)),
    responses((status = 200, description = "The cancelled run.", body = Run)))]
async fn cancel_run(
    State(state): State<AppState>,
    caller: Authorized<scopes::RunsWrite>,
    Path((sid, rid)): Path<(SmithId, RunId)>,
) -> ApiResult<axum::Json<Run>> {
    let run = runs::get(&state.db, &caller, &sid, &rid).await?;
    Ok(axum::Json(Run::try_from(state.engine.cancel(&run).await?)?))
}
