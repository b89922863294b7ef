//! Entities and the queries shared across the domain layer.

pub mod agent;
pub mod approval;
pub mod embedding_setting;
pub mod file;
pub mod idempotency_key;
pub mod mcp_server;
pub mod memory;
pub mod memory_block;
pub mod model_key;
pub mod organization;
pub mod page;
pub mod project;
pub mod run;
pub mod run_event;
pub mod smith;
pub mod smith_revision;
pub mod token;
pub mod usage_record;

use chrono::{DateTime, SubsecRound, Utc};

/// Now, truncated to microseconds so SQLite and PostgreSQL store and compare the same value.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};

use self::page::{Page, PageRequest};
use crate::error::Result;

/// Reads a row's JSON column as its type. Data that does not decode is an error naming the
/// row (`owner`, its id) and the column, never a default: a transcript or a design must not
/// vanish silently.
pub fn decode_json<T: serde::de::DeserializeOwned>(
    owner: impl AsRef<str>,
    column: &str,
    value: &serde_json::Value,
) -> Result<T> {
    let owner = owner.as_ref();
    T::deserialize(value).map_err(|err| {
        tracing::error!(owner, column, error = %err, "a stored row does not decode");
        crate::error::Error::internal(format!("{owner} has a corrupt {column}."))
    })
}

/// [`decode_json`] for a nullable column.
pub fn decode_json_opt<T: serde::de::DeserializeOwned>(
    owner: impl AsRef<str>,
    column: &str,
    value: Option<&serde_json::Value>,
) -> Result<Option<T>> {
    value.map(|value| decode_json(owner, column, value)).transpose()
}

/// `column` starts with `prefix`, exactly: case-sensitive and with no wildcards, the same on
/// SQLite and PostgreSQL (`LIKE` would treat `_` and `%` as wildcards, and SQLite's ignores case).
pub fn starts_with(column: impl sea_orm::sea_query::IntoColumnRef, prefix: &str) -> sea_orm::sea_query::SimpleExpr {
    use sea_orm::sea_query::{Expr, ExprTrait, Func};
    // int4 arguments: PostgreSQL has substr(text, int, int) and no bigint variant.
    let length = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
    ExprTrait::eq(
        Expr::expr(Func::cust("substr").args([Expr::col(column), Expr::val(1i32), Expr::val(length)])),
        prefix,
    )
}

/// Runs `query` as one cursor page, newest first by its time-sortable `id` column.
pub async fn fetch_page<E: EntityTrait>(
    db: &impl ConnectionTrait,
    query: Select<E>,
    id: E::Column,
    id_of: impl Fn(&E::Model) -> &str,
    page: &PageRequest,
) -> Result<Page<E::Model>> {
    let query = match &page.before_id {
        Some(before) => query.filter(id.lt(before.as_str())),
        None => query,
    };
    let rows = query.order_by_desc(id).limit(page.limit + 1).all(db).await?;
    Ok(Page::from_rows(rows, page, id_of))
}
