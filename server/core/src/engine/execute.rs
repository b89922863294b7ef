//! One execution of a run: from queued (or resumed after `/submit`) until it completes,
//! fails, is cancelled, or pauses for client tool results.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::json;
use tokio::sync::watch;

use super::capacity::{Slot, SlotKind};
use super::events::{Emitter, LiveRun};
use super::run_store::Ending;
use super::{Engine, Known, remember};
use crate::domain::approvals;
use crate::domain::memory::{self, context::Remembering};
use crate::domain::tools::{self, resolve::Runner};
use crate::domain::{files, is_unique_violation};
use crate::error::{Error, ErrorBody, ErrorKind, Result};
use crate::ids::{FileId, RunId};
use crate::providers::routing::{ResolvedModel, open_stream, resolve};
use crate::providers::{
    Endpoint, Message, ModelEvent, ModelRequest, ModelStream, ProviderError, ProviderErrorKind, StopReason, ToolCall,
    ToolChoice, ToolSpec, Usage, pricing,
};
use crate::store::{approval, file, now, run};
use crate::types::{
    ApprovalRequiredEvent, EVENT_VERSION, FunctionTool, InputMessage, MessageCompletedEvent, MessageDeltaEvent,
    PendingApproval, RequiredAction, RequiredActionType, RunCancelledEvent, RunCompletedEvent, RunConfig, RunEventData,
    RunFailedEvent, RunMode, RunOutput, RunRequiresActionEvent, RunStartedEvent, RunStatus, RunUsage,
    SERVER_TOOL_ARGUMENTS_MAX, SERVER_TOOL_OUTPUT_RECORDED, ServerToolCall, ToolChoiceMode, ToolChoiceOption,
    ToolCompletedEvent, ToolExecutingEvent,
};

/// Earlier runs of a thread the model sees, at most.
const HISTORY_RUNS: u64 = 50;
const PROVIDER_ATTEMPTS: u32 = 3;
/// How often a queued run looks for a thread released on another replica; one released
/// on this replica wakes it at once.
const ENQUEUE_POLL: Duration = Duration::from_secs(1);

/// Rounds of server-side calls one execution of a run may make in a row (a resume after a
/// pause for client tools starts over); one more is `tool_rounds_exceeded`.
const TOOL_ROUNDS_MAX: usize = 8;
/// A server-side call's deadline.
const SERVER_TOOL_DEADLINE: Duration = Duration::from_secs(30);
/// Characters of a server-side tool's output the model reads.
const SERVER_TOOL_OUTPUT_TO_MODEL: usize = 16_000;
/// Server-side calls one model answer may make; the rest answer an error unrun.
const SERVER_CALLS_PER_ROUND_MAX: usize = 16;

/// How an execution ended, before it is recorded. `steps` are the messages it adds to the
/// run's transcript, its last assistant message included.
enum Outcome {
    /// `output.tool_calls` is non-empty only for a run whose mode ends (not pauses) on client
    /// tool calls.
    Completed {
        output: RunOutput,
        steps: Vec<Message>,
        stop_reason: StopReason,
        usage: RunUsage,
    },
    /// Waiting for client tool outputs or for decisions on approvals, as `action` says.
    Paused {
        output: RunOutput,
        steps: Vec<Message>,
        usage: RunUsage,
        action: RequiredAction,
    },
    /// `usage` when model calls were made before the failure.
    Failed {
        error: ErrorBody,
        usage: Option<RunUsage>,
    },
    Cancelled,
}

/// Executes `current` (the run's row as it was written when it was started) and records how it ended.
/// `slot` is the run's place in its project's capacity, held until the end is recorded.
pub(super) async fn run(
    engine: &Engine,
    current: run::Model,
    known: Known,
    live: &std::sync::Arc<LiveRun>,
    mut slot: Slot,
) {
    let mut current = current;
    let run_id = current.id.clone();
    let (smith_id, thread_id) = (current.smith_id.clone(), current.thread_id.clone());
    // Nothing else writes the transcript while the run executes.
    let transcript = match crate::store::decode_json(&run_id, "transcript", &current.transcript) {
        Ok(transcript) => transcript,
        // Left as it is, for a person to look at: the lease lapses and the sweeper fails the
        // run with run_interrupted rather than the transcript being overwritten.
        Err(_) => return,
    };
    let mut emitter = Emitter::new(&run_id, live.clone(), &engine.inner.runs);
    let mut cancel = live.cancel.subscribe();
    let mut clock =
        WorkClock { worked_before: Duration::from_millis(u64::try_from(current.worked_ms).unwrap_or(0)), since: None };
    let outcome = match execute(engine, &mut current, known, &mut emitter, &mut cancel, &mut slot, &mut clock).await {
        Ok(outcome) => outcome,
        Err(err) => Outcome::Failed { error: err.envelope().error, usage: None },
    };
    let remember = match &outcome {
        Outcome::Completed { output, .. } => remember::CompletedTurn::of(&current, &output.content),
        _ => None,
    };
    match record(engine, current, transcript, &mut emitter, outcome, clock.worked()).await {
        Ok(true) => {
            engine.thread_released(&smith_id, &thread_id);
            if let Some(turn) = remember {
                engine.spawn_extraction(turn);
            }
        }
        Ok(false) => {}
        // The lease lapses and the sweeper fails the run with run_interrupted.
        Err(err) => tracing::error!(%run_id, code = %err.code, "could not record the end of a run"),
    }
}

