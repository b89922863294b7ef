use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    /// The token that used the key: a stored answer is replayed to that token only.
    #[sea_orm(primary_key, auto_increment = false)]
    pub scope: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// SHA-256 over method, path and body of the first request.
    pub request_hash: String,
    /// NULL while the first request is still being answered.
    pub response_status: Option<i32>,
    /// The answer, sealed with the master key (crate::crypto), bound to scope and key.
    #[sea_orm(column_type = "Text", nullable)]
    pub response_body: Option<String>,
    /// The request holding the key while it is answered.
    pub claim_id: Option<String>,
    /// Until when that claim holds without renewal.
    pub lease_until: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
