//! The one entrance into runs. Every surface that starts a turn (native runs, Chat
//! Completions, Responses; schedules, channels and the MCP server later) describes it as a
//! [`Turn`] and calls [`Engine::start`], which resolves the run's config from the smith's
//! effective config by one rule ([`turn::resolve`]), refuses what breaks a limit or a
//! capacity cap before anything starts, and hands back the run with its event stream.

use super::capacity::Slot;
use super::events::Subscription;
use super::{Engine, OnBusy, RunSpec, ToolOutput};
use crate::auth::Caller;
use crate::domain::memory::context::Remembering;
use crate::domain::smiths::SmithWithAgent;
use crate::domain::tools::resolve::ResolvedTool;
use crate::domain::turn::{self, TurnInstructions};
use crate::error::{Error, Result};
use crate::ids::RunId;
use crate::store::{decode_json, run};
use crate::types::{FunctionTool, InputMessage, Metadata, RunConfig, RunMode, ToolChoiceOption};

/// One turn of a smith, as a surface received it.
pub struct Turn {
    /// Which contract the run follows: what its history is and whether tool calls pause it.
    pub mode: RunMode,
    /// The thread to continue; a new one when absent.
    pub thread_id: Option<String>,
    /// What the surface calls the thread, for the error a bad thread id gets.
    pub thread_param: &'static str,
    /// The new messages (for Chat Completions: the whole conversation).
    pub input: Vec<InputMessage>,
    /// A model other than the smith's, within its `allowed_models`.
    pub model: Option<String>,
    /// What the request brings to the smith's instructions.
    pub instructions: TurnInstructions,
    pub sampling: Sampling,
    /// For a Responses run: whether a later response may continue from it.
    pub store: Option<bool>,
    /// Functions the caller executes: the run pauses for them (native) or ends with them.
    pub client_tools: Vec<FunctionTool>,
    pub metadata: Option<Metadata>,
    pub on_busy: OnBusy,
    /// Hand back the run's event stream; a place among the project's open streams is taken
    /// first, so a refused stream starts nothing.
    pub stream: bool,
}

impl Turn {
    /// A turn of `mode` with `input` and nothing else set.
    pub fn new(mode: RunMode, input: Vec<InputMessage>) -> Self {
        Self {
            mode,
            thread_id: None,
            thread_param: "thread_id",
            input,
            model: None,
            instructions: TurnInstructions::Append(Vec::new()),
            sampling: Sampling::default(),
            store: None,
            client_tools: Vec::new(),
            metadata: None,
            on_busy: OnBusy::Reject,
            stream: false,
        }
    }
}

/// Per-run sampling settings, passed to the model as they are.
#[derive(Debug, Clone, Default)]
pub struct Sampling {
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub tool_choice: Option<ToolChoiceOption>,
}

/// A run that started: its record as created, and its events from the first when the turn
/// asked to stream (otherwise wait with [`Engine::wait_settled`]).
pub struct Started {
    pub run: run::Model,
    pub events: Option<Subscription>,
}

/// What `/submit` answers a paused run with.
pub enum Submission {
    ToolOutputs(Vec<ToolOutput>),
    Approvals(Vec<crate::domain::approvals::Decision>),
}

/// How a submit left the run.
pub struct Resumed {
    /// With `stream`: the run's events after the pause.
    pub events: Option<Subscription>,
    /// Approvals of the pause are still undecided: the run keeps waiting.
    pub still_waiting: bool,
}

/// A caller-chosen thread id: 1 to 128 characters, none of them control characters.
pub fn validate_thread_id(param: &str, thread_id: &str) -> Result<()> {
    if thread_id.is_empty() || thread_id.len() > 128 || thread_id.chars().any(char::is_control) {
        return Err(Error::invalid_param(param, format!("{param} must be 1 to 128 characters.")));
    }
    Ok(())
}

impl Engine {
    /// Starts one turn of `smith` for `caller`.
    pub async fn start(&self, caller: &Caller, smith: &SmithWithAgent, turn: Turn) -> Result<Started> {
        check_caller_sees(caller, smith)?;
        if let Some(thread_id) = &turn.thread_id {
            validate_thread_id(turn.thread_param, thread_id)?;
        }
        let design = turn::resolve(caller, &smith.effective, turn.model, turn.instructions)?;
        check_tool_names(&smith.effective.resolved_tools, &turn.client_tools)?;
        let effective = &smith.effective;
        let spec = RunSpec {
            project_id: caller.project_id.clone(),
            smith_id: smith.smith.id.clone(),
            thread_id: turn.thread_id,
            input: turn.input,
            config: RunConfig {
                agent_id: smith.agent.id.clone(),
                model: design.model,
                instructions: design.instructions,
                tools: effective.tools.clone(),
                auto_memory: effective.auto_memory,
                max_tokens: turn.sampling.max_tokens,
                temperature: turn.sampling.temperature,
                tool_choice: turn.sampling.tool_choice,
                mode: turn.mode,
                store: turn.store,
                tool_approvals: effective.tool_approvals.clone(),
            },
            client_tools: turn.client_tools,
            metadata: turn.metadata,
            on_busy: turn.on_busy,
            replay_of: None,
            remembering: Some(Remembering::of_smith(smith)?),
        };
        self.launch(spec, turn.stream).await
    }

