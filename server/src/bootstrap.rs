//! First start: an organization, a default project with its default agent, an org key and a
//! tenant-admin token. Operators may choose those two secrets (INGRAM_ORG_KEY,
//! INGRAM_ADMIN_TOKEN); the server then makes sure exactly they exist.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder,
};

use crate::auth::{TokenKind, secret};
use crate::domain::{projects, tokens};
use crate::error::ApiResult;
use crate::ids::{IdKind, new_id};
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
    pub organization_id: String,
    pub project_id: String,
    pub created: bool,
    pub new_org_key: Option<String>,
    pub new_admin_token: Option<String>,
}

pub async fn ensure(db: &DatabaseConnection, chosen: Chosen) -> ApiResult<Bootstrapped> {
    let existing = organization::Entity::find().order_by_asc(organization::Column::Id).one(db).await?;
    let created = existing.is_none();
    let organization = match existing {
        Some(organization) => organization,
        None => {
            organization::ActiveModel {
                id: Set(new_id(IdKind::Organization)),
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
    organization_id: &str,
    project_id: Option<&str>,
    secret: Option<String>,
) -> ApiResult<String> {
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

/// Makes the operator's chosen secret a live token of this kind, reinstating it if revoked.
async fn ensure_secret(
    db: &DatabaseConnection,
    kind: TokenKind,
    organization_id: &str,
    project_id: Option<&str>,
    chosen: String,
) -> ApiResult<()> {
    let existing = token::Entity::find().filter(token::Column::SecretHash.eq(secret::hash(&chosen))).one(db).await?;
    match existing {
        Some(record) if record.kind == kind.as_str() && record.project_id.as_deref() == project_id => {
            if record.revoked_at.is_some() {
                let mut record = record.into_active_model();
                record.revoked_at = Set(None);
                record.update(db).await?;
            }
        }
        Some(record) => {
            // The same secret may not name two principals: re-point it at what the operator chose.
            let mut record = record.into_active_model();
            record.kind = Set(kind.as_str().to_owned());
            record.organization_id = Set(organization_id.to_owned());
            record.project_id = Set(project_id.map(str::to_owned));
            record.smith_id = Set(None);
            record.scopes = Set(None);
            record.revoked_at = Set(None);
            record.update(db).await?;
        }
        None => {
            mint(db, kind, organization_id, project_id, Some(chosen)).await?;
        }
    }
    Ok(())
}
