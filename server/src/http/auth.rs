//! Who is calling, over HTTP: the bearer token resolved to the core's principal, and the
//! extractors through which handlers ask for a caller holding a scope.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ingram_core::auth::{Caller, Principal, Scope};
use ingram_core::error::Error;
use ingram_core::ids::OrganizationId;

use crate::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorResponse};
use crate::http::idempotency::Gate;

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
        Error::unauthenticated("missing_token", "Send your token as 'Authorization: Bearer <token>'.")
    })?;
    let secret = header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|secret| !secret.is_empty())
        .ok_or_else(|| Error::unauthenticated("invalid_token", "The Authorization header must be 'Bearer <token>'."))?;
    Ok(ingram_core::auth::authenticate(&state.db, &state.caches, secret).await?)
}

fn principal(parts: &Parts) -> ApiResult<&Principal> {
    Ok(parts
        .extensions
        .get::<Principal>()
        .ok_or_else(|| Error::internal("route is missing the authentication layer"))?)
}

/// The project-scoped caller of an authenticated request; org keys are refused.
fn project_caller(parts: &Parts) -> ApiResult<Caller> {
    match principal(parts)? {
        Principal::Tenant(caller) => Ok(caller.clone()),
        Principal::Org { .. } => {
            Err(Error::forbidden("permission_denied", "An org key manages projects only; use a project token here.")
                .into())
        }
    }
}

/// The organization behind an org key; project tokens are refused.
#[derive(Debug, Clone)]
pub struct OrgCaller {
    pub organization_id: OrganizationId,
}

/// Authorizes the org key, then passes the idempotency gate (see [`Authorized`]).
impl<S: Send + Sync> FromRequestParts<S> for OrgCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let caller = match principal(parts).map_err(IntoResponse::into_response)? {
            Principal::Org { organization_id, .. } => Self { organization_id: organization_id.clone() },
            Principal::Tenant(_) => {
                return Err(
                    Error::forbidden("permission_denied", "Only an org key may manage projects.").into_response()
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

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let caller = project_caller(parts).map_err(IntoResponse::into_response)?;
        caller.require(M::SCOPE).map_err(ErrorResponse::into_response)?;
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
        FilesRead,
        MemoryRead,
        MemoryWrite,
        ToolsRead,
        ToolsWrite,
        ApprovalsRead,
        ApprovalsWrite
    );
}