/// A run's working time: what earlier executions used, and since when this one works.
/// Waiting for the thread and pauses for client tools do not count.
struct WorkClock {
    worked_before: Duration,
    since: Option<tokio::time::Instant>,
}

impl WorkClock {
    fn worked(&self) -> Duration {
        self.worked_before + self.since.map_or(Duration::ZERO, |since| since.elapsed())
    }
}

fn deadline_exceeded(deadline: Duration) -> ErrorBody {
    Error::new(
        ErrorKind::Timeout,
        "run_deadline_exceeded",
        format!("The run worked longer than its deadline of {} s.", deadline.as_secs()),
    )
    .envelope()
    .error
}

fn cancelled(cancel: &watch::Receiver<bool>) -> bool {
    *cancel.borrow()
}

/// `current` is kept as the run's row stands, for [`record`].
async fn execute(
    engine: &Engine,
    current: &mut run::Model,
    known: Known,
    emitter: &mut Emitter,
    cancel: &mut watch::Receiver<bool>,
    slot: &mut Slot,
    clock: &mut WorkClock,
) -> Result<Outcome> {
    // `current` is read again while the run waits for its thread.
    while current.active_thread_id.is_none() {
        if cancelled(cancel) || current.cancel_requested {
            return Ok(Outcome::Cancelled);
        }
        // Armed before the attempt, so a release between the two is not missed.
        let released = engine.thread_release(&current.smith_id, &current.thread_id);
        let notified = released.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // A queued run starts only within its project's cap on executing runs.
        if let Ok(active) = engine.inner.capacity.acquire(&current.project_id, SlotKind::ActiveRun)
            && claim_thread(engine, current).await?
        {
            *slot = active;
            current.active_thread_id = Some(current.thread_id.clone());
            break;
        }
        // Released here, the run wakes at once; released on another replica, the poll finds it.
        tokio::select! {
            () = notified => {}
            () = tokio::time::sleep(ENQUEUE_POLL) => {}
            _ = cancel.changed() => return Ok(Outcome::Cancelled),
        }
        *current = run::Entity::find_by_id(current.id.as_str())
            .one(engine.db())
            .await?
            .ok_or_else(|| Error::internal("A started run vanished."))?;
    }
    clock.since = Some(tokio::time::Instant::now());
    let deadline = engine.inner.settings.run_deadline;
    let remaining = deadline.saturating_sub(clock.worked_before);
    match tokio::time::timeout(remaining, work(engine, current, known, emitter, cancel)).await {
        Ok(outcome) => outcome,
        Err(_) => Ok(Outcome::Failed { error: deadline_exceeded(deadline), usage: None }),
    }
}

