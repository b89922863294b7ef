//! `/v1/tenant/tokens`: a project's API tokens. Secrets are shown once, at creation.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::api::Deleted;
use crate::api::pagination::{PageParams, list_type};
use crate::api::schemas;
use crate::http::ApiResult;
use crate::http::auth::{Authorized, scopes};
use crate::http::extract::{Json, Path, Query};
use ingram_core::auth::{Scope, TokenKind, scopes_of};
use ingram_core::domain::tokens;
use ingram_core::ids::{ProjectId, SmithId, TokenId};
use ingram_core::store::token;

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Token {
    #[schema(value_type = schemas::TokenId)]
    pub id: TokenId,
    #[schema(value_type = schemas::TokenKind)]
    pub kind: TokenKind,
    pub name: Option<String>,
    #[schema(value_type = Option<schemas::ProjectId>)]
    pub project_id: Option<ProjectId>,
    /// The one smith a smith token acts for.
    #[schema(value_type = Option<schemas::SmithId>)]
    pub smith_id: Option<SmithId>,
    /// What the token may do; null means everything its kind allows.
    #[schema(value_type = Option<Vec<schemas::Scope>>)]
    pub scopes: Option<Vec<Scope>>,
    /// The secret's first characters, to recognise it by.
    pub preview: String,
    pub created_at: DateTime<Utc>,
    /// The secret. Present only in the response that created the token; store it then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

list_type!(TokenList, Token);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("project_id", &self.project_id)
            .field("smith_id", &self.smith_id)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

impl Token {
    /// A stored token as listed. Scopes that do not decode are an error: read as "no scopes"
    /// they would show a scoped token as an unrestricted one.
    pub fn from_record(record: token::Model) -> ingram_core::Result<Self> {
        Ok(Self {
            scopes: scopes_of(&record)?,
            kind: record.kind,
            id: record.id,
            name: record.name,
            project_id: record.project_id,
            smith_id: record.smith_id,
            preview: record.preview,
            created_at: record.created_at,
            token: None,
        })
    }

    pub fn from_minted(minted: tokens::Minted) -> ingram_core::Result<Self> {
        Ok(Self { token: Some(minted.secret), ..Self::from_record(minted.record)? })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// `tenant_admin` or `smith`.
    #[schema(value_type = schemas::TokenKind)]
    pub kind: TokenKind,
    /// Required for a smith token: the smith it acts for.
    #[schema(value_type = Option<schemas::SmithId>)]
    pub smith_id: Option<SmithId>,
    /// Restrict the token to these scopes; they must be a subset of the caller's own.
    #[schema(value_type = Option<Vec<schemas::Scope>>)]
    pub scopes: Option<Vec<Scope>>,
    // tokens::NAME_MAX
    #[schema(max_length = 200)]
    pub name: Option<String>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_token, list_tokens)).routes(routes!(delete_token))
}

#[utoipa::path(post, path = "/v1/tenant/tokens", tag = "tokens", request_body = CreateTokenRequest,
    responses((status = 201, description = "The token, with its secret in `token` (shown only here).", body = Token)))]
async fn create_token(
    State(state): State<AppState>,
    caller: Authorized<scopes::TokensWrite>,
    Json(request): Json<CreateTokenRequest>,
) -> ApiResult<(StatusCode, axum::Json<Token>)> {
    let grant =
        tokens::Grant { kind: request.kind, smith_id: request.smith_id, scopes: request.scopes, name: request.name };
    let minted = tokens::grant(&state.db, tokens::Grantor::Caller(&caller), grant).await?;
    Ok((StatusCode::CREATED, axum::Json(Token::from_minted(minted)?)))
}

#[utoipa::path(get, path = "/v1/tenant/tokens", tag = "tokens", params(PageParams),
    responses((status = 200, description = "The project's live tokens, without secrets.", body = TokenList)))]
async fn list_tokens(
    State(state): State<AppState>,
    caller: Authorized<scopes::TokensRead>,
    Query(params): Query<PageParams>,
) -> ApiResult<axum::Json<TokenList>> {
    let page = tokens::list(&state.db, &caller.project_id, &params.validate()?).await?;
    Ok(axum::Json(page.try_map(Token::from_record)?.into()))
}

#[utoipa::path(delete, path = "/v1/tenant/tokens/{tid}", tag = "tokens", params(("tid" = schemas::TokenId, Path, description = "The token's id (tok_…).")),
    responses((status = 200, description = "The token was revoked; it answers 401 from now on.", body = Deleted)))]
async fn delete_token(
    State(state): State<AppState>,
    caller: Authorized<scopes::TokensWrite>,
    Path(tid): Path<TokenId>,
) -> ApiResult<axum::Json<Deleted>> {
    tokens::revoke(&state.db, &state.caches, &caller, &tid).await?;
    Ok(axum::Json(Deleted::new(tid)))
}
