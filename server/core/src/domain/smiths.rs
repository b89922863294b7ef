//! Smiths: one per end-user, keyed by (external_id, agent); their config overrides and the
//! numbered revisions every config change makes.

use std::collections::HashMap;

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Select, TransactionTrait,
};

use crate::auth::Caller;
use crate::cache::{Caches, Invalidation, SmithKey};
use crate::domain::config::{AgentDesign, EffectiveConfig, SmithConfig, SmithConfigPatch};
use crate::domain::tools::mcp;
use crate::domain::{agents, is_unique_violation, limits};
use crate::error::{Error, Result};
use crate::ids::{AgentId, ProjectId, SmithId};
use crate::store::page::{Page, PageRequest};
use crate::store::{agent, now, smith, smith_revision, token};
use crate::types::Metadata;

/// A new smith (or the live one with this external_id on the agent).
#[derive(Debug, Clone, Default)]
pub struct NewSmith {
    pub external_id: String,
    /// The project's default agent when absent.
    pub agent_id: Option<AgentId>,
    pub customer_id: Option<String>,
    pub display_name: Option<String>,
    pub metadata: Option<Metadata>,
    pub overrides: SmithConfig,
}

/// A change to a smith: absent fields stay; `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default)]
pub struct SmithPatch {
    pub agent_id: Option<AgentId>,
    pub customer_id: Option<Option<String>>,
    pub display_name: Option<Option<String>>,
    pub metadata: Option<Option<Metadata>>,
    pub config: SmithConfigPatch,
}

/// Which smiths a listing returns.
#[derive(Debug, Clone, Default)]
pub struct SmithFilter {
    pub external_id: Option<String>,
    /// external_id starts with this, exactly.
    pub external_id_prefix: Option<String>,
    pub customer_id: Option<String>,
    pub agent_id: Option<AgentId>,
}

/// A smith with the agent it runs on, its overrides decoded and its effective config
/// resolved from both.
pub struct SmithWithAgent {
    pub smith: smith::Model,
    pub agent: agent::Model,
    pub overrides: SmithConfig,
    pub effective: EffectiveConfig,
    pub metadata: Option<Metadata>,
}

impl SmithWithAgent {
    /// Resolves the smith's config; its `mcp/…` tools against the project's MCP servers
    /// (read, through the cache, only when it names any).
    pub async fn new(
        db: &impl ConnectionTrait,
        caches: &Caches,
        smith: smith::Model,
        agent: agent::Model,
    ) -> Result<Self> {
        let overrides = SmithConfig::decode(smith.id.as_str(), &smith.overrides)?;
        let design = AgentDesign::decode(&agent)?;
        let tools = overrides.tools.as_deref().unwrap_or(&design.tools);
        let mcp = mcp::listing_for(db, caches, &smith.project_id, tools).await?;
        let effective = EffectiveConfig::resolve(&agent, design, &overrides, &mcp);
        let metadata = crate::store::decode_json_opt(&smith.id, "metadata", smith.metadata.as_ref())?;
        Ok(Self { smith, agent, overrides, effective, metadata })
    }
}

pub enum Upserted {
    Created(SmithWithAgent),
    Existing(SmithWithAgent),
}

