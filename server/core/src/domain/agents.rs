//! Agents: the versionless design a smith runs (versions and rollouts come later).

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter,
};

use crate::cache::{Caches, Invalidation};
use crate::domain::memory::declarations::{self, BlockDeclaration};
use crate::error::{Error, Result};
use crate::ids::{AgentId, ProjectId};
use crate::store::page::{Page, PageRequest};
use crate::store::{agent, now, smith};
use crate::types::ToolApprovals;

/// The model of a project's default agent: the built-in offline model, so a fresh install
/// answers with no provider keys.
pub const DEFAULT_MODEL: &str = "ingram/offline";
pub const DEFAULT_AGENT_NAME: &str = "Default agent";
pub const DEFAULT_INSTRUCTIONS: &str = "You are a helpful assistant.";

/// A new agent; absent fields take their defaults.
#[derive(Debug, Clone, Default)]
pub struct NewAgent {
    pub name: String,
    pub instructions: Option<String>,
    /// Defaults to [`DEFAULT_MODEL`].
    pub model: Option<String>,
    pub tools: Option<Vec<String>>,
    pub auto_memory: Option<bool>,
    pub allowed_models: Option<Vec<String>>,
    pub memory_blocks: Option<Vec<BlockDeclaration>>,
    pub tool_approvals: Option<ToolApprovals>,
}

/// A change to an agent: absent fields stay; `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default)]
pub struct AgentPatch {
    pub name: Option<String>,
    pub instructions: Option<Option<String>>,
    pub model: Option<String>,
    pub tools: Option<Vec<String>>,
    pub auto_memory: Option<bool>,
    pub allowed_models: Option<Option<Vec<String>>>,
    pub memory_blocks: Option<Option<Vec<BlockDeclaration>>>,
    pub tool_approvals: Option<Option<ToolApprovals>>,
}

pub async fn create_default(db: &impl ConnectionTrait, project_id: &ProjectId) -> Result<agent::Model> {
    insert(
        db,
        project_id,
        NewAgent {
            name: DEFAULT_AGENT_NAME.to_owned(),
            instructions: Some(DEFAULT_INSTRUCTIONS.to_owned()),
            ..NewAgent::default()
        },
        true,
    )
    .await
}

pub async fn create(db: &impl ConnectionTrait, project_id: &ProjectId, request: NewAgent) -> Result<agent::Model> {
    insert(db, project_id, request, false).await
}

async fn insert(
    db: &impl ConnectionTrait,
    project_id: &ProjectId,
    request: NewAgent,
    is_default: bool,
) -> Result<agent::Model> {
    validate::name(&request.name)?;
    validate::design(
        request.instructions.as_deref(),
        request.model.as_deref(),
        request.tools.as_deref(),
        request.allowed_models.as_deref(),
        request.tool_approvals.as_ref(),
    )?;
    if let Some(declarations) = &request.memory_blocks {
        declarations::validate_declarations(declarations)?;
    }
    let created_at = now();
    Ok(agent::ActiveModel {
        id: Set(AgentId::generate()),
        project_id: Set(project_id.clone()),
        name: Set(request.name),
        instructions: Set(request.instructions),
        model: Set(request.model.unwrap_or_else(|| DEFAULT_MODEL.to_owned())),
        tools: Set(serde_json::json!(request.tools.unwrap_or_default())),
        auto_memory: Set(request.auto_memory.unwrap_or(false)),
        allowed_models: Set(request.allowed_models.map(|models| serde_json::json!(models))),
        memory_blocks: Set(request.memory_blocks.map(|declarations| serde_json::json!(declarations))),
        tool_approvals: Set(request.tool_approvals.map(|approvals| serde_json::json!(approvals))),
        is_default: Set(is_default),
        created_at: Set(created_at),
        updated_at: Set(created_at),
        deleted_at: Set(None),
    }
    .insert(db)
    .await?)
}

pub async fn get(db: &impl ConnectionTrait, project_id: &ProjectId, agent_id: &AgentId) -> Result<agent::Model> {
    agent::Entity::find_by_id(agent_id)
        .filter(agent::Column::ProjectId.eq(project_id))
        .filter(agent::Column::DeletedAt.is_null())
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("agent_not_found", "agent", agent_id))
}

