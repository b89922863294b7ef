//! Human approvals: each gated tool call a run waits on, bound to the exact call (run, tool,
//! arguments and their hash); and `tool_approvals` on agents (smiths keep theirs in their
//! overrides).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Agents {
    Table,
    ToolApprovals,
}

#[derive(DeriveIden)]
enum Approvals {
    Table,
    Id,
    ProjectId,
    SmithId,
    RunId,
    ToolCallId,
    Tool,
    Arguments,
    ArgumentsSha256,
    Status,
    Reason,
    DecidedArguments,
    DecidedAt,
    CreatedAt,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(Agents::Table).add_column(json_binary_null(Agents::ToolApprovals)).to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Approvals::Table)
                    .col(string(Approvals::Id).primary_key())
                    .col(string(Approvals::ProjectId))
                    .col(string(Approvals::SmithId))
                    .col(string(Approvals::RunId))
                    .col(string(Approvals::ToolCallId))
                    .col(string(Approvals::Tool))
                    .col(text(Approvals::Arguments))
                    .col(string(Approvals::ArgumentsSha256))
                    .col(string(Approvals::Status))
                    .col(text_null(Approvals::Reason))
                    .col(text_null(Approvals::DecidedArguments))
                    .col(timestamp_with_time_zone_null(Approvals::DecidedAt))
                    .col(timestamp_with_time_zone(Approvals::CreatedAt))
                    .col(timestamp_with_time_zone(Approvals::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("approvals_project", vec![Approvals::ProjectId, Approvals::Id]),
            ("approvals_run", vec![Approvals::RunId, Approvals::Id]),
            ("approvals_due", vec![Approvals::Status, Approvals::ExpiresAt]),
        ] {
            let mut index = Index::create().name(name).table(Approvals::Table).to_owned();
            for column in columns {
                index.col(column);
            }
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Approvals::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(Agents::Table).drop_column(Agents::ToolApprovals).to_owned()).await
    }
}
