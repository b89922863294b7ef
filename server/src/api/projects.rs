//! `/v1/organization/projects`: tenants, managed with the org key.

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
use crate::api::tokens::Token;
use crate::http::ApiResult;
use crate::http::auth::OrgCaller;
use crate::http::extract::{Json, OptionalJson, Path, Query};
use ingram_core::auth::{Scope, TokenKind};
use ingram_core::domain::{projects, tokens};
use ingram_core::ids::{AgentId, ProjectId};
use ingram_core::store::project;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Project {
    #[schema(value_type = schemas::ProjectId)]
    pub id: ProjectId,
    pub name: String,
    /// The agent smiths land on when they name none.
    #[schema(value_type = Option<schemas::AgentId>)]
    pub default_agent_id: Option<AgentId>,
    pub created_at: DateTime<Utc>,
}

list_type!(ProjectList, Project);

impl From<project::Model> for Project {
    fn from(model: project::Model) -> Self {
        Self { id: model.id, name: model.name, default_agent_id: model.default_agent_id, created_at: model.created_at }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProjectRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProjectTokenRequest {
    #[schema(max_length = 200)]
    pub name: Option<String>,
    /// Restrict the token to these scopes; null means all.
    #[schema(value_type = Option<Vec<schemas::Scope>>)]
    pub scopes: Option<Vec<Scope>>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_project, list_projects))
        .routes(routes!(get_project, delete_project))
        .routes(routes!(create_project_token))
}

#[utoipa::path(post, path = "/v1/organization/projects", tag = "projects", request_body = CreateProjectRequest,
    responses((status = 201, description = "The project, created with its default agent.", body = Project)))]
async fn create_project(
    State(state): State<AppState>,
    org: OrgCaller,
    Json(request): Json<CreateProjectRequest>,
) -> ApiResult<(StatusCode, axum::Json<Project>)> {
    let project = projects::create(&state.db, &org.organization_id, &request.name).await?;
    Ok((StatusCode::CREATED, axum::Json(project.into())))
}

#[utoipa::path(get, path = "/v1/organization/projects", tag = "projects", params(PageParams),
    responses((status = 200, description = "The organization's projects, newest first.", body = ProjectList)))]
async fn list_projects(
    State(state): State<AppState>,
    org: OrgCaller,
    Query(params): Query<PageParams>,
) -> ApiResult<axum::Json<ProjectList>> {
    let page = projects::list(&state.db, &org.organization_id, &params.validate()?).await?;
    Ok(axum::Json(page.map(Project::from).into()))
}

#[utoipa::path(get, path = "/v1/organization/projects/{pid}", tag = "projects", params(("pid" = schemas::ProjectId, Path, description = "The project's id (prj_…).")),
    responses((status = 200, description = "The project.", body = Project)))]
async fn get_project(
    State(state): State<AppState>,
    org: OrgCaller,
    Path(pid): Path<ProjectId>,
) -> ApiResult<axum::Json<Project>> {
    Ok(axum::Json(projects::get(&state.db, &org.organization_id, &pid).await?.into()))
}

#[utoipa::path(delete, path = "/v1/organization/projects/{pid}", tag = "projects", params(("pid" = schemas::ProjectId, Path, description = "The project's id (prj_…).")),
    responses((status = 200, description = "The project was deleted and all its tokens revoked.", body = Deleted)))]
async fn delete_project(
    State(state): State<AppState>,
    org: OrgCaller,
    Path(pid): Path<ProjectId>,
) -> ApiResult<axum::Json<Deleted>> {
    projects::delete(&state.db, &state.caches, &org.organization_id, &pid).await?;
    Ok(axum::Json(Deleted::new(pid)))
}

#[utoipa::path(post, path = "/v1/organization/projects/{pid}/tokens", tag = "projects",
    params(("pid" = schemas::ProjectId, Path, description = "The project's id (prj_…).")), request_body = CreateProjectTokenRequest,
    responses((status = 201, description = "A tenant-admin token for the project, with its secret in `token` (shown only here).", body = Token)))]
async fn create_project_token(
    State(state): State<AppState>,
    org: OrgCaller,
    Path(pid): Path<ProjectId>,
    OptionalJson(request): OptionalJson<CreateProjectTokenRequest>,
) -> ApiResult<(StatusCode, axum::Json<Token>)> {
    let project = projects::get(&state.db, &org.organization_id, &pid).await?;
    let grant =
        tokens::Grant { kind: TokenKind::TenantAdmin, smith_id: None, scopes: request.scopes, name: request.name };
    let minted = tokens::grant(&state.db, tokens::Grantor::Operator { project_id: &project.id }, grant).await?;
    Ok((StatusCode::CREATED, axum::Json(Token::from_minted(minted)?)))
}