pub async fn upsert(db: &DatabaseConnection, caches: &Caches, caller: &Caller, request: NewSmith) -> Result<Upserted> {
    validate_external_id(&request.external_id)?;
    let overrides = request.overrides.validated()?;
    validate_metadata(request.metadata.as_ref())?;
    limits::text("display_name", request.display_name.as_deref(), limits::DISPLAY_NAME_MAX)?;
    limits::text("customer_id", request.customer_id.as_deref(), limits::CUSTOMER_ID_MAX)?;
    // "Ensure smith" on every call mostly finds one: look in the cache, then in one query,
    // before opening a transaction; a concurrent create is caught by the unique index below.
    let key = SmithKey::External(caller.project_id.clone(), request.external_id.clone(), request.agent_id.clone());
    let generation = match caches.smiths().get(&key) {
        Ok((smith, agent)) => return Ok(Upserted::Existing(SmithWithAgent::new(db, caches, smith, agent).await?)),
        Err(generation) => generation,
    };
    let mut existing = smith::Entity::find()
        .find_also_related(agent::Entity)
        .filter(smith::Column::ProjectId.eq(caller.project_id.as_str()))
        .filter(smith::Column::LiveExternalId.eq(request.external_id.as_str()))
        .filter(agent::Column::DeletedAt.is_null());
    existing = match &request.agent_id {
        Some(agent_id) => existing.filter(agent::Column::Id.eq(agent_id.as_str())),
        None => existing.filter(agent::Column::IsDefault.eq(true)),
    };
    if let Some((smith, Some(agent))) = existing.limit(1).all(db).await?.pop() {
        caches.smiths().insert(generation, key, (smith.clone(), agent.clone()));
        return Ok(Upserted::Existing(SmithWithAgent::new(db, caches, smith, agent).await?));
    }
    // Whatever surface asks (POST /v1/smiths, or `user` on the OpenAI surface), creating a
    // smith takes the scope creating a smith takes.
    caller.require(crate::auth::Scope::SmithsWrite)?;
    let agent = match &request.agent_id {
        Some(agent_id) => agents::get(db, &caller.project_id, agent_id).await?,
        None => agents::get_default(db, &caller.project_id).await?,
    };
    let txn = db.begin().await?;
    let created_at = now();
    let smith = smith::ActiveModel {
        id: Set(SmithId::generate()),
        project_id: Set(caller.project_id.clone()),
        agent_id: Set(agent.id.clone()),
        external_id: Set(request.external_id.clone()),
        live_external_id: Set(Some(request.external_id.clone())),
        customer_id: Set(request.customer_id),
        display_name: Set(request.display_name),
        metadata: Set(request.metadata.map(|metadata| serde_json::json!(metadata))),
        overrides: Set(serde_json::json!(overrides)),
        revision: Set(1),
        memory_count: Set(0),
        block_count: Set(0),
        created_at: Set(created_at),
        updated_at: Set(created_at),
        deleted_at: Set(None),
    };
    let smith = match smith.insert(&txn).await {
        Ok(smith) => smith,
        // A concurrent create won the race for this (external_id, agent): answer with its smith.
        Err(err) if is_unique_violation(&err) => {
            drop(txn);
            let existing = find_live(db, &caller.project_id, &agent.id, &request.external_id)
                .await?
                .ok_or_else(|| Error::internal("A smith vanished while being created."))?;
            return Ok(Upserted::Existing(SmithWithAgent::new(db, caches, existing, agent).await?));
        }
        Err(err) => return Err(err.into()),
    };
    record_revision(&txn, &smith, None).await?;
    txn.commit().await?;
    Ok(Upserted::Created(SmithWithAgent::new(db, caches, smith, agent).await?))
}

async fn find_live(
    db: &impl ConnectionTrait,
    project_id: &ProjectId,
    agent_id: &AgentId,
    external_id: &str,
) -> Result<Option<smith::Model>> {
    Ok(smith::Entity::find()
        .filter(smith::Column::ProjectId.eq(project_id))
        .filter(smith::Column::AgentId.eq(agent_id))
        .filter(smith::Column::LiveExternalId.eq(external_id))
        .one(db)
        .await?)
}

/// The smith, if the caller may see it; another project's or smith's is a 404.
pub async fn get(db: &impl ConnectionTrait, caller: &Caller, smith_id: &SmithId) -> Result<smith::Model> {
    visible(caller, smith_id)?.one(db).await?.ok_or_else(|| smith_not_found(smith_id))
}

/// A live smith of the project, for callers acting for the whole project (the operator).
pub async fn get_in_project(
    db: &impl ConnectionTrait,
    project_id: &ProjectId,
    smith_id: &SmithId,
) -> Result<smith::Model> {
    in_project(project_id, smith_id).one(db).await?.ok_or_else(|| smith_not_found(smith_id))
}

/// A live smith of the project with its agent, for work done as the smith itself (its tools).
pub async fn with_agent_in_project(
    db: &impl ConnectionTrait,
    project_id: &ProjectId,
    smith_id: &SmithId,
) -> Result<(smith::Model, agent::Model)> {
    let (smith, agent) = in_project(project_id, smith_id)
        .find_also_related(agent::Entity)
        .one(db)
        .await?
        .ok_or_else(|| smith_not_found(smith_id))?;
    Ok((smith, agent.ok_or_else(missing_agent)?))
}

/// The smith with its agent, from the cache or in one query; the same 404 as [`get`].
pub async fn get_with_agent(
    db: &impl ConnectionTrait,
    caches: &Caches,
    caller: &Caller,
    smith_id: &SmithId,
) -> Result<SmithWithAgent> {
    let query = visible(caller, smith_id)?;
    let key = SmithKey::Id(caller.project_id.clone(), smith_id.clone());
    let generation = match caches.smiths().get(&key) {
        Ok((smith, agent)) => return SmithWithAgent::new(db, caches, smith, agent).await,
        Err(generation) => generation,
    };
    // `all` with a literal limit: `one` binds its LIMIT, which makes SQLite prepare the
    // statement again on every execution.
    let (smith, agent) = query
        .find_also_related(agent::Entity)
        .limit(1)
        .all(db)
        .await?
        .pop()
        .ok_or_else(|| smith_not_found(smith_id))?;
    let agent = agent.ok_or_else(missing_agent)?;
    caches.smiths().insert(generation, key, (smith.clone(), agent.clone()));
    SmithWithAgent::new(db, caches, smith, agent).await
}

