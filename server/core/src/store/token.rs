use sea_orm::entity::prelude::*;

use crate::ids::{OrganizationId, ProjectId, SmithId, TokenId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: TokenId,
    pub kind: TokenKind,
    pub organization_id: OrganizationId,
    pub project_id: Option<ProjectId>,
    pub smith_id: Option<SmithId>,
    pub name: Option<String>,
    /// A JSON array of scope names; NULL means every scope the kind allows.
    pub scopes: Option<Json>,
    /// SHA-256 of the secret, hex. The secret itself is never stored.
    #[sea_orm(unique)]
    pub secret_hash: String,
    /// The first characters of the secret, enough for a person to recognise it.
    pub preview: String,
    pub created_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
}

/// What a token is for; stored as its snake_case name (a row with another value fails to load).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, EnumIter, DeriveActiveEnum)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)", rename_all = "snake_case")]
pub enum TokenKind {
    Org,
    TenantAdmin,
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
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Revokes every live token matching `column = value` (a project's or a smith's, as they are
/// deleted).
pub async fn revoke_all(db: &impl ConnectionTrait, column: Column, value: &str) -> Result<u64, DbErr> {
    let revoked = Entity::update_many()
        .col_expr(Column::RevokedAt, Some(super::now()).into())
        .filter(column.eq(value))
        .filter(Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(revoked.rows_affected)
}