async fn work(
    engine: &Engine,
    current: &mut run::Model,
    known: Known,
    emitter: &mut Emitter,
    cancel: &mut watch::Receiver<bool>,
) -> Result<Outcome> {
    let db = engine.db();
    let run_id = &current.id.clone();

    let config: RunConfig = crate::store::decode_json(&current.id, "config", &current.config)?;
    let model = resolve(&config.model);
    if emitter.last_seq() == 0 {
        if current.status == RunStatus::Queued {
            let started_at = now();
            run::Entity::update_many()
                .col_expr(run::Column::Status, Expr::value(RunStatus::Running.as_str()))
                .col_expr(run::Column::StartedAt, Expr::value(Some(started_at)))
                .filter(run::Column::Id.eq(run_id))
                .exec(db)
                .await?;
            current.status = RunStatus::Running;
            current.started_at = Some(started_at);
        }
        emitter.emit(RunEventData::Started(RunStartedEvent {
            v: EVENT_VERSION,
            run_id: run_id.clone(),
            smith_id: current.smith_id.clone(),
            thread_id: current.thread_id.clone(),
            model: config.model.clone(),
            created_at: current.created_at,
        }))?;
    }
    if cancelled(cancel) {
        return Ok(Outcome::Cancelled);
    }

    let with_history = config.mode.includes_history() && !known.new_thread;
    let remembering = match known.remembering {
        Some(remembering) => Some(remembering),
        None => engine.memory().remembering(&current.project_id, &current.smith_id).await?,
    };
    let mcp = engine.mcp().listing_for(&current.project_id, &config.tools).await?;
    let server_tools = tools::resolve::resolve(&config.tools, &mcp);
    let mut usage: RunUsage =
        crate::store::decode_json_opt(run_id, "usage", current.usage.as_ref())?.unwrap_or_default();
    let endpoint = match known.endpoint {
        Some(endpoint) => endpoint,
        None => engine.endpoint(&current.project_id, model.provider).await?,
    };
    // A run resuming after a pause keeps the record of the calls it made before it (and, after
    // approvals, the client calls of the answer that asked for them).
    let earlier: RunOutput =
        crate::store::decode_json_opt(run_id, "output", current.output.as_ref())?.unwrap_or_default();
    let mut turn = TurnSoFar { server_tool_calls: earlier.server_tool_calls, ..TurnSoFar::default() };
    // Built once: each later round appends its messages (history, files and the memory section
    // are not read again).
    let context = TurnContext { with_history, remembering: remembering.as_ref(), server_tools: &server_tools };
    let mut request = model_request(engine, current, &config, &model, context).await?;
    if known.approvals_decided {
        // The answer that asked for approvals is the transcript's last message: its server-side
        // calls run now, in the model's order and as decided; then its client calls are asked.
        let asked = request.messages.last().map(|message| message.tool_calls.clone()).unwrap_or_default();
        let client_calls = earlier.tool_calls;
        let server_calls: Vec<ToolCall> =
            asked.into_iter().filter(|call| client_calls.iter().all(|client| client.id != call.id)).collect();
        let decisions = approvals::of_latest_pause(db, run_id).await?;
        let calls = ServerCalls { tools: &server_tools, calls: &server_calls, decisions: &decisions };
        if let Some(cancelled) = run_server_calls(engine, current, emitter, cancel, calls, &mut turn).await? {
            return Ok(cancelled);
        }
        if !client_calls.is_empty() && config.mode.pauses_for_tools() {
            emit_completed(emitter, run_id, &turn.content, &client_calls)?;
            return Ok(turn.ended_on_client_calls(client_calls, usage, true));
        }
        // On the OpenAI surfaces the client's answer ended at the pause, and nobody will answer
        // its calls: the model reads that, and the thread's history stays whole.
        for call in &client_calls {
            let unanswered = "Error: not run: the client was not asked (the answer waited for approval)";
            turn.steps.push(Message::tool_result(call.id.clone(), unanswered));
        }
        request.messages.extend(turn.steps.iter().cloned());
        request.tool_choice = ToolChoice::Auto;
    }
    for round in 0..=TOOL_ROUNDS_MAX {
        let Some(mut stream) = open_with_retries(engine, &model, &endpoint, &request, cancel).await? else {
            return Ok(Outcome::Cancelled);
        };
        let mut reply = String::new();
        let mut tool_calls = Vec::new();
        let finished = loop {
            let next = tokio::select! {
                next = stream.next() => next,
                _ = cancel.changed() => return Ok(Outcome::Cancelled),
            };
            match next {
                Some(Ok(ModelEvent::TextDelta(delta))) => {
                    // A later round's text starts a paragraph of the reply, in the stream too.
                    let delta =
                        if reply.is_empty() && !turn.content.is_empty() { format!("\n\n{delta}") } else { delta };
                    reply.push_str(&delta);
                    emitter.emit(RunEventData::MessageDelta(MessageDeltaEvent {
                        v: EVENT_VERSION,
                        run_id: run_id.clone(),
                        delta,
                    }))?;
                }
                Some(Ok(ModelEvent::ToolCall(call))) => tool_calls.push(call),
                Some(Ok(ModelEvent::Finished { stop_reason, usage })) => break (stop_reason, usage),
                Some(Err(err)) => return Ok(Outcome::Failed { error: provider_error(&err), usage: Some(usage) }),
                None => {
                    let ended = ProviderError::new(ProviderErrorKind::Upstream, "the provider's stream ended early");
                    return Ok(Outcome::Failed { error: provider_error(&ended), usage: Some(usage) });
                }
            }
        };
        let (stop_reason, step_usage) = finished;
        usage = add_usage(usage, &model, step_usage);
        turn.content.push_str(&reply);
        let reply = reply.trim_start().to_owned();
        let (server_calls, client_calls): (Vec<ToolCall>, Vec<ToolCall>) =
            tool_calls.iter().cloned().partition(|call| server_tools.iter().any(|tool| tool.name == call.name));
        if server_calls.is_empty() {
            emit_completed(emitter, run_id, &turn.content, &client_calls)?;
            return Ok(turn.ended(reply, tool_calls, client_calls, stop_reason, usage, config.mode.pauses_for_tools()));
        }
        if round == TOOL_ROUNDS_MAX {
            let error = Error::new(
                ErrorKind::Upstream,
                "tool_rounds_exceeded",
                format!("The model called server-side tools in more than {TOOL_ROUNDS_MAX} rounds in a row."),
            );
            return Ok(Outcome::Failed { error: error.envelope().error, usage: Some(usage) });
        }
        let round_start = turn.steps.len();
        turn.steps.push(Message::assistant(reply, tool_calls.clone()));
        let gated = gated_calls(&config, &server_tools, &server_calls);
        if !gated.is_empty() {
            // No call of the answer runs before every gated one is decided (they run in order).
            let pending = ask_for_approvals(engine, current, emitter, config.mode, gated, &mut turn.content).await?;
            return Ok(turn.waiting_for_approvals(pending, client_calls, usage));
        }
        let calls = ServerCalls { tools: &server_tools, calls: &server_calls, decisions: &[] };
        if let Some(cancelled) = run_server_calls(engine, current, emitter, cancel, calls, &mut turn).await? {
            return Ok(cancelled);
        }
        request.messages.extend(turn.steps[round_start..].iter().cloned());
        // A forced choice applied to the first round: now the model chooses freely, or it
        // could never stop calling.
        request.tool_choice = ToolChoice::Auto;
        if !client_calls.is_empty() {
            emit_completed(emitter, run_id, &turn.content, &client_calls)?;
            // One model turn asked for both: the server's ran first; the run now pauses (or,
            // on the OpenAI surfaces, ends) for the client's.
            return Ok(turn.ended_on_client_calls(client_calls, usage, config.mode.pauses_for_tools()));
        }
    }
    Err(Error::internal("the tool loop ended without an outcome"))
}

