//! Files inlined into conversations (images and documents sent as data URLs or base64).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Files {
    Table,
    Id,
    ProjectId,
    SmithId,
    Filename,
    MediaType,
    Bytes,
    Sha256,
    Data,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Files::Table)
                    .col(string(Files::Id).primary_key())
                    .col(string(Files::ProjectId))
                    .col(string(Files::SmithId))
                    .col(string(Files::Filename))
                    .col(string(Files::MediaType))
                    .col(big_integer(Files::Bytes))
                    .col(string(Files::Sha256))
                    .col(blob(Files::Data))
                    .col(timestamp_with_time_zone(Files::CreatedAt))
                    .to_owned(),
            )
            .await?;
        // The same content sent again by the same smith is stored once.
        manager
            .create_index(
                Index::create()
                    .name("files_smith_content")
                    .table(Files::Table)
                    .col(Files::SmithId)
                    .col(Files::Sha256)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Files::Table).to_owned()).await
    }
}
