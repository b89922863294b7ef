//! First start: an organization, a default project with its default agent, an org key and a
//! tenant-admin token. Operators may choose those two secrets (INGRAM_ORG_KEY,
//! INGRAM_ADMIN_TOKEN); the server creates each once, for the organization and the project
//! live at that moment, and never re-points or reinstates it afterwards.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
};

use crate::auth::{TokenKind, secret};
use crate::domain::{projects, tokens};
use crate::error::{Error, Result};
use crate::ids::{OrganizationId, ProjectId};
use crate::store::{now, organization, token};

/// No `Debug`: it carries secrets.
#[derive(Default)]
pub struct Chosen {
    pub org_key: Option<String>,
    pub admin_token: Option<String>,
}

/// What bootstrapping made; secrets are present only when generated here, to print once.
/// No `Debug`: it carries secrets.
pub struct Bootstrapped {
    pub organization_id: OrganizationId,
    pub project_id: ProjectId,
    pub created: bool,
    pub new_org_key: Option<String>,
    pub new_admin_token: Option<String>,
}

pub async fn ensure(db: &DatabaseConnection, chosen: Chosen) -> Result<Bootstrapped> {
    let existing = organization::Entity::find().order_by_asc(organization::Column::Id).one(db).await?;
    let created = existing.is_none();
    let organization = match existing {
        Some(organization) => organization,
        None => {
            organization::ActiveModel {
                id: Set(OrganizationId::generate()),
                name: Set("Default organization".into()),
                created_at: Set(now()),
            }
            .insert(db)
            .await?
        }
    };
    let project = match projects::first_live(db).await? {
        Some(project) => project,
        None => projects::create(db, &organization.id, "Default project").await?,
    };

    let mut result = Bootstrapped {
        organization_id: organization.id.clone(),
        project_id: project.id.clone(),
        created,
        new_org_key: None,
        new_admin_token: None,
    };
    match chosen.org_key {
        Some(secret) => ensure_secret(db, TokenKind::Org, &organization.id, None, secret).await?,
        None if created => {
            let minted = mint(db, TokenKind::Org, &organization.id, None, None).await?;
            result.new_org_key = Some(minted);
        }
        None => {}
    }
    match chosen.admin_token {
        Some(secret) => ensure_secret(db, TokenKind::TenantAdmin, &organization.id, Some(&project.id), secret).await?,
        None if created => {
            let minted = mint(db, TokenKind::TenantAdmin, &organization.id, Some(&project.id), None).await?;
            result.new_admin_token = Some(minted);
        }
        None => {}
    }
    Ok(result)
}

async fn mint(
    db: &DatabaseConnection,
    kind: TokenKind,
    organization_id: &OrganizationId,
    project_id: Option<&ProjectId>,
    secret: Option<String>,
) -> Result<String> {
    let minted = tokens::mint(
        db,
        tokens::Mint {
            kind,
            organization_id,
            project_id,
            smith_id: None,
            name: Some("bootstrap".into()),
            scopes: None,
            secret,
        },
    )
    .await?;
    Ok(minted.secret)
}

/// Makes the operator's chosen secret a token of this kind, once. A restart never moves it to
/// another project nor un-revokes it (a revoked one stays revoked, with a warning); a secret
/// that already names a token of another kind or organization stops the server.
async fn ensure_secret(
    db: &DatabaseConnection,
    kind: TokenKind,
    organization_id: &OrganizationId,
    project_id: Option<&ProjectId>,
    chosen: String,
) -> Result<()> {
    let variable = match kind {
        TokenKind::Org => "INGRAM_ORG_KEY",
        _ => "INGRAM_ADMIN_TOKEN",
    };
    let existing = token::Entity::find().filter(token::Column::SecretHash.eq(secret::hash(&chosen))).one(db).await?;
    match existing {
        None => {
            mint(db, kind, organization_id, project_id, Some(chosen)).await?;
        }
        Some(record) if record.kind != kind || record.organization_id != *organization_id => {
            return Err(Error::conflict(
                "bootstrap_secret_conflict",
                format!(
                    "{variable} is already the secret of token {} ({}); it will not be changed. Choose another secret for {variable}.",
                    record.id,
                    record.kind.as_str()
                ),
            ));
        }
        Some(record) if record.revoked_at.is_some() => {
            tracing::warn!(
                token_id = %record.id,
                "{variable} names a revoked token; it stays revoked. Unset {variable} or choose a new secret."
            );
        }
        Some(_) => {}
    }
    Ok(())
}
