//! Memory: what each smith keeps about its person. Blocks are labelled text in the model's
//! context on every run; memories are facts, searchable by words (and by meaning where the
//! project configured embeddings). Everything here is scoped to one smith: one person's facts
//! never reach another's context, search or extraction.

pub mod blocks;
pub mod context;
pub mod declarations;
pub mod embeddings;
pub mod erase;
pub mod extract;
pub mod memories;
pub mod search;

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::auth::Caller;
use crate::cache::{Caches, Invalidation};
use crate::egress::Egress;
use crate::error::{Error, Result};
use crate::ids::{ProjectId, SmithId};
use crate::settings::Settings;
use crate::store::smith;

/// Memories one smith may keep.
pub const MEMORIES_PER_SMITH_MAX: i32 = 1_000;
/// Characters of one memory's text.
pub const MEMORY_TEXT_MAX: usize = 2_000;
/// Characters of a search query.
pub const QUERY_MAX: usize = 1_000;
pub const SEARCH_LIMIT_DEFAULT: u64 = 10;
pub const SEARCH_LIMIT_MAX: u64 = 50;

/// The memory service: the database, and the egress policy its embeddings calls go through.
#[derive(Clone)]
pub struct Memory {
    db: DatabaseConnection,
    caches: Arc<Caches>,
    settings: Arc<Settings>,
    egress: Egress,
}

impl Memory {
    pub fn new(db: DatabaseConnection, caches: Arc<Caches>, settings: Arc<Settings>, egress: Egress) -> Self {
        Self { db, caches, settings, egress }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// After the smith's memory counts changed: its cached row carries them.
    async fn counts_changed(&self, project_id: &ProjectId, smith_id: &SmithId) {
        self.caches.invalidate(&self.db, Invalidation::Smith(project_id.clone(), smith_id.clone())).await;
    }
}

/// What the person said in a turn: its user messages after the last assistant message (a
/// Chat Completions request carries the whole conversation; only its new part is the turn).
pub fn person_text(input: &[crate::types::InputMessage]) -> String {
    use crate::providers::Role;
    let mut said: Vec<String> = input
        .iter()
        .rev()
        .take_while(|message| message.role != Role::Assistant)
        .filter(|message| message.role == Role::User)
        .map(|message| message.content.text())
        .collect();
    said.reverse();
    said.join("\n")
}

/// Writing a smith's memory is for the project's backend; a smith token reads it, and may
/// correct or erase its own memories, never write its blocks or add facts.
fn require_tenant(caller: &Caller, what: &str) -> Result<()> {
    if caller.smith_id.is_some() {
        return Err(Error::forbidden(
            "permission_denied",
            format!("A smith token may not {what}; use a tenant token."),
        ));
    }
    Ok(())
}

/// Moves one of a live smith's counts by `delta`, only while the count is under `max` when
/// one is given (the row lock makes the check and the change one step). False when the smith
/// is gone or the count full. A `delta` of 0 only takes the row's lock.
async fn bump(
    db: &impl ConnectionTrait,
    smith_id: &SmithId,
    column: smith::Column,
    delta: i32,
    max: Option<i32>,
) -> Result<bool> {
    let mut update = smith::Entity::update_many()
        .col_expr(column, Expr::col(column).add(delta))
        .filter(smith::Column::Id.eq(smith_id))
        .filter(smith::Column::DeletedAt.is_null());
    if let Some(max) = max {
        update = update.filter(column.lt(max));
    }
    Ok(update.exec(db).await?.rows_affected == 1)
}
