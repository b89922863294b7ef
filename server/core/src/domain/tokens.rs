//! Minting, listing and revoking tokens.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
};

use crate::auth::{Caller, Scope, TokenKind, scopes_of, secret};
use crate::cache::{Caches, Invalidation};
use crate::domain::{limits, projects, smiths};
use crate::error::{Error, Result};
use crate::ids::{OrganizationId, ProjectId, SmithId, TokenId};
use crate::store::page::{Page, PageRequest};
use crate::store::{now, token};

pub struct Mint<'a> {
    pub kind: TokenKind,
    pub organization_id: &'a OrganizationId,
    pub project_id: Option<&'a ProjectId>,
    pub smith_id: Option<&'a SmithId>,
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

/// Who asks for a project token: the operator (the command line, or an org key for its
/// organization's projects), who may grant anything within the project, or a caller of the
/// project, who grants no more than it holds.
pub enum Grantor<'a> {
    Operator { project_id: &'a ProjectId },
    Caller(&'a Caller),
}

/// A token asked for through the API or the command line.
pub struct Grant {
    pub kind: TokenKind,
    /// The smith a smith token acts for; required for those, refused for the others.
    pub smith_id: Option<SmithId>,
    /// `None`: the grantor's own scopes.
    pub scopes: Option<Vec<Scope>>,
    pub name: Option<String>,
}

pub const NAME_MAX: usize = 200;

/// Mints a project token after the rules every grant obeys: tenant-admin and smith tokens
/// only, a smith token bound to a live smith of the project and holding only smith scopes,
/// and never a scope the grantor lacks.
pub async fn grant(db: &impl ConnectionTrait, grantor: Grantor<'_>, grant: Grant) -> Result<Minted> {
    match (grant.kind, &grant.smith_id) {
        (TokenKind::Org, _) => {
            return Err(Error::invalid_param("kind", "Org keys are minted by the operator, not through the API."));
        }
        (TokenKind::TenantAdmin, Some(_)) => {
            return Err(Error::invalid_param("smith_id", "A tenant_admin token is not bound to a smith."));
        }
        (TokenKind::Smith, None) => {
            return Err(Error::invalid_param("smith_id", "A smith token needs the smith_id it acts for."));
        }
        (TokenKind::TenantAdmin, None) | (TokenKind::Smith, Some(_)) => {}
    }
    let (project_id, caller) = match grantor {
        Grantor::Operator { project_id } => (project_id, None),
        Grantor::Caller(caller) => (&caller.project_id, Some(caller)),
    };
    let project = projects::get_live(db, project_id).await?;
    if let Some(smith_id) = &grant.smith_id {
        match caller {
            Some(caller) => smiths::get(db, caller, smith_id).await?,
            None => smiths::get_in_project(db, project_id, smith_id).await?,
        };
    }
    if let Some(scopes) = &grant.scopes {
        if let Some(caller) = caller
            && let Some(missing) = scopes.iter().find(|scope| !caller.holds(**scope))
        {
            return Err(Error::forbidden(
                "insufficient_scope",
                format!("A token cannot grant the '{}' scope it does not hold.", missing.as_str()),
            ));
        }
        if grant.smith_id.is_some()
            && let Some(scope) = scopes.iter().find(|scope| !scope.allowed_for_smith_tokens())
        {
            return Err(Error::invalid_param("scopes", format!("A smith token cannot hold '{}'.", scope.as_str())));
        }
    }
    limits::text("name", grant.name.as_deref(), NAME_MAX)?;
    mint(
        db,
        Mint {
            kind: grant.kind,
            organization_id: &project.organization_id,
            project_id: Some(&project.id),
            smith_id: grant.smith_id.as_ref(),
            name: grant.name,
            // A scoped caller mints tokens no broader than itself.
            scopes: grant.scopes.or_else(|| caller.and_then(|caller| caller.scopes.clone())),
            secret: None,
        },
    )
    .await
}

pub async fn mint(db: &impl ConnectionTrait, mint: Mint<'_>) -> Result<Minted> {
    let new_secret = match mint.secret {
        Some(chosen) => secret::from_secret(chosen),
        None => secret::generate(mint.kind),
    };
    let scopes = mint.scopes.map(|scopes| serde_json::to_value(scopes).expect("scopes serialize"));
    let record = token::ActiveModel {
        id: Set(TokenId::generate()),
        kind: Set(mint.kind),
        organization_id: Set(mint.organization_id.clone()),
        project_id: Set(mint.project_id.cloned()),
        smith_id: Set(mint.smith_id.cloned()),
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

pub async fn list(db: &impl ConnectionTrait, project_id: &ProjectId, page: &PageRequest) -> Result<Page<token::Model>> {
    let query = token::Entity::find()
        .filter(token::Column::ProjectId.eq(project_id))
        .filter(token::Column::RevokedAt.is_null());
    crate::store::fetch_page(db, query, token::Column::Id, |row| row.id.as_str(), page).await
}

/// Revokes one of the caller's project's tokens; a scoped caller may revoke only tokens whose
/// scopes are a subset of its own (never a broader token, never an unscoped one).
pub async fn revoke(db: &DatabaseConnection, caches: &Caches, caller: &Caller, token_id: &TokenId) -> Result<()> {
    let project_id = caller.project_id.as_str();
    let target = token::Entity::find_by_id(token_id)
        .filter(token::Column::ProjectId.eq(project_id))
        .filter(token::Column::RevokedAt.is_null())
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("token_not_found", "token", token_id))?;
    if caller.scopes.is_some() {
        let within = scopes_of(&target)?.is_some_and(|scopes| scopes.iter().all(|scope| caller.holds(*scope)));
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
    caches.invalidate(db, Invalidation::Tokens).await;
    Ok(())
}
