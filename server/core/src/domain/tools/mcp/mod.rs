//! A project's MCP servers: registered by name (`/v1/tenant/mcp/{name}`), asked for their
//! tools when registered and refreshed, and called by runs whose config names
//! `mcp/<server>/<tool>` or `mcp/<server>/*`. Every request goes through the egress policy;
//! the headers a server needs are sealed at rest and never shown again.

pub mod client;
pub mod presets;
pub mod registry;

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::reference::ToolRef;
use crate::cache::Caches;
use crate::crypto::SealContext;
use crate::egress::Egress;
use crate::error::{Error, Result};
use crate::ids::ProjectId;
use crate::settings::Settings;
use crate::store::mcp_server;

/// MCP servers one project may register.
pub const SERVERS_PER_PROJECT_MAX: usize = 32;
/// Tools of one server a run may be offered; a server listing more is cut at this many.
pub const TOOLS_PER_SERVER_MAX: usize = 128;
/// Characters of a tool name as the server lists it.
pub const TOOL_NAME_MAX: usize = 128;
/// How long registering or refreshing waits for the server to answer its tool list.
pub const LIST_DEADLINE: Duration = Duration::from_secs(15);

/// A tool as its server listed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpTool {
    /// The server's own name for it.
    pub name: String,
    pub description: String,
    pub input_schema: Value,
}

/// What a project's servers listed when last asked, which runs resolve `mcp/…` against.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    servers: Vec<(String, Vec<McpTool>)>,
}

impl Listing {
    /// The tools server `name` listed; `None` when no server has that name.
    pub fn tools(&self, name: &str) -> Option<&[McpTool]> {
        self.servers.iter().find(|(server, _)| server == name).map(|(_, tools)| tools.as_slice())
    }

    /// A listing of these servers' tools.
    #[cfg(test)]
    pub fn from_servers(servers: Vec<(String, Vec<McpTool>)>) -> Self {
        Self { servers }
    }

    /// The listings of the servers `references` name (only those are decoded).
    fn of(rows: &[mcp_server::Model], references: &[String]) -> Result<Self> {
        let named: Vec<String> = references
            .iter()
            .filter_map(|text| match ToolRef::parse("tools", text).ok()? {
                ToolRef::Mcp { server, .. } | ToolRef::McpAll { server } => Some(server),
                _ => None,
            })
            .collect();
        let servers = rows
            .iter()
            .filter(|row| named.contains(&row.name))
            .map(|row| Ok((row.name.clone(), crate::store::decode_json(&row.name, "tools", &row.tools)?)))
            .collect::<Result<_>>()?;
        Ok(Self { servers })
    }
}

/// Whether any of `references` names an MCP tool (and so needs the project's servers).
pub fn names_mcp(references: &[String]) -> bool {
    references.iter().any(|reference| reference.starts_with("mcp/"))
}

/// The project's servers' tools for resolving `references`; empty, without a query, when
/// they name no MCP tool.
pub async fn listing_for(
    db: &impl ConnectionTrait,
    caches: &Caches,
    project_id: &ProjectId,
    references: &[String],
) -> Result<Listing> {
    if !names_mcp(references) {
        return Ok(Listing::default());
    }
    let generation = match caches.mcp_servers().get(project_id) {
        Ok(rows) => return Listing::of(&rows, references),
        Err(generation) => generation,
    };
    let rows = Arc::new(servers_of(db, project_id).await?);
    caches.mcp_servers().insert(generation, project_id.clone(), rows.clone());
    Listing::of(&rows, references)
}

async fn servers_of(db: &impl ConnectionTrait, project_id: &ProjectId) -> Result<Vec<mcp_server::Model>> {
    Ok(mcp_server::Entity::find()
        .filter(mcp_server::Column::ProjectId.eq(project_id))
        .order_by_asc(mcp_server::Column::Name)
        .all(db)
        .await?)
}

fn sealing<'a>(project_id: &'a ProjectId, server: &'a str) -> SealContext<'a> {
    SealContext::McpHeaders { project_id: project_id.as_str(), server }
}

/// The MCP service: the registry, and the calls runs make.
#[derive(Clone)]
pub struct Mcp {
    db: DatabaseConnection,
    caches: Arc<Caches>,
    settings: Arc<Settings>,
    egress: Egress,
}

impl Mcp {
    pub fn new(db: DatabaseConnection, caches: Arc<Caches>, settings: Arc<Settings>, egress: Egress) -> Self {
        Self { db, caches, settings, egress }
    }

    /// [`listing_for`] on this service's database and caches.
    pub async fn listing_for(&self, project_id: &ProjectId, references: &[String]) -> Result<Listing> {
        listing_for(&self.db, &self.caches, project_id, references).await
    }

    /// The headers sent to a server, opened.
    fn headers(&self, server: &mcp_server::Model) -> Result<Vec<(String, String)>> {
        let Some(sealed) = &server.headers_ciphertext else { return Ok(Vec::new()) };
        let opened = self
            .settings
            .master_key
            .open(sealed, sealing(&server.project_id, &server.name))
            .ok_or_else(|| Error::internal("An MCP server's headers cannot be opened with the master key."))?;
        serde_json::from_str(&opened).map_err(|_| Error::internal("An MCP server's headers do not decode."))
    }

    /// Calls `tool` of the project's server `server` for a run: the text the model reads, or
    /// why the call failed (also for the model). The caller bounds the time it takes.
    pub async fn call(
        &self,
        project_id: &ProjectId,
        server: &str,
        tool: &str,
        arguments: &Value,
    ) -> std::result::Result<String, String> {
        let unavailable = |_| "the MCP server's registration could not be read".to_owned();
        let row = mcp_server::Entity::find_by_id((project_id.clone(), server.to_owned()))
            .one(&self.db)
            .await
            .map_err(|err| unavailable(Error::from(err)))?
            .ok_or_else(|| format!("the MCP server {server} is no longer registered"))?;
        let headers = self.headers(&row).map_err(unavailable)?;
        let arguments = arguments.as_object().cloned().unwrap_or_default();
        let session = client::connect(&self.egress, &row.url, &headers).await.map_err(|refusal| refusal.message)?;
        let called = session.call(tool, arguments).await;
        session.close().await;
        called
    }
}
