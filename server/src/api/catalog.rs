//! `/v1/catalog`: curated presets of common MCP integrations, the same for every project;
//! `PUT /v1/tenant/mcp/{name}` with `{"catalog": slug}` registers one.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use ingram_core::domain::tools::mcp::presets::{self, Preset};
use ingram_core::error::Error;

use crate::AppState;
use crate::http::ApiResult;
use crate::http::auth::{Authorized, scopes};
use crate::http::extract::Path;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CatalogHeader {
    pub name: String,
    pub description: String,
    /// Registration is refused without it.
    pub required: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CatalogVariable {
    /// The `{name}` placeholder in `url_template`; registration gives its value in `variables`.
    pub name: String,
    pub description: String,
}

/// How the integration authenticates.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CatalogAuth {
    /// A public server.
    None,
    /// A static credential in the listed headers.
    Headers,
    /// Per-user OAuth: needs a connection, which is not available yet; registering it is
    /// refused with `catalog_requires_connection`.
    Oauth,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CatalogEntry {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub url_template: String,
    pub auth: CatalogAuth,
    pub headers: Vec<CatalogHeader>,
    pub variables: Vec<CatalogVariable>,
    /// Whether it can be registered now (`false` for OAuth presets until connections exist).
    pub available: bool,
    pub documentation_url: String,
}

impl From<&Preset> for CatalogEntry {
    fn from(preset: &Preset) -> Self {
        Self {
            slug: preset.slug.to_owned(),
            name: preset.name.to_owned(),
            description: preset.description.to_owned(),
            url_template: preset.url_template.to_owned(),
            auth: match preset.auth {
                presets::AuthKind::None => CatalogAuth::None,
                presets::AuthKind::Headers => CatalogAuth::Headers,
                presets::AuthKind::Oauth => CatalogAuth::Oauth,
            },
            headers: preset
                .headers
                .iter()
                .map(|header| CatalogHeader {
                    name: header.name.to_owned(),
                    description: header.description.to_owned(),
                    required: header.required,
                })
                .collect(),
            variables: preset
                .variables
                .iter()
                .map(|variable| CatalogVariable {
                    name: variable.name.to_owned(),
                    description: variable.description.to_owned(),
                })
                .collect(),
            available: preset.auth != presets::AuthKind::Oauth,
            documentation_url: preset.documentation_url.to_owned(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CatalogList {
    pub data: Vec<CatalogEntry>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CatalogPath {
    /// The entry's slug.
    #[param(min_length = 1, max_length = 64)]
    pub slug: String,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_catalog)).routes(routes!(get_catalog_entry))
}

#[utoipa::path(get, path = "/v1/catalog", tag = "tools",
    responses((status = 200, description = "Every preset, by slug.", body = CatalogList)))]
async fn list_catalog(_caller: Authorized<scopes::ToolsRead>) -> ApiResult<axum::Json<CatalogList>> {
    Ok(axum::Json(CatalogList { data: presets::PRESETS.iter().map(Into::into).collect() }))
}

#[utoipa::path(get, path = "/v1/catalog/{slug}", tag = "tools", params(CatalogPath),
    responses((status = 200, description = "One preset.", body = CatalogEntry)))]
async fn get_catalog_entry(
    _caller: Authorized<scopes::ToolsRead>,
    Path(CatalogPath { slug }): Path<CatalogPath>,
) -> ApiResult<axum::Json<CatalogEntry>> {
    let preset =
        presets::find(&slug).ok_or_else(|| Error::not_found("catalog_entry_not_found", "catalog entry", &slug))?;
    Ok(axum::Json(preset.into()))
}
