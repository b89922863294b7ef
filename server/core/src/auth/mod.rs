//! Who is acting: a token resolved to a principal, and the checks every operation asks for.
//! The HTTP layer reads the bearer token and asks [`authenticate`]; other entrances (the
//! command line, schedules, channels) build their [`Caller`] themselves.

pub mod scope;
pub mod secret;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

pub use scope::Scope;

use crate::cache::Caches;
use crate::error::{Error, Result};
use crate::ids::{OrganizationId, ProjectId, SmithId, TokenId};
use crate::store::token;
pub use crate::store::token::TokenKind;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub enum Principal {
    Org { organization_id: OrganizationId, token_id: TokenId },
    Tenant(Caller),
}

impl Principal {
    /// The token the caller authenticated with.
    pub fn token_id(&self) -> &TokenId {
        match self {
            Self::Org { token_id, .. } => token_id,
            Self::Tenant(caller) => &caller.token_id,
        }
    }
}

/// A caller acting inside one project: a tenant-admin token or a smith token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: TokenId,
    pub project_id: ProjectId,
    /// Set for smith tokens: the one smith they may see.
    pub smith_id: Option<SmithId>,
    pub scopes: Option<Vec<Scope>>,
}

impl Caller {
    /// Refuses the call unless the token's kind and scopes allow `scope`.
    pub fn require(&self, scope: Scope) -> Result<()> {
        if self.smith_id.is_some() && !scope.allowed_for_smith_tokens() {
            return Err(Error::forbidden(
                "permission_denied",
                "A smith token cannot do this; use a tenant-admin token from your backend.",
            ));
        }
        if let Some(scopes) = &self.scopes
            && !scopes.contains(&scope)
        {
            return Err(Error::forbidden(
                "insufficient_scope",
                format!("This token lacks the '{}' scope.", scope.as_str()),
            ));
        }
        Ok(())
    }

    /// Whether the caller may see this smith at all (a smith token sees only its own).
    pub fn sees_smith(&self, smith_id: &SmithId) -> bool {
        self.smith_id.as_ref().is_none_or(|own| own == smith_id)
    }

    /// Whether the caller holds `scope`, for capping what a minted token may carry.
    pub fn holds(&self, scope: Scope) -> bool {
        self.scopes.as_ref().is_none_or(|scopes| scopes.contains(&scope))
    }
}

/// The principal behind a token's secret, or `invalid_token` when it is unknown or revoked.
/// Live tokens are cached; an unknown secret is looked up every time (nothing to invalidate
/// when it is minted later).
pub async fn authenticate(db: &impl ConnectionTrait, caches: &Caches, secret: &str) -> Result<Principal> {
    let hash = secret::hash(secret);
    let generation = match caches.tokens().get(&hash) {
        Ok(record) => return principal_of(record),
        Err(generation) => generation,
    };
    let record = token::Entity::find()
        .filter(token::Column::SecretHash.eq(hash.as_str()))
        .filter(token::Column::RevokedAt.is_null())
        .limit(1)
        .all(db)
        .await?
        .pop()
        .ok_or_else(|| Error::unauthenticated("invalid_token", "The token is unknown or revoked."))?;
    caches.tokens().insert(generation, hash, record.clone());
    principal_of(record)
}

/// A stored token's scopes (`None`: everything its kind allows). Data that does not decode is
/// an error naming the token: read as "no scopes" it would make a scoped token an
/// unrestricted one.
pub fn scopes_of(record: &token::Model) -> Result<Option<Vec<Scope>>> {
    crate::store::decode_json_opt(&record.id, "scopes", record.scopes.as_ref())
}

fn principal_of(record: token::Model) -> Result<Principal> {
    let scopes = scopes_of(&record)?;
    match record.kind {
        TokenKind::Org => Ok(Principal::Org { organization_id: record.organization_id, token_id: record.id }),
        TokenKind::TenantAdmin | TokenKind::Smith => {
            let corrupt = || Error::internal("A stored token is inconsistent.");
            Ok(Principal::Tenant(Caller {
                token_id: record.id,
                project_id: record.project_id.ok_or_else(corrupt)?,
                smith_id: record.smith_id,
                scopes,
            }))
        }
    }
}
