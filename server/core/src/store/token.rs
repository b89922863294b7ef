use sea_orm::entity::prelude::*;

use crate::ids::{OrganizationId, ProjectId, SmithId, TokenId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: TokenId,
    /// `org`, `tenant_admin` or `smith`.
    pub kind: String,
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
