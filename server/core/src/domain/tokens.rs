//! Minting, listing and revoking tokens.

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::Deserialize;

use crate::auth::{Caller, Scope, TokenKind, secret};
use crate::error::{Error, Result};
use crate::ids::{IdKind, new_id};
use crate::store::page::{Page, PageRequest};
use crate::store::{now, token};

pub struct Mint<'a> {
    pub kind: TokenKind,
    pub organization_id: &'a str,
    pub project_id: Option<&'a str>,
    pub smith_id: Option<&'a str>,
    pub name: Option<String>,
    pub scopes: Option<Vec<Scope>>,
    /// An operator-chosen secret (bootstrap); otherwise one is generated.
    pub secret: Option<String>,
}

/// A stored token together with its secret, which exists only in this value.
pub struct Minted {
    pub record: token::Model,
    pub secret: String,
}

pub async fn mint(db: &impl ConnectionTrait, mint: Mint<'_>) -> Result<Minted> {
    let new_secret = match mint.secret {
        Some(chosen) => secret::from_secret(chosen),
        None => secret::generate(mint.kind),
    };
    let scopes = mint.scopes.map(|scopes| serde_json::to_value(scopes).expect("scopes serialize"));
    let record = token::ActiveModel {
        id: Set(new_id(IdKind::Token)),
        kind: Set(mint.kind.as_str().to_owned()),
        organization_id: Set(mint.organization_id.to_owned()),
        project_id: Set(mint.project_id.map(str::to_owned)),
        smith_id: Set(mint.smith_id.map(str::to_owned)),
        name: Set(mint.name),
        scopes: Set(scopes),
        secret_hash: Set(new_secret.hash),
        preview: Set(new_secret.preview),
        created_at: Set(now()),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(Minted { record, secret: new_secret.secret })
}

/// A stored token's kind and scopes (`None`: everything its kind allows). Data that does
/// not decode is an error naming the token: read as "no scopes" it would make a scoped token
/// an unrestricted one.
pub fn kind_and_scopes(record: &token::Model) -> Result<(TokenKind, Option<Vec<Scope>>)> {
    let corrupt = || Error::internal(format!("Token {} is stored inconsistently.", record.id));
    let kind = TokenKind::parse(&record.kind).ok_or_else(corrupt)?;
    let scopes = match &record.scopes {
        Some(scopes) => Some(Vec::<Scope>::deserialize(scopes).map_err(|_| corrupt())?),
        None => None,
    };
    Ok((kind, scopes))
}

pub async fn find_live_by_secret(db: &impl ConnectionTrait, secret: &str) -> Result<Option<token::Model>> {
    Ok(token::Entity::find()
        .filter(token::Column::SecretHash.eq(secret::hash(secret)))
        .filter(token::Column::RevokedAt.is_null())
        .one(db)
        .await?)
}

pub async fn list(db: &impl ConnectionTrait, project_id: &str, page: &PageRequest) -> Result<Page<token::Model>> {
    let query = token::Entity::find()
        .filter(token::Column::ProjectId.eq(project_id))
        .filter(token::Column::RevokedAt.is_null());
    crate::store::fetch_page(db, query, token::Column::Id, |row| &row.id, page).await
}

/// Revokes one of the caller's project's tokens; a scoped caller may revoke only tokens whose
/// scopes are a subset of its own (never a broader token, never an unscoped one).
pub async fn revoke(db: &impl ConnectionTrait, caller: &Caller, token_id: &str) -> Result<()> {
    let project_id = caller.project_id.as_str();
    let target = token::Entity::find_by_id(token_id)
        .filter(token::Column::ProjectId.eq(project_id))
        .filter(token::Column::RevokedAt.is_null())
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("token_not_found", "token", token_id))?;
    if caller.scopes.is_some() {
        let (_, target_scopes) = kind_and_scopes(&target)?;
        let within = target_scopes.is_some_and(|scopes| scopes.iter().all(|scope| caller.holds(*scope)));
        if !within {
            return Err(Error::forbidden(
                "insufficient_scope",
                "A scoped token may revoke only tokens whose scopes are a subset of its own.",
            ));
        }
    }
    let revoked = token::Entity::update_many()
        .col_expr(token::Column::RevokedAt, Some(now()).into())
        .filter(token::Column::Id.eq(token_id))
        .filter(token::Column::ProjectId.eq(project_id))
        .filter(token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    if revoked.rows_affected == 0 {
        return Err(Error::not_found("token_not_found", "token", token_id));
    }
    Ok(())
}

/// Revokes every live token matching `column = value` (a project's or a smith's).
pub async fn revoke_all(db: &impl ConnectionTrait, column: token::Column, value: &str) -> Result<u64> {
    let revoked = token::Entity::update_many()
        .col_expr(token::Column::RevokedAt, Some(now()).into())
        .filter(column.eq(value))
        .filter(token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(revoked.rows_affected)
}
