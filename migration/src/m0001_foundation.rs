//! Organizations, projects, tokens, agents, smiths with their config revisions, idempotency keys.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Projects {
    Table,
    Id,
    OrganizationId,
    Name,
    DefaultAgentId,
    CreatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Tokens {
    Table,
    Id,
    Kind,
    OrganizationId,
    ProjectId,
    SmithId,
    Name,
    Scopes,
    SecretHash,
    Preview,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Agents {
    Table,
    Id,
    ProjectId,
    Name,
    Instructions,
    Model,
    Tools,
    AutoMemory,
    IsDefault,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Smiths {
    Table,
    Id,
    ProjectId,
    AgentId,
    ExternalId,
    /// `external_id` while the smith is live, NULL once deleted: the unique index on it keeps
    /// one live smith per (project, agent, external_id) and frees the id on deletion.
    LiveExternalId,
    CustomerId,
    DisplayName,
    Metadata,
    Overrides,
    Revision,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum SmithRevisions {
    Table,
    SmithId,
    Number,
    AgentId,
    Overrides,
    RestoredFrom,
    CreatedAt,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Scope,
    Key,
    RequestHash,
    ResponseStatus,
    ResponseBody,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Organizations::Table)
                    .col(string(Organizations::Id).primary_key())
                    .col(string(Organizations::Name))
                    .col(timestamp_with_time_zone(Organizations::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Projects::Table)
                    .col(string(Projects::Id).primary_key())
                    .col(string(Projects::OrganizationId))
                    .col(string(Projects::Name))
                    .col(string_null(Projects::DefaultAgentId))
                    .col(timestamp_with_time_zone(Projects::CreatedAt))
                    .col(timestamp_with_time_zone_null(Projects::DeletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Projects::Table, Projects::OrganizationId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Tokens::Table)
                    .col(string(Tokens::Id).primary_key())
                    .col(string(Tokens::Kind))
                    .col(string(Tokens::OrganizationId))
                    .col(string_null(Tokens::ProjectId))
                    .col(string_null(Tokens::SmithId))
                    .col(string_null(Tokens::Name))
                    .col(json_binary_null(Tokens::Scopes))
                    .col(string_uniq(Tokens::SecretHash))
                    .col(string(Tokens::Preview))
                    .col(timestamp_with_time_zone(Tokens::CreatedAt))
                    .col(timestamp_with_time_zone_null(Tokens::RevokedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Agents::Table)
                    .col(string(Agents::Id).primary_key())
                    .col(string(Agents::ProjectId))
                    .col(string(Agents::Name))
                    .col(text_null(Agents::Instructions))
                    .col(string(Agents::Model))
                    .col(json_binary(Agents::Tools))
                    .col(boolean(Agents::AutoMemory))
                    .col(boolean(Agents::IsDefault))
                    .col(timestamp_with_time_zone(Agents::CreatedAt))
                    .col(timestamp_with_time_zone(Agents::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Agents::DeletedAt))
                    .foreign_key(
                        ForeignKey::create().from(Agents::Table, Agents::ProjectId).to(Projects::Table, Projects::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Smiths::Table)
                    .col(string(Smiths::Id).primary_key())
                    .col(string(Smiths::ProjectId))
                    .col(string(Smiths::AgentId))
                    .col(string(Smiths::ExternalId))
                    .col(string_null(Smiths::LiveExternalId))
                    .col(string_null(Smiths::CustomerId))
                    .col(string_null(Smiths::DisplayName))
                    .col(json_binary_null(Smiths::Metadata))
                    .col(json_binary(Smiths::Overrides))
                    .col(integer(Smiths::Revision))
                    .col(timestamp_with_time_zone(Smiths::CreatedAt))
                    .col(timestamp_with_time_zone(Smiths::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Smiths::DeletedAt))
                    .foreign_key(
                        ForeignKey::create().from(Smiths::Table, Smiths::ProjectId).to(Projects::Table, Projects::Id),
                    )
                    .foreign_key(
                        ForeignKey::create().from(Smiths::Table, Smiths::AgentId).to(Agents::Table, Agents::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("smiths_live_external_id")
                    .table(Smiths::Table)
                    .col(Smiths::ProjectId)
                    .col(Smiths::AgentId)
                    .col(Smiths::LiveExternalId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("smiths_project_external_id")
                    .table(Smiths::Table)
                    .col(Smiths::ProjectId)
                    .col(Smiths::ExternalId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SmithRevisions::Table)
                    .col(string(SmithRevisions::SmithId))
                    .col(integer(SmithRevisions::Number))
                    .col(string(SmithRevisions::AgentId))
                    .col(json_binary(SmithRevisions::Overrides))
                    .col(integer_null(SmithRevisions::RestoredFrom))
                    .col(timestamp_with_time_zone(SmithRevisions::CreatedAt))
                    .primary_key(Index::create().col(SmithRevisions::SmithId).col(SmithRevisions::Number))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SmithRevisions::Table, SmithRevisions::SmithId)
                            .to(Smiths::Table, Smiths::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(string(IdempotencyKeys::Scope))
                    .col(string(IdempotencyKeys::Key))
                    .col(string(IdempotencyKeys::RequestHash))
                    .col(integer_null(IdempotencyKeys::ResponseStatus))
                    .col(text_null(IdempotencyKeys::ResponseBody))
                    .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                    .primary_key(Index::create().col(IdempotencyKeys::Scope).col(IdempotencyKeys::Key))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            IdempotencyKeys::Table.into_iden(),
            SmithRevisions::Table.into_iden(),
            Smiths::Table.into_iden(),
            Agents::Table.into_iden(),
            Tokens::Table.into_iden(),
            Projects::Table.into_iden(),
            Organizations::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