/// The query for a live smith of the caller's project; refused at once for a smith token of
/// another smith.
fn visible(caller: &Caller, smith_id: &SmithId) -> Result<Select<smith::Entity>> {
    if !caller.sees_smith(smith_id) {
        return Err(smith_not_found(smith_id));
    }
    Ok(in_project(&caller.project_id, smith_id))
}

fn in_project(project_id: &ProjectId, smith_id: &SmithId) -> Select<smith::Entity> {
    smith::Entity::find_by_id(smith_id)
        .filter(smith::Column::ProjectId.eq(project_id))
        .filter(smith::Column::DeletedAt.is_null())
}

fn smith_not_found(smith_id: &SmithId) -> Error {
    Error::not_found("smith_not_found", "smith", smith_id)
}

fn missing_agent() -> Error {
    Error::internal("A smith points at a missing agent.")
}

async fn agent_of(db: &impl ConnectionTrait, smith: &smith::Model) -> Result<agent::Model> {
    agent::Entity::find_by_id(smith.agent_id.as_str()).one(db).await?.ok_or_else(missing_agent)
}

pub async fn list(
    db: &impl ConnectionTrait,
    caches: &Caches,
    caller: &Caller,
    filters: &SmithFilter,
    page: &PageRequest,
) -> Result<Page<SmithWithAgent>> {
    let mut query = smith::Entity::find()
        .filter(smith::Column::ProjectId.eq(caller.project_id.as_str()))
        .filter(smith::Column::DeletedAt.is_null());
    if let Some(own) = &caller.smith_id {
        query = query.filter(smith::Column::Id.eq(own.as_str()));
    }
    if let Some(external_id) = &filters.external_id {
        query = query.filter(smith::Column::ExternalId.eq(external_id.as_str()));
    }
    if let Some(prefix) = &filters.external_id_prefix {
        query = query.filter(crate::store::starts_with((smith::Entity, smith::Column::ExternalId), prefix));
    }
    if let Some(customer_id) = &filters.customer_id {
        query = query.filter(smith::Column::CustomerId.eq(customer_id.as_str()));
    }
    if let Some(agent_id) = &filters.agent_id {
        query = query.filter(smith::Column::AgentId.eq(agent_id.as_str()));
    }
    let page = crate::store::fetch_page(db, query, smith::Column::Id, |row| row.id.as_str(), page).await?;
    let mut agent_ids: Vec<AgentId> = page.data.iter().map(|smith| smith.agent_id.clone()).collect();
    agent_ids.sort();
    agent_ids.dedup();
    let agents: HashMap<AgentId, agent::Model> = agents::get_many(db, &caller.project_id, agent_ids)
        .await?
        .into_iter()
        .map(|agent| (agent.id.clone(), agent))
        .collect();
    let mut data = Vec::with_capacity(page.data.len());
    for smith in page.data {
        let agent = agents.get(&smith.agent_id).cloned().ok_or_else(missing_agent)?;
        data.push(SmithWithAgent::new(db, caches, smith, agent).await?);
    }
    Ok(Page { data, next_cursor: page.next_cursor, has_more: page.has_more })
}

pub async fn update(
    db: &DatabaseConnection,
    caches: &Caches,
    caller: &Caller,
    smith_id: &SmithId,
    patch: SmithPatch,
) -> Result<SmithWithAgent> {
    validate_metadata(patch.metadata.as_ref().and_then(Option::as_ref))?;
    limits::text("display_name", patch.display_name.as_ref().and_then(Option::as_deref), limits::DISPLAY_NAME_MAX)?;
    limits::text("customer_id", patch.customer_id.as_ref().and_then(Option::as_deref), limits::CUSTOMER_ID_MAX)?;
    let txn = db.begin().await?;
    let current = get(&txn, caller, smith_id).await?;
    let mut overrides = SmithConfig::decode(current.id.as_str(), &current.overrides)?;
    patch.config.apply_to(&mut overrides);
    let overrides = overrides.validated()?;
    let agent = match &patch.agent_id {
        Some(agent_id) => agents::get(&txn, &caller.project_id, agent_id).await?,
        None => agent_of(&txn, &current).await?,
    };
    let config_changed = agent.id != current.agent_id || serde_json::json!(overrides) != current.overrides;
    let mut smith = current.clone().into_active_model();
    if let Some(display_name) = patch.display_name {
        smith.display_name = Set(display_name);
    }
    if let Some(customer_id) = patch.customer_id {
        smith.customer_id = Set(customer_id);
    }
    if let Some(metadata) = patch.metadata {
        smith.metadata = Set(metadata.map(|metadata| serde_json::json!(metadata)));
    }
    if config_changed {
        smith.agent_id = Set(agent.id.clone());
        smith.overrides = Set(serde_json::json!(overrides));
        smith.revision = Set(current.revision + 1);
    }
    smith.updated_at = Set(now());
    let smith = save(&txn, smith).await?;
    if config_changed {
        record_revision(&txn, &smith, None).await?;
    }
    txn.commit().await?;
    caches.invalidate(db, Invalidation::Project(caller.project_id.clone())).await;
    SmithWithAgent::new(db, caches, smith, agent).await
}