/// What one execution of a run produced before its outcome: the reply text of every model
/// round, the messages of rounds that called server-side tools, and those calls.
#[derive(Default)]
struct TurnSoFar {
    content: String,
    steps: Vec<Message>,
    server_tool_calls: Vec<ServerToolCall>,
}

impl TurnSoFar {
    /// The model answered without server-side calls: `reply` and `tool_calls` are its last
    /// message; `client_calls` the calls a client answers.
    fn ended(
        self,
        reply: String,
        tool_calls: Vec<ToolCall>,
        client_calls: Vec<ToolCall>,
        stop_reason: StopReason,
        usage: RunUsage,
        pauses: bool,
    ) -> Outcome {
        let mut steps = self.steps;
        steps.push(Message::assistant(reply, tool_calls));
        let output =
            RunOutput { content: self.content, tool_calls: client_calls, server_tool_calls: self.server_tool_calls };
        if output.tool_calls.is_empty() || !pauses {
            Outcome::Completed { output, steps, stop_reason, usage }
        } else {
            let action = waiting_for_outputs(&output.tool_calls);
            Outcome::Paused { output, steps, usage, action }
        }
    }

    /// A round called gated tools: nothing of it ran; the run waits for decisions, and then
    /// for its client calls.
    fn waiting_for_approvals(
        self,
        pending: Vec<PendingApproval>,
        client_calls: Vec<ToolCall>,
        usage: RunUsage,
    ) -> Outcome {
        let action =
            RequiredAction { kind: RequiredActionType::SubmitApprovals, tool_calls: Vec::new(), approvals: pending };
        let output =
            RunOutput { content: self.content, tool_calls: client_calls, server_tool_calls: self.server_tool_calls };
        Outcome::Paused { output, steps: self.steps, usage, action }
    }

    /// A round called server-side and client tools; the server's ran (their results are the
    /// last steps).
    fn ended_on_client_calls(self, client_calls: Vec<ToolCall>, usage: RunUsage, pauses: bool) -> Outcome {
        let output =
            RunOutput { content: self.content, tool_calls: client_calls, server_tool_calls: self.server_tool_calls };
        if pauses {
            let action = waiting_for_outputs(&output.tool_calls);
            Outcome::Paused { output, steps: self.steps, usage, action }
        } else {
            Outcome::Completed { output, steps: self.steps, stop_reason: StopReason::ToolUse, usage }
        }
    }
}

fn waiting_for_outputs(client_calls: &[ToolCall]) -> RequiredAction {
    RequiredAction {
        kind: RequiredActionType::SubmitToolOutputs,
        tool_calls: client_calls.to_vec(),
        approvals: Vec::new(),
    }
}