pub async fn get_default(db: &impl ConnectionTrait, project_id: &ProjectId) -> Result<agent::Model> {
    agent::Entity::find()
        .filter(agent::Column::ProjectId.eq(project_id))
        .filter(agent::Column::IsDefault.eq(true))
        .filter(agent::Column::DeletedAt.is_null())
        .one(db)
        .await?
        .ok_or_else(|| Error::internal("The project has no default agent."))
}

/// Agents by id, deleted ones included (a smith's revision may point at one).
pub async fn get_many(
    db: &impl ConnectionTrait,
    project_id: &ProjectId,
    ids: Vec<AgentId>,
) -> Result<Vec<agent::Model>> {
    Ok(agent::Entity::find()
        .filter(agent::Column::ProjectId.eq(project_id))
        .filter(agent::Column::Id.is_in(ids))
        .all(db)
        .await?)
}

pub async fn list(db: &impl ConnectionTrait, project_id: &ProjectId, page: &PageRequest) -> Result<Page<agent::Model>> {
    let query = agent::Entity::find()
        .filter(agent::Column::ProjectId.eq(project_id))
        .filter(agent::Column::DeletedAt.is_null());
    crate::store::fetch_page(db, query, agent::Column::Id, |row| row.id.as_str(), page).await
}

pub async fn update(
    db: &DatabaseConnection,
    caches: &Caches,
    project_id: &ProjectId,
    agent_id: &AgentId,
    patch: AgentPatch,
) -> Result<agent::Model> {
    let current = get(db, project_id, agent_id).await?;
    let mut agent = current.into_active_model();
    if let Some(name) = patch.name {
        validate::name(&name)?;
        agent.name = Set(name);
    }
    if let Some(instructions) = patch.instructions {
        if let Some(text) = &instructions {
            validate::instructions(text)?;
        }
        agent.instructions = Set(instructions);
    }
    if let Some(model) = patch.model {
        validate::model(&model)?;
        agent.model = Set(model);
    }
    if let Some(tools) = patch.tools {
        validate::tools(&tools)?;
        agent.tools = Set(serde_json::json!(tools));
    }
    if let Some(auto_memory) = patch.auto_memory {
        agent.auto_memory = Set(auto_memory);
    }
    if let Some(models) = patch.allowed_models {
        if let Some(models) = &models {
            validate::allowed_models(models)?;
        }
        agent.allowed_models = Set(models.map(|models| serde_json::json!(models)));
    }
    if let Some(declarations) = patch.memory_blocks {
        if let Some(declarations) = &declarations {
            declarations::validate_declarations(declarations)?;
        }
        agent.memory_blocks = Set(declarations.map(|declarations| serde_json::json!(declarations)));
    }
    if let Some(approvals) = patch.tool_approvals {
        if let Some(approvals) = &approvals {
            crate::domain::approvals::policy::validate(approvals)?;
        }
        agent.tool_approvals = Set(approvals.map(|approvals| serde_json::json!(approvals)));
    }
    agent.updated_at = Set(now());
    let agent = agent.update(db).await?;
    caches.invalidate(db, Invalidation::Project(project_id.clone())).await;
    Ok(agent)
}

/// Refused while it is the project's default or live smiths run on it.
pub async fn delete(
    db: &DatabaseConnection,
    caches: &Caches,
    project_id: &ProjectId,
    agent_id: &AgentId,
) -> Result<()> {
    let current = get(db, project_id, agent_id).await?;
    if current.is_default {
        return Err(Error::conflict("agent_is_default", "The project's default agent cannot be deleted."));
    }
    let smiths = smith::Entity::find()
        .filter(smith::Column::AgentId.eq(agent_id))
        .filter(smith::Column::DeletedAt.is_null())
        .count(db)
        .await?;
    if smiths > 0 {
        return Err(Error::conflict(
            "agent_in_use",
            format!("{smiths} smith(s) still run on this agent; attach them elsewhere or delete them first."),
        ));
    }
    let mut agent = current.into_active_model();
    agent.deleted_at = Set(Some(now()));
    agent.update(db).await?;
    caches.invalidate(db, Invalidation::Project(project_id.clone())).await;
    Ok(())
}

