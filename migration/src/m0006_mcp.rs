//! MCP servers a project registered: where they are, their sealed headers, and the tools they
//! listed when last asked (which is what runs resolve `mcp/…` references against).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum McpServers {
    Table,
    ProjectId,
    Name,
    Url,
    Description,
    Catalog,
    HeaderNames,
    HeadersCiphertext,
    Tools,
    ProtocolVersion,
    ErrorCode,
    ErrorMessage,
    RefreshedAt,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(McpServers::Table)
                    .col(string(McpServers::ProjectId))
                    .col(string(McpServers::Name))
                    .col(string(McpServers::Url))
                    .col(text_null(McpServers::Description))
                    .col(string_null(McpServers::Catalog))
                    .col(json_binary(McpServers::HeaderNames))
                    .col(text_null(McpServers::HeadersCiphertext))
                    .col(json_binary(McpServers::Tools))
                    .col(string_null(McpServers::ProtocolVersion))
                    .col(string_null(McpServers::ErrorCode))
                    .col(text_null(McpServers::ErrorMessage))
                    .col(timestamp_with_time_zone_null(McpServers::RefreshedAt))
                    .col(timestamp_with_time_zone(McpServers::CreatedAt))
                    .col(timestamp_with_time_zone(McpServers::UpdatedAt))
                    .primary_key(Index::create().col(McpServers::ProjectId).col(McpServers::Name))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(McpServers::Table).to_owned()).await
    }
}