/// One `message.completed` per execution, when its reply is whole: the OpenAI surfaces close
/// their message on it. It carries only client calls: server-side calls never reach a client
/// as calls of its own tools.
fn emit_completed(emitter: &mut Emitter, run_id: &RunId, content: &str, client_calls: &[ToolCall]) -> Result<()> {
    emitter.emit(RunEventData::MessageCompleted(MessageCompletedEvent {
        v: EVENT_VERSION,
        run_id: run_id.clone(),
        content: content.to_owned(),
        tool_calls: client_calls.to_vec(),
    }))
}

/// The calls of one answer its config gates. A call whose arguments are not a JSON object
/// of a bounded size is not gated: it cannot run, and answers its error without asking.
fn gated_calls(config: &RunConfig, tools: &[tools::resolve::ServerTool], calls: &[ToolCall]) -> Vec<approvals::Gated> {
    // Calls past the per-answer cap never run, so nobody is asked about them.
    calls
        .iter()
        .take(SERVER_CALLS_PER_ROUND_MAX)
        .filter_map(|call| {
            let tool = tools.iter().find(|tool| tool.name == call.name)?;
            let runnable = call.arguments.len() <= SERVER_TOOL_ARGUMENTS_MAX
                && parse_arguments(&call.arguments).is_ok_and(|arguments| arguments.is_object());
            (runnable && approvals::policy::requires_approval(&config.tool_approvals, &tool.reference)).then(|| {
                approvals::Gated {
                    tool_call_id: call.id.clone(),
                    tool: tool.reference.to_string(),
                    arguments: call.arguments.clone(),
                }
            })
        })
        .collect()
}

/// The model's arguments: `{}` when it sent none.
fn parse_arguments(text: &str) -> serde_json::Result<serde_json::Value> {
    match text.trim() {
        "" => Ok(json!({})),
        text => serde_json::from_str(text),
    }
}

/// Asks for a decision on each gated call of an answer: an approval each, and an
/// `approval.required` for each. On the OpenAI surfaces, whose clients end their answer here,
/// the reply (`content`) says what waits. The answer's `message.completed` closes it.
async fn ask_for_approvals(
    engine: &Engine,
    current: &run::Model,
    emitter: &mut Emitter,
    mode: RunMode,
    gated: Vec<approvals::Gated>,
    content: &mut String,
) -> Result<Vec<PendingApproval>> {
    let rows = approvals::create(engine.db(), current, gated, engine.inner.settings.approval_ttl).await?;
    let pending: Vec<PendingApproval> = rows.iter().map(approvals::pending).collect();
    for approval in &pending {
        emitter.emit(RunEventData::ApprovalRequired(ApprovalRequiredEvent {
            v: EVENT_VERSION,
            run_id: current.id.clone(),
            approval: approval.clone(),
        }))?;
    }
    if !mode.is_native() {
        let notice = approvals::notice(&pending);
        let delta = if content.is_empty() { notice } else { format!("\n\n{notice}") };
        emitter.emit(RunEventData::MessageDelta(MessageDeltaEvent {
            v: EVENT_VERSION,
            run_id: current.id.clone(),
            delta: delta.clone(),
        }))?;
        content.push_str(&delta);
    }
    emit_completed(emitter, &current.id, content, &[])?;
    Ok(pending)
}

/// One answer's server-side calls, the tools they name, and the decisions on the gated ones.
struct ServerCalls<'a> {
    tools: &'a [tools::resolve::ServerTool],
    calls: &'a [ToolCall],
    decisions: &'a [approval::Model],
}

