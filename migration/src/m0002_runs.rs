//! Runs, their persisted events, and projects' model keys.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Runs {
    Table,
    Id,
    ProjectId,
    SmithId,
    ThreadId,
    /// `thread_id` while the run holds its thread (queued to start, running, paused), else
    /// NULL: the unique index on (smith_id, active_thread_id) allows one active run per thread.
    ActiveThreadId,
    Status,
    Input,
    Transcript,
    Output,
    Usage,
    Error,
    RequiredAction,
    Config,
    ClientTools,
    Metadata,
    StopReason,
    ReplayOf,
    CancelRequested,
    LeaseOwner,
    LeaseUntil,
    LastSeq,
    CreatedAt,
    StartedAt,
    CompletedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RunEvents {
    Table,
    RunId,
    Seq,
    Kind,
    Data,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ModelKeys {
    Table,
    ProjectId,
    Provider,
    Ciphertext,
    BaseUrl,
    Preview,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Runs::Table)
                    .col(string(Runs::Id).primary_key())
                    .col(string(Runs::ProjectId))
                    .col(string(Runs::SmithId))
                    .col(string(Runs::ThreadId))
                    .col(string_null(Runs::ActiveThreadId))
                    .col(string(Runs::Status))
                    .col(json_binary(Runs::Input))
                    .col(json_binary(Runs::Transcript))
                    .col(json_binary_null(Runs::Output))
                    .col(json_binary_null(Runs::Usage))
                    .col(json_binary_null(Runs::Error))
                    .col(json_binary_null(Runs::RequiredAction))
                    .col(json_binary(Runs::Config))
                    .col(json_binary(Runs::ClientTools))
                    .col(json_binary_null(Runs::Metadata))
                    .col(string_null(Runs::StopReason))
                    .col(string_null(Runs::ReplayOf))
                    .col(boolean(Runs::CancelRequested))
                    .col(string_null(Runs::LeaseOwner))
                    .col(timestamp_with_time_zone_null(Runs::LeaseUntil))
                    .col(integer(Runs::LastSeq))
                    .col(timestamp_with_time_zone(Runs::CreatedAt))
                    .col(timestamp_with_time_zone_null(Runs::StartedAt))
                    .col(timestamp_with_time_zone_null(Runs::CompletedAt))
                    .col(timestamp_with_time_zone(Runs::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        let indexes = [
            Index::create()
                .name("runs_active_thread")
                .table(Runs::Table)
                .col(Runs::SmithId)
                .col(Runs::ActiveThreadId)
                .unique()
                .to_owned(),
            Index::create().name("runs_project").table(Runs::Table).col(Runs::ProjectId).col(Runs::Id).to_owned(),
            Index::create()
                .name("runs_thread")
                .table(Runs::Table)
                .col(Runs::SmithId)
                .col(Runs::ThreadId)
                .col(Runs::Id)
                .to_owned(),
            Index::create().name("runs_status").table(Runs::Table).col(Runs::Status).to_owned(),
        ];
        for index in indexes {
            manager.create_index(index).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(RunEvents::Table)
                    .col(string(RunEvents::RunId))
                    .col(integer(RunEvents::Seq))
                    .col(string(RunEvents::Kind))
                    .col(text(RunEvents::Data))
                    .col(timestamp_with_time_zone(RunEvents::CreatedAt))
                    .primary_key(Index::create().col(RunEvents::RunId).col(RunEvents::Seq))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ModelKeys::Table)
                    .col(string(ModelKeys::ProjectId))
                    .col(string(ModelKeys::Provider))
                    .col(text(ModelKeys::Ciphertext))
                    .col(string_null(ModelKeys::BaseUrl))
                    .col(string(ModelKeys::Preview))
                    .col(timestamp_with_time_zone(ModelKeys::CreatedAt))
                    .col(timestamp_with_time_zone(ModelKeys::UpdatedAt))
                    .primary_key(Index::create().col(ModelKeys::ProjectId).col(ModelKeys::Provider))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [ModelKeys::Table.into_iden(), RunEvents::Table.into_iden(), Runs::Table.into_iden()] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
