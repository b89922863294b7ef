//! Idempotency keys belong to the token that used them, hold their claim with a renewed
//! lease, and keep their answers sealed. Entries written before are dropped: they were
//! scoped per project and stored in clear, and are only a 48-hour replay cache.
//! Agents may bound the models runs ask for (`allowed_models`); runs count their working time
//! against a deadline (`worked_ms`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    ClaimId,
    LeaseUntil,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    WorkedMs,
}

#[derive(DeriveIden)]
enum Agents {
    Table,
    AllowedModels,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.exec_stmt(Query::delete().from_table(IdempotencyKeys::Table).to_owned()).await?;
        // One column per statement: SQLite alters a table one change at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(IdempotencyKeys::Table)
                    .add_column(string_null(IdempotencyKeys::ClaimId))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(IdempotencyKeys::Table)
                    .add_column(timestamp_with_time_zone_null(IdempotencyKeys::LeaseUntil))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter().table(Agents::Table).add_column(json_binary_null(Agents::AllowedModels)).to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter().table(Runs::Table).add_column(big_integer(Runs::WorkedMs).default(0)).to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Runs::Table).drop_column(Runs::WorkedMs).to_owned()).await?;
        manager.alter_table(Table::alter().table(Agents::Table).drop_column(Agents::AllowedModels).to_owned()).await?;
        for column in [IdempotencyKeys::ClaimId, IdempotencyKeys::LeaseUntil] {
            manager.alter_table(Table::alter().table(IdempotencyKeys::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