/// Runs one answer's server-side calls one after the other, in the model's order: an approved
/// call with the arguments decided, a rejected or expired one not at all (the model reads
/// why). `Some(Cancelled)` when the run was cancelled meanwhile.
async fn run_server_calls(
    engine: &Engine,
    current: &run::Model,
    emitter: &mut Emitter,
    cancel: &mut watch::Receiver<bool>,
    round: ServerCalls<'_>,
    turn: &mut TurnSoFar,
) -> Result<Option<Outcome>> {
    let run_id = &current.id;
    for (index, asked) in round.calls.iter().enumerate() {
        let Some(tool) = round.tools.iter().find(|tool| tool.name == asked.name) else {
            // Its MCP server was removed while the run waited.
            turn.steps.push(Message::tool_result(asked.id.clone(), "Error: the tool is no longer available"));
            continue;
        };
        let reference = tool.reference.to_string();
        let (decision, refused) =
            match approvals::decision_for(round.decisions, &asked.id, &reference, &asked.arguments) {
                Ok(decision) => (decision, decision.and_then(approvals::refusal)),
                Err(mismatch) => (None, Some(mismatch)),
            };
        let call = match decision.and_then(|approval| approval.decided_arguments.clone()) {
            Some(edited) => ToolCall { arguments: edited, ..asked.clone() },
            None => asked.clone(),
        };
        let started_at = now();
        let clock = std::time::Instant::now();
        let called = if let Some(refusal) = refused {
            Err(refusal)
        } else if index >= SERVER_CALLS_PER_ROUND_MAX {
            Err(format!("not run: one answer may call server-side tools at most {SERVER_CALLS_PER_ROUND_MAX} times"))
        } else {
            emitter.emit(RunEventData::ToolExecuting(ToolExecutingEvent {
                v: EVENT_VERSION,
                run_id: run_id.clone(),
                tool_call: call.clone(),
            }))?;
            tokio::select! {
                called = call_server_tool(engine, current, tool, &call) => called,
                _ = cancel.changed() => return Ok(Some(Outcome::Cancelled)),
            }
        };
        let (output, is_error) = match called {
            Ok(output) => (output, false),
            Err(why) => (format!("Error: {why}"), true),
        };
        let output = clip(&output, SERVER_TOOL_OUTPUT_TO_MODEL);
        emitter.emit(RunEventData::ToolCompleted(ToolCompletedEvent {
            v: EVENT_VERSION,
            run_id: run_id.clone(),
            tool_call_id: call.id.clone(),
            output: output.clone(),
        }))?;
        turn.server_tool_calls.push(ServerToolCall {
            id: call.id.clone(),
            tool: tool.reference.to_string(),
            arguments: clip(&call.arguments, SERVER_TOOL_OUTPUT_RECORDED),
            output: clip(&output, SERVER_TOOL_OUTPUT_RECORDED),
            is_error,
            started_at,
            duration_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
        turn.steps.push(Message::tool_result(call.id.clone(), output));
    }
    Ok(None)
}

/// `text` cut to `max` characters, marked when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(max).collect();
    clipped.push_str(" [truncated]");
    clipped
}

/// Runs one server-side call within its deadline; the text the model reads, or why it failed.
async fn call_server_tool(
    engine: &Engine,
    current: &run::Model,
    tool: &tools::resolve::ServerTool,
    call: &ToolCall,
) -> std::result::Result<String, String> {
    if call.arguments.len() > SERVER_TOOL_ARGUMENTS_MAX {
        return Err(format!("the arguments are longer than {SERVER_TOOL_ARGUMENTS_MAX} bytes"));
    }
    let arguments = parse_arguments(&call.arguments).map_err(|_| "the arguments are not a JSON object".to_owned())?;
    if !arguments.is_object() {
        return Err("the arguments are not a JSON object".into());
    }
    let work = async {
        match &tool.runner {
            Runner::Hosted(name) => {
                tools::hosted::call(name, &arguments, &engine.inner.fetch_egress, SERVER_TOOL_DEADLINE).await
            }
            Runner::Memory(name) => {
                let memory = engine.memory();
                tools::memory_tools::call(memory, &current.project_id, &current.smith_id, name, &arguments).await
            }
            Runner::Mcp { server, tool } => engine.mcp().call(&current.project_id, server, tool, &arguments).await,
        }
    };
    tokio::time::timeout(SERVER_TOOL_DEADLINE, work).await.map_err(|_| "the tool timed out".to_owned())?
}

/// Takes the thread for an enqueued run; false while another run holds it.
async fn claim_thread(engine: &Engine, current: &run::Model) -> Result<bool> {
    let claimed = run::Entity::update_many()
        .col_expr(run::Column::ActiveThreadId, Expr::value(Some(current.thread_id.clone())))
        .filter(run::Column::Id.eq(current.id.as_str()))
        .filter(run::Column::ActiveThreadId.is_null())
        .exec(engine.db())
        .await;
    match claimed {
        Ok(result) => Ok(result.rows_affected == 1),
        Err(err) if is_unique_violation(&err) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

fn add_usage(previous: RunUsage, model: &ResolvedModel, usage: Usage) -> RunUsage {
    let input_tokens = previous.input_tokens + usage.input_tokens;
    let output_tokens = previous.output_tokens + usage.output_tokens;
    RunUsage {
        input_tokens,
        output_tokens,
        total_tokens: input_tokens + output_tokens,
        cost_usd: pricing::cost_usd(model, input_tokens, output_tokens),
    }
}

/// What an execution's first model request is built from, beyond the run's own record.
struct TurnContext<'a> {
    /// Earlier completed runs of the thread are part of the conversation.
    with_history: bool,
    remembering: Option<&'a Remembering>,
    server_tools: &'a [tools::resolve::ServerTool],
}

/// The conversation the model sees: the agent's instructions and the smith's memory, earlier
/// completed runs of the thread, then this run; the request's client tools and the smith's
/// server-side tools.
async fn model_request(
    engine: &Engine,
    current: &run::Model,
    config: &RunConfig,
    model: &ResolvedModel,
    context: TurnContext<'_>,
) -> Result<ModelRequest> {
    let TurnContext { with_history, remembering, server_tools } = context;
    let earlier = if with_history { thread_history(engine, current).await? } else { Vec::new() };
    let turns: Vec<(Vec<InputMessage>, Vec<Message>)> = earlier
        .iter()
        .chain(std::iter::once(current))
        .map(|turn| {
            let input = crate::store::decode_json(&turn.id, "input", &turn.input)?;
            let transcript = crate::store::decode_json(&turn.id, "transcript", &turn.transcript)?;
            Ok((input, transcript))
        })
        .collect::<Result<_>>()?;
    let system = match remembering.filter(|remembering| !remembering.is_empty()) {
        Some(remembering) => {
            let turn_text = turns.last().map(|(input, _)| memory::person_text(input)).unwrap_or_default();
            with_memory(config.instructions.clone(), engine.memory().section(remembering, &turn_text).await?)
        }
        None => config.instructions.clone(),
    };
    let named = turns.iter().flat_map(|(input, _)| input);
    let stored = files::load_named(engine.db(), &current.project_id, named).await?;
    let mut messages = Vec::new();
    for (input, transcript) in turns {
        messages.extend(input.into_iter().map(|message| model_message(message, &stored)));
        messages.extend(transcript);
    }
    let client_tools: Vec<FunctionTool> =
        crate::store::decode_json(&current.id, "client_tools", &current.client_tools)?;
    // Client tools first: a `required` choice on the offline model calls the first tool.
    let mut tools: Vec<ToolSpec> = client_tools
        .into_iter()
        .map(|tool| ToolSpec {
            name: tool.function.name,
            description: tool.function.description,
            parameters: tool.function.parameters.unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        })
        .chain(server_tools.iter().map(|tool| ToolSpec {
            name: tool.name.clone(),
            description: Some(tool.description.clone()),
            parameters: tool.parameters.clone(),
        }))
        .collect();
    let tool_choice = match &config.tool_choice {
        Some(ToolChoiceOption::Mode(ToolChoiceMode::None)) => {
            tools.clear();
            ToolChoice::Auto
        }
        None | Some(ToolChoiceOption::Mode(ToolChoiceMode::Auto)) => ToolChoice::Auto,
        Some(ToolChoiceOption::Mode(ToolChoiceMode::Required)) => ToolChoice::Required,
        Some(ToolChoiceOption::Named(named)) => ToolChoice::Function(named.function.name.clone()),
    };
    Ok(ModelRequest {
        model: model.model.clone(),
        system,
        messages,
        tools,
        max_tokens: config.max_tokens,
        temperature: config.temperature,
        tool_choice,
    })
}

/// The instructions, then the memory section after a blank line.
fn with_memory(instructions: Option<String>, section: Option<String>) -> Option<String> {
    match (instructions, section) {
        (Some(instructions), Some(section)) if !instructions.is_empty() => Some(format!("{instructions}\n\n{section}")),
        (instructions, None) => instructions,
        (_, section) => section,
    }
}

/// Earlier completed runs of the thread, oldest first.
async fn thread_history(engine: &Engine, current: &run::Model) -> Result<Vec<run::Model>> {
    let mut earlier = run::Entity::find()
        .filter(run::Column::SmithId.eq(current.smith_id.as_str()))
        .filter(run::Column::ThreadId.eq(current.thread_id.as_str()))
        .filter(run::Column::Status.eq(RunStatus::Completed.as_str()))
        .filter(run::Column::Id.lt(current.id.as_str()))
        .order_by_desc(run::Column::Id)
        .limit(HISTORY_RUNS)
        .all(engine.db())
        .await?;
    earlier.reverse();
    Ok(earlier)
}

/// An input message as the model sees it, its images and files resolved.
fn model_message(message: InputMessage, stored: &HashMap<FileId, file::Model>) -> Message {
    Message {
        role: message.role,
        content: message.content.text(),
        attachments: message.content.attachments().filter_map(|part| files::attachment(part, stored)).collect(),
        tool_calls: message.tool_calls,
        tool_call_id: message.tool_call_id,
    }
}

/// Opens the provider stream, retrying transient failures before anything was streamed.
/// None when the run was cancelled meanwhile.
async fn open_with_retries(
    engine: &Engine,
    model: &ResolvedModel,
    endpoint: &Endpoint,
    request: &ModelRequest,
    cancel: &mut watch::Receiver<bool>,
) -> Result<Option<ModelStream>> {
    let http = engine.client_for(endpoint).map_err(|err| provider_api_error(&err))?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let opened = tokio::select! {
            opened = open_stream(model.provider, &engine.inner.offline, http, endpoint, request) => opened,
            _ = cancel.changed() => return Ok(None),
        };
        match opened {
            Ok(stream) => return Ok(Some(stream)),
            Err(err) if err.is_transient() && attempt < PROVIDER_ATTEMPTS => {
                let backoff = Duration::from_millis(250 * 2u64.pow(attempt - 1));
                tracing::warn!(attempt, error = %err, "retrying the model provider");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = cancel.changed() => return Ok(None),
                }
            }
            Err(err) => return Err(provider_api_error(&err)),
        }
    }
}