    /// Runs `original` (a run of `smith`) again on a new thread, with its input, config and
    /// client tools; its model is checked against the smith's design as it is now.
    pub async fn replay(
        &self,
        caller: &Caller,
        smith: &SmithWithAgent,
        original: run::Model,
        stream: bool,
    ) -> Result<Started> {
        check_caller_sees(caller, smith)?;
        if original.smith_id != smith.smith.id {
            return Err(Error::not_found("run_not_found", "run", &original.id));
        }
        let mut config: RunConfig = decode_json(&original.id, "config", &original.config)?;
        config.model = turn::model(&smith.effective, Some(config.model))?;
        // The smith's server-side tools as they are now: one removed since does not run again.
        config.tools.clone_from(&smith.effective.tools);
        config.tool_approvals.clone_from(&smith.effective.tool_approvals);
        let client_tools: Vec<FunctionTool> = decode_json(&original.id, "client_tools", &original.client_tools)?;
        check_tool_names(&smith.effective.resolved_tools, &client_tools)?;
        let spec = RunSpec {
            project_id: caller.project_id.clone(),
            smith_id: original.smith_id.clone(),
            thread_id: None,
            input: decode_json(&original.id, "input", &original.input)?,
            config,
            client_tools,
            metadata: crate::store::decode_json_opt(&original.id, "metadata", original.metadata.as_ref())?,
            on_busy: OnBusy::Reject,
            replay_of: Some(original.id),
            remembering: Some(Remembering::of_smith(smith)?),
        };
        self.launch(spec, stream).await
    }

    /// Answers what a paused run waits for (client tool outputs, or decisions on approvals)
    /// and resumes it once nothing is left to decide; with `stream`, hands back its events
    /// after the pause (which start once the last approval is decided).
    pub async fn resume(&self, current: &run::Model, submission: Submission, stream: bool) -> Result<Resumed> {
        let slot = stream.then(|| self.stream_slot(&current.project_id)).transpose()?;
        let still_waiting = self.submit(current, submission).await?;
        let events = match slot {
            Some(slot) => Some(self.follow_holding(&current.id, current.last_seq, slot).await?),
            None => None,
        };
        Ok(Resumed { events, still_waiting })
    }

    /// The run's events after `after`, as one of its project's open streams.
    pub async fn follow(&self, current: &run::Model, after: i32) -> Result<Subscription> {
        let slot = self.stream_slot(&current.project_id)?;
        self.follow_holding(&current.id, after, slot).await
    }

    async fn follow_holding(&self, run_id: &RunId, after: i32, slot: Slot) -> Result<Subscription> {
        Ok(self.subscribe(run_id, after).await?.holding(slot))
    }

    async fn launch(&self, spec: RunSpec, stream: bool) -> Result<Started> {
        spec.check_limits()?;
        let slot: Option<Slot> = stream.then(|| self.stream_slot(&spec.project_id)).transpose()?;
        let run = self.create(spec).await?;
        let events = match slot {
            Some(slot) => Some(self.follow_holding(&run.id, 0, slot).await?),
            None => None,
        };
        Ok(Started { run, events })
    }
}

/// A client tool may not take the name a server-side tool of the smith has.
fn check_tool_names(server_tools: &[ResolvedTool], client_tools: &[FunctionTool]) -> Result<()> {
    for tool in client_tools {
        if server_tools.iter().any(|server| server.name == tool.function.name) {
            return Err(Error::bad_request(
                "tool_name_conflict",
                format!(
                    "The client tool '{}' has the name of one of the smith's server-side tools.",
                    tool.function.name
                ),
            )
            .with_param("tools"));
        }
    }
    Ok(())
}

/// A smith is only ever found through the caller, so this holds by construction; checked
/// again because a run of the wrong tenant must be impossible, not merely unlikely.
fn check_caller_sees(caller: &Caller, smith: &SmithWithAgent) -> Result<()> {
    if smith.smith.project_id != caller.project_id || !caller.sees_smith(&smith.smith.id) {
        return Err(Error::not_found("smith_not_found", "smith", &smith.smith.id));
    }
    Ok(())
}
