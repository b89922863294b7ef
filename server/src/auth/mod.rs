//! Who is calling: bearer tokens resolved to a principal, and the checks handlers ask for.

pub mod scope;
pub mod secret;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use scope::Scope;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::idempotency::Gate;
use crate::store::token;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Manages the organization's projects.
    Org,
    /// Server-side key for one project.
    TenantAdmin,
    /// Browser-safe key for one smith.
    Smith,
}

impl TokenKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Org => "org",
            Self::TenantAdmin => "tenant_admin",
            Self::Smith => "smith",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Org, Self::TenantAdmin, Self::Smith].into_iter().find(|kind| kind.as_str() == value)
    }

    pub const fn secret_prefix(self) -> &'static str {
        match self {
            Self::Org => "ik_org_",
            Self::TenantAdmin => "tha_live_",
            Self::Smith => "ths_live_",
        }
    }
}

/// The authenticated caller, put into request extensions by [`authenticate`].
#[derive(Debug, Clone)]
pub enum Principal {
    Org { organization_id: String, token_id: String },
    Tenant(Caller),
}

impl Principal {
    /// The token the caller authenticated with.
    pub fn token_id(&self) -> &str {
        match self {
            Self::Org { token_id, .. } => token_id,
            Self::Tenant(caller) => &caller.token_id,
        }
    }
}

/// A caller acting inside one project: a tenant-admin token or a smith token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: String,
    pub project_id: String,
    /// Set for smith tokens: the one smith they may see.
    pub smith_id: Option<String>,
    pub scopes: Option<Vec<Scope>>,
}

impl Caller {
    pub fn kind(&self) -> TokenKind {
        if self.smith_id.is_some() { TokenKind::Smith } else { TokenKind::TenantAdmin }
    }

    /// Refuses the call unless the token's kind and scopes allow `scope`.
    pub fn require(&self, scope: Scope) -> ApiResult<()> {
        if self.smith_id.is_some() && !scope.allowed_for_smith_tokens() {
            return Err(ApiError::forbidden(
                "permission_denied",
                "A smith token cannot do this; use a tenant-admin token from your backend.",
            ));
        }
        if let Some(scopes) = &self.scopes
            && !scopes.contains(&scope)
        {
            return Err(ApiError::forbidden(
                "insufficient_scope",
                format!("This token lacks the '{}' scope.", scope.as_str()),
            ));
        }
        Ok(())
    }

    /// Whether the caller may see this smith at all (a smith token sees only its own).
    pub fn sees_smith(&self, smith_id: &str) -> bool {
        self.smith_id.as_deref().is_none_or(|own| own == smith_id)
    }

    /// Whether the caller holds `scope`, for capping what a minted token may carry.
    pub fn holds(&self, scope: Scope) -> bool {
        self.scopes.as_ref().is_none_or(|scopes| scopes.contains(&scope))
    }
}

/// Resolves the bearer token of every authenticated route.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let principal = resolve(&state, request.headers().get(AUTHORIZATION)).await?;
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

async fn resolve(state: &AppState, header: Option<&axum::http::HeaderValue>) -> ApiResult<Principal> {
    let header = header.ok_or_else(|| {
        ApiError::unauthenticated("missing_token", "Send your token as 'Authorization: Bearer <token>'.")
    })?;
    let secret = header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|secret| !secret.is_empty())
        .ok_or_else(|| {
            ApiError::unauthenticated("invalid_token", "The Authorization header must be 'Bearer <token>'.")
        })?;
    let record = crate::domain::tokens::find_live_by_secret(&state.db, secret)
        .await?
        .ok_or_else(|| ApiError::unauthenticated("invalid_token", "The token is unknown or revoked."))?;
    principal_of(record)
}

fn principal_of(record: token::Model) -> ApiResult<Principal> {
    let (kind, scopes) = crate::domain::tokens::kind_and_scopes(&record)?;
    match kind {
        TokenKind::Org => Ok(Principal::Org { organization_id: record.organization_id, token_id: record.id }),
        TokenKind::TenantAdmin | TokenKind::Smith => {
            let corrupt = || ApiError::internal("A stored token is inconsistent.");
            Ok(Principal::Tenant(Caller {
                token_id: record.id,
                project_id: record.project_id.ok_or_else(corrupt)?,
                smith_id: record.smith_id,
                scopes,
            }))
        }
    }
}

fn principal(parts: &Parts) -> ApiResult<&Principal> {
    parts.extensions.get::<Principal>().ok_or_else(|| ApiError::internal("route is missing the authentication layer"))
}

/// Extracts a project-scoped caller; org keys are refused.
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match principal(parts)? {
            Principal::Tenant(caller) => Ok(caller.clone()),
            Principal::Org { .. } => Err(ApiError::forbidden(
                "permission_denied",
                "An org key manages projects only; use a project token here.",
            )),
        }
    }
}

/// The organization behind an org key; project tokens are refused.
#[derive(Debug, Clone)]
pub struct OrgCaller {
    pub organization_id: String,
}

/// Authorizes the org key, then passes the idempotency gate (see [`Authorized`]).
impl<S: Send + Sync> FromRequestParts<S> for OrgCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let caller = match principal(parts).map_err(IntoResponse::into_response)? {
            Principal::Org { organization_id, .. } => Self { organization_id: organization_id.clone() },
            Principal::Tenant(_) => {
                return Err(
                    ApiError::forbidden("permission_denied", "Only an org key may manage projects.").into_response()
                );
            }
        };
        Gate::pass(parts).await?;
        Ok(caller)
    }
}

/// A project caller already checked for one scope, named by a marker type from [`scopes`].
/// As an extractor it runs before the body is read, so a token that may not call an
/// operation is refused with 403 whatever it sent; and only once it passed does a keyed
/// request reach its stored answer ([`Gate`]).
pub struct Authorized<S> {
    pub caller: Caller,
    _scope: std::marker::PhantomData<S>,
}

impl<S> std::ops::Deref for Authorized<S> {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.caller
    }
}

pub trait RequiredScope {
    const SCOPE: Scope;
}

impl<M: RequiredScope, S: Send + Sync> FromRequestParts<S> for Authorized<M> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let caller = Caller::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
        caller.require(M::SCOPE).map_err(IntoResponse::into_response)?;
        Gate::pass(parts).await?;
        Ok(Self { caller, _scope: std::marker::PhantomData })
    }
}

/// Marker types for [`Authorized`], one per [`Scope`].
pub mod scopes {
    use super::{RequiredScope, Scope};

    macro_rules! markers {
        ($($name:ident),*) => {$(
            pub struct $name;
            impl RequiredScope for $name {
                const SCOPE: Scope = Scope::$name;
            }
        )*};
    }

    markers!(
        SmithsRead,
        SmithsWrite,
        AgentsRead,
        AgentsWrite,
        TokensRead,
        TokensWrite,
        ModelKeysRead,
        ModelKeysWrite,
        RunsRead,
        RunsWrite,
        FilesRead
    );
}