/// Deletes the smith, frees its external_id, revokes its smith tokens and expires the
/// approvals its runs wait on.
pub async fn delete(db: &DatabaseConnection, caches: &Caches, caller: &Caller, smith_id: &SmithId) -> Result<()> {
    let txn = db.begin().await?;
    let current = get(&txn, caller, smith_id).await?;
    let mut smith = current.into_active_model();
    smith.deleted_at = Set(Some(now()));
    smith.live_external_id = Set(None);
    smith.update(&txn).await?;
    token::revoke_all(&txn, token::Column::SmithId, smith_id.as_str()).await?;
    crate::domain::memory::erase::smith_memory(&txn, smith_id).await?;
    // Nobody may approve what a deleted smith's runs asked for.
    crate::domain::approvals::expire_for_smith(&txn, &caller.project_id, smith_id).await?;
    txn.commit().await?;
    caches.invalidate(db, Invalidation::Project(caller.project_id.clone())).await;
    caches.invalidate(db, Invalidation::Tokens).await;
    Ok(())
}

/// Saves a changed smith; moving onto an agent where its external_id is taken is a conflict.
async fn save(db: &impl ConnectionTrait, smith: smith::ActiveModel) -> Result<smith::Model> {
    match smith.update(db).await {
        Ok(smith) => Ok(smith),
        Err(err) if is_unique_violation(&err) => {
            Err(Error::conflict("smith_exists", "That agent already has a live smith with this external_id."))
        }
        Err(err) => Err(err.into()),
    }
}

async fn record_revision(db: &impl ConnectionTrait, smith: &smith::Model, restored_from: Option<i32>) -> Result<()> {
    smith_revision::ActiveModel {
        smith_id: Set(smith.id.clone()),
        number: Set(smith.revision),
        agent_id: Set(smith.agent_id.clone()),
        overrides: Set(smith.overrides.clone()),
        restored_from: Set(restored_from),
        created_at: Set(smith.updated_at),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Revisions newest first; the cursor is the revision number below which to continue.
pub async fn revisions(
    db: &impl ConnectionTrait,
    caller: &Caller,
    smith_id: &SmithId,
    limit: u64,
    before: Option<i32>,
) -> Result<(Vec<smith_revision::Model>, bool)> {
    get(db, caller, smith_id).await?;
    let mut query = smith_revision::Entity::find().filter(smith_revision::Column::SmithId.eq(smith_id));
    if let Some(before) = before {
        query = query.filter(smith_revision::Column::Number.lt(before));
    }
    let mut rows = query.order_by_desc(smith_revision::Column::Number).limit(limit + 1).all(db).await?;
    let has_more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, has_more))
}

/// Makes revision `number` current again, as a new revision.
pub async fn restore(
    db: &DatabaseConnection,
    caches: &Caches,
    caller: &Caller,
    smith_id: &SmithId,
    number: i32,
) -> Result<SmithWithAgent> {
    let txn = db.begin().await?;
    let current = get(&txn, caller, smith_id).await?;
    let revision = smith_revision::Entity::find_by_id((smith_id.to_owned(), number))
        .one(&txn)
        .await?
        .ok_or_else(|| Error::not_found("revision_not_found", "revision", number))?;
    let agent = agents::get(&txn, &caller.project_id, &revision.agent_id)
        .await
        .map_err(|_| Error::conflict("revision_agent_deleted", "The agent this revision ran on has been deleted."))?;
    let mut smith = current.clone().into_active_model();
    smith.agent_id = Set(revision.agent_id);
    smith.overrides = Set(revision.overrides);
    smith.revision = Set(current.revision + 1);
    smith.updated_at = Set(now());
    let smith = save(&txn, smith).await?;
    record_revision(&txn, &smith, Some(number)).await?;
    txn.commit().await?;
    caches.invalidate(db, Invalidation::Project(caller.project_id.clone())).await;
    SmithWithAgent::new(db, caches, smith, agent).await
}

fn validate_external_id(external_id: &str) -> Result<()> {
    if external_id.is_empty() || external_id.len() > 255 || external_id.chars().any(char::is_control) {
        return Err(Error::invalid_param(
            "external_id",
            "external_id must be 1 to 255 characters, no control characters.",
        ));
    }
    Ok(())
}

fn validate_metadata(metadata: Option<&std::collections::BTreeMap<String, String>>) -> Result<()> {
    limits::metadata(metadata)
}