/// Field rules shared by agents and smith overrides.
pub mod validate {
    use crate::error::{Error, Result};

    /// In characters (256 Ki), as the spec's `maxLength` counts.
    pub const MAX_INSTRUCTIONS: usize = 256 * 1024;

    /// The fields of a design (an agent's, or a smith's overrides) that are set.
    pub fn design(
        instructions: Option<&str>,
        model: Option<&str>,
        tools: Option<&[String]>,
        allowed_models: Option<&[String]>,
        tool_approvals: Option<&crate::types::ToolApprovals>,
    ) -> Result<()> {
        instructions.map(self::instructions).transpose()?;
        model.map(self::model).transpose()?;
        tools.map(self::tools).transpose()?;
        allowed_models.map(self::allowed_models).transpose()?;
        tool_approvals.map(crate::domain::approvals::policy::validate).transpose()?;
        Ok(())
    }

    pub fn name(name: &str) -> Result<()> {
        if name.trim().is_empty() || name.chars().count() > 200 {
            return Err(Error::invalid_param("name", "name must be 1 to 200 characters."));
        }
        Ok(())
    }

    pub const MODEL_MAX: usize = 256;
    pub const ALLOWED_MODELS_MAX: usize = 64;

    /// A model name reaches provider URLs (Gemini puts it in the path), so anything that
    /// could change the path or query is refused before any upstream call: `..`, `.` or
    /// empty segments, `? # % \`, whitespace and control characters. `/` and `.` inside a
    /// segment stay allowed (`meta-llama/Llama-3-8B`, `gemini-2.5-flash`).
    pub fn model(model: &str) -> Result<()> {
        let invalid = |why: &str| {
            Error::bad_request("invalid_model", format!("'{}' is not a valid model name: {why}.", preview(model)))
                .with_param("model")
        };
        if model.is_empty() || model.chars().count() > MODEL_MAX {
            return Err(invalid(&format!("it must be 1 to {MODEL_MAX} characters")));
        }
        if model.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '%' | '\\')) {
            return Err(invalid("whitespace, control characters and ? # % \\ are not allowed"));
        }
        if model.split('/').any(|segment| segment.is_empty() || segment == "." || segment == "..") {
            return Err(invalid("its path segments may not be empty, '.' or '..'"));
        }
        Ok(())
    }

    pub fn allowed_models(models: &[String]) -> Result<()> {
        if models.len() > ALLOWED_MODELS_MAX {
            return Err(Error::limit_exceeded(
                "allowed_models",
                format!("allowed_models holds at most {ALLOWED_MODELS_MAX} names."),
            ));
        }
        models.iter().try_for_each(|name| model(name).map_err(|err| err.with_param("allowed_models")))
    }

    fn preview(text: &str) -> String {
        text.chars().take(64).filter(|c| !c.is_control()).collect()
    }

    pub fn instructions(instructions: &str) -> Result<()> {
        if instructions.chars().count() > MAX_INSTRUCTIONS {
            return Err(Error::limit_exceeded(
                "instructions",
                format!("instructions must be at most {MAX_INSTRUCTIONS} characters."),
            ));
        }
        Ok(())
    }

    /// At most 128 tool references, each one that reads (docs/tools.md) and, for hosted and
    /// memory tools, names one that exists.
    pub fn tools(tools: &[String]) -> Result<()> {
        use crate::domain::tools::catalog;
        use crate::domain::tools::reference::ToolRef;
        if tools.len() > 128 {
            return Err(Error::limit_exceeded("tools", "tools holds at most 128 references."));
        }
        for text in tools {
            let known = match ToolRef::parse("tools", text)? {
                ToolRef::Hosted(name) => catalog::HOSTED_NAMES.contains(&name.as_str()),
                ToolRef::Memory(name) => catalog::MEMORY_NAMES.contains(&name.as_str()),
                ToolRef::Mcp { .. } | ToolRef::McpAll { .. } => true,
            };
            if !known {
                return Err(
                    Error::bad_request("unknown_tool", format!("No tool is named '{text}'.")).with_param("tools")
                );
            }
        }
        Ok(())
    }
}