fn provider_api_error(err: &ProviderError) -> Error {
    let (kind, code) = match err.kind {
        ProviderErrorKind::InvalidKey => (ErrorKind::Unauthenticated, "model_key_invalid"),
        ProviderErrorKind::RateLimited => (ErrorKind::RateLimited, "rate_limited"),
        ProviderErrorKind::Upstream => (ErrorKind::Upstream, "upstream_error"),
        ProviderErrorKind::Unreachable => (ErrorKind::Upstream, "upstream_unreachable"),
        ProviderErrorKind::BadRequest => (ErrorKind::Invalid, "upstream_invalid_request"),
        ProviderErrorKind::EgressDenied => (ErrorKind::Invalid, "egress_denied"),
    };
    Error::new(kind, code, err.message.clone())
}

fn provider_error(err: &ProviderError) -> ErrorBody {
    provider_api_error(err).envelope().error
}

/// Writes how the execution ended: the run's row (`current`, as this execution last knew it)
/// and its closing event, together. `transcript` is the run's before this execution. True
/// when the run released its thread.
async fn record(
    engine: &Engine,
    current: run::Model,
    mut transcript: Vec<Message>,
    emitter: &mut Emitter,
    outcome: Outcome,
    worked: Duration,
) -> Result<bool> {
    let v = EVENT_VERSION;
    let run_id = current.id.clone();
    let mut settled = run::Model {
        lease_owner: None,
        lease_until: None,
        worked_ms: i64::try_from(worked.as_millis()).unwrap_or(i64::MAX),
        updated_at: now(),
        ..current
    };
    let event = match outcome {
        Outcome::Completed { output, steps, stop_reason, usage } => {
            transcript.extend(steps);
            settled.status = RunStatus::Completed;
            settled.output = Some(json!(output));
            settled.usage = Some(json!(usage));
            settled.stop_reason = Some(stop_reason);
            RunEventData::Completed(RunCompletedEvent { v, run_id: run_id.clone(), stop_reason, usage })
        }
        Outcome::Paused { output, steps, usage, action: required_action } => {
            transcript.extend(steps);
            settled.status = RunStatus::RequiresAction;
            settled.output = Some(json!(output));
            settled.usage = Some(json!(usage));
            settled.required_action = Some(json!(required_action));
            settled.stop_reason = Some(StopReason::ToolUse);
            RunEventData::RequiresAction(RunRequiresActionEvent { v, run_id: run_id.clone(), required_action })
        }
        Outcome::Failed { error, usage } => {
            if let Some(usage) = usage {
                settled.usage = Some(json!(usage));
            }
            settled.status = RunStatus::Failed;
            settled.error = Some(json!(error));
            RunEventData::Failed(RunFailedEvent { v, run_id: run_id.clone(), error })
        }
        Outcome::Cancelled => {
            settled.status = RunStatus::Cancelled;
            settled.cancel_requested = true;
            RunEventData::Cancelled(RunCancelledEvent { v, run_id: run_id.clone() })
        }
    };
    settled.transcript = json!(transcript);
    if settled.status.is_terminal() {
        settled.active_thread_id = None;
        settled.completed_at = Some(settled.updated_at);
    }
    let closing = emitter.stage(event);
    settled.last_seq = emitter.last_seq();
    let ending = Ending { settled: settled.clone(), owner: engine.inner.instance.clone(), closing: closing.clone() };
    // Only while this replica still holds the run: if its lease lapsed and another replica
    // failed the run, that outcome stands.
    if !emitter.finish(ending).await? {
        tracing::warn!(%run_id, "the run was taken over after its lease lapsed; its outcome is dropped");
        return Ok(false);
    }
    let released = settled.status.is_terminal();
    emitter.settle(settled, closing);
    Ok(released)
}
