//! Projects' own provider keys (BYOK), sealed at rest, and the server-wide fallback.

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::cache::{Caches, Invalidation};
use crate::crypto::SealContext;
use crate::error::{Error, Result};
use crate::ids::ProjectId;
use crate::providers::Endpoint;
use crate::providers::routing::ProviderKind;
use crate::settings::Settings;
use crate::store::{model_key, now};

/// Where a provider's key comes from for a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    Project,
    Server,
}

pub async fn put(
    db: &DatabaseConnection,
    caches: &Caches,
    settings: &Settings,
    project_id: &ProjectId,
    provider: ProviderKind,
    api_key: &str,
    base_url: Option<String>,
) -> Result<model_key::Model> {
    let preview = crate::crypto::preview(api_key);
    let at = now();
    let row = model_key::ActiveModel {
        project_id: Set(project_id.clone()),
        provider: Set(provider),
        ciphertext: Set(settings.master_key.seal(api_key, sealing(project_id.as_str(), provider))),
        base_url: Set(base_url),
        preview: Set(preview),
        created_at: Set(at),
        updated_at: Set(at),
    };
    model_key::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([model_key::Column::ProjectId, model_key::Column::Provider])
                .update_columns([
                    model_key::Column::Ciphertext,
                    model_key::Column::BaseUrl,
                    model_key::Column::Preview,
                    model_key::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    caches.invalidate(db, Invalidation::ModelKey(project_id.clone(), provider)).await;
    get(db, project_id, provider).await?.ok_or_else(|| Error::internal("A stored model key vanished."))
}

pub async fn get(
    db: &impl ConnectionTrait,
    project_id: &ProjectId,
    provider: ProviderKind,
) -> Result<Option<model_key::Model>> {
    Ok(model_key::Entity::find_by_id((project_id.clone(), provider)).limit(1).all(db).await?.pop())
}

pub async fn list(db: &impl ConnectionTrait, project_id: &ProjectId) -> Result<Vec<model_key::Model>> {
    Ok(model_key::Entity::find()
        .filter(model_key::Column::ProjectId.eq(project_id))
        .order_by_asc(model_key::Column::Provider)
        .all(db)
        .await?)
}

pub async fn delete(
    db: &DatabaseConnection,
    caches: &Caches,
    project_id: &ProjectId,
    provider: ProviderKind,
) -> Result<()> {
    let deleted = model_key::Entity::delete_by_id((project_id.clone(), provider)).exec(db).await?;
    caches.invalidate(db, Invalidation::ModelKey(project_id.clone(), provider)).await;
    if deleted.rows_affected == 0 {
        return Err(Error::not_found("model_key_not_found", "model key for provider", provider.as_str()));
    }
    Ok(())
}

/// The endpoint a project's runs on `provider` use, from the cache or the database.
pub async fn cached_endpoint(
    db: &impl ConnectionTrait,
    caches: &Caches,
    settings: &Settings,
    project_id: &ProjectId,
    provider: ProviderKind,
) -> Result<Option<(Endpoint, KeySource)>> {
    let key = (project_id.clone(), provider);
    let stored = match caches.model_keys().get(&key) {
        Ok(stored) => stored,
        Err(generation) => {
            let stored = get(db, project_id, provider).await?;
            caches.model_keys().insert(generation, key, stored.clone());
            stored
        }
    };
    endpoint_of(settings, project_id, provider, stored)
}

/// The endpoint a project's runs on `provider` use: its own key first, then the server's.
pub async fn endpoint(
    db: &impl ConnectionTrait,
    settings: &Settings,
    project_id: &ProjectId,
    provider: ProviderKind,
) -> Result<Option<(Endpoint, KeySource)>> {
    endpoint_of(settings, project_id, provider, get(db, project_id, provider).await?)
}

fn endpoint_of(
    settings: &Settings,
    project_id: &ProjectId,
    provider: ProviderKind,
    stored: Option<model_key::Model>,
) -> Result<Option<(Endpoint, KeySource)>> {
    if let Some(stored) = stored {
        let api_key = settings
            .master_key
            .open(&stored.ciphertext, sealing(project_id.as_str(), provider))
            .ok_or_else(|| Error::internal("A stored model key cannot be opened with this server's master key."))?;
        let base_url = stored.base_url.unwrap_or_else(|| provider.default_base_url().to_owned());
        return Ok(Some((Endpoint { base_url, api_key, trusted: false }, KeySource::Project)));
    }
    Ok(settings
        .fallback_keys
        .iter()
        .find(|(kind, _)| *kind == provider)
        .map(|(_, endpoint)| (endpoint.clone(), KeySource::Server)))
}

/// A provider key is bound to its project and provider: a ciphertext moved to another row
/// does not open.
fn sealing<'a>(project_id: &'a str, provider: ProviderKind) -> SealContext<'a> {
    SealContext::ModelKey { project_id, provider: provider.as_str() }
}
