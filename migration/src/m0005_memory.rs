//! Memory: each smith's blocks (labelled text always in its context) and memories (facts,
//! searchable by words, and by meaning where the project configured embeddings); the counts
//! on the smith that let a run with no memory skip it; what extracting memories cost; and the
//! blocks an agent declares.
//!
//! Word search differs by database, behind the same query: an FTS5 table on SQLite (kept in
//! step by triggers), a generated `tsvector` with a GIN index on PostgreSQL.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Agents {
    Table,
    MemoryBlocks,
}

#[derive(DeriveIden)]
enum Smiths {
    Table,
    MemoryCount,
    BlockCount,
}

#[derive(DeriveIden)]
enum MemoryBlocks {
    Table,
    SmithId,
    Label,
    ProjectId,
    Value,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Memories {
    Table,
    Id,
    ProjectId,
    SmithId,
    Text,
    Metadata,
    Source,
    Fingerprint,
    Embedding,
    EmbeddingModel,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum EmbeddingSettings {
    Table,
    ProjectId,
    BaseUrl,
    Model,
    Dimensions,
    Ciphertext,
    Preview,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum UsageRecords {
    Table,
    Id,
    ProjectId,
    SmithId,
    RunId,
    Purpose,
    Model,
    InputTokens,
    OutputTokens,
    CostUsd,
    CreatedAt,
}

/// SQLite: the FTS5 index keeps its own copy of the text under its own rowid, which the
/// memory row records in `search_rowid` (a table's implicit rowid may change on VACUUM; this
/// one does not). The smith's id (its ULID and a trailing `0`, which the Porter stemmer leaves
/// whole) is a column of the index, so a search matches within one smith inside the index.
/// Diacritics are kept, as PostgreSQL's `english` configuration keeps them.
const SQLITE_SEARCH: &[&str] = &[
    "ALTER TABLE memories ADD COLUMN search_rowid INTEGER",
    "CREATE UNIQUE INDEX memories_search_rowid ON memories (search_rowid)",
    "CREATE VIRTUAL TABLE memories_fts USING fts5(text, owner, tokenize = 'porter unicode61 remove_diacritics 0')",
    "CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
        INSERT INTO memories_fts (text, owner) VALUES (new.text, substr(new.smith_id, 5) || '0');
        UPDATE memories SET search_rowid = last_insert_rowid() WHERE id = new.id;
    END",
    "CREATE TRIGGER memories_fts_update AFTER UPDATE OF text ON memories BEGIN
        UPDATE memories_fts SET text = new.text WHERE rowid = old.search_rowid;
    END",
    "CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN
        DELETE FROM memories_fts WHERE rowid = old.search_rowid;
    END",
];

/// PostgreSQL: English stemming, the two-argument `to_tsvector` (the one-argument form is not
/// immutable, so it cannot be generated).
const POSTGRES_SEARCH: &[&str] = &[
    "ALTER TABLE memories ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED",
    "CREATE INDEX memories_search_tsv ON memories USING GIN (search_tsv)",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(Agents::Table).add_column(json_binary_null(Agents::MemoryBlocks)).to_owned(),
            )
            .await?;
        for column in [Smiths::MemoryCount, Smiths::BlockCount] {
            manager
                .alter_table(Table::alter().table(Smiths::Table).add_column(integer(column).default(0)).to_owned())
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(MemoryBlocks::Table)
                    .col(string(MemoryBlocks::SmithId))
                    .col(string(MemoryBlocks::Label))
                    .col(string(MemoryBlocks::ProjectId))
                    .col(text(MemoryBlocks::Value))
                    .col(timestamp_with_time_zone(MemoryBlocks::UpdatedAt))
                    .primary_key(Index::create().col(MemoryBlocks::SmithId).col(MemoryBlocks::Label))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Memories::Table)
                    .col(string(Memories::Id).primary_key())
                    .col(string(Memories::ProjectId))
                    .col(string(Memories::SmithId))
                    .col(text(Memories::Text))
                    .col(json_binary_null(Memories::Metadata))
                    .col(string(Memories::Source))
                    .col(string(Memories::Fingerprint))
                    .col(blob_null(Memories::Embedding))
                    .col(string_null(Memories::EmbeddingModel))
                    .col(timestamp_with_time_zone(Memories::CreatedAt))
                    .col(timestamp_with_time_zone(Memories::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("memories_smith")
                    .table(Memories::Table)
                    .col(Memories::SmithId)
                    .col(Memories::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("memories_smith_fingerprint")
                    .table(Memories::Table)
                    .col(Memories::SmithId)
                    .col(Memories::Fingerprint)
                    .to_owned(),
            )
            .await?;
        let search = match manager.get_database_backend() {
            DbBackend::Sqlite => SQLITE_SEARCH,
            _ => POSTGRES_SEARCH,
        };
        for statement in search {
            manager.get_connection().execute_unprepared(statement).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(EmbeddingSettings::Table)
                    .col(string(EmbeddingSettings::ProjectId).primary_key())
                    .col(string(EmbeddingSettings::BaseUrl))
                    .col(string(EmbeddingSettings::Model))
                    .col(integer_null(EmbeddingSettings::Dimensions))
                    .col(text(EmbeddingSettings::Ciphertext))
                    .col(string(EmbeddingSettings::Preview))
                    .col(timestamp_with_time_zone(EmbeddingSettings::CreatedAt))
                    .col(timestamp_with_time_zone(EmbeddingSettings::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UsageRecords::Table)
                    .col(string(UsageRecords::Id).primary_key())
                    .col(string(UsageRecords::ProjectId))
                    .col(string(UsageRecords::SmithId))
                    .col(string_null(UsageRecords::RunId))
                    .col(string(UsageRecords::Purpose))
                    .col(string(UsageRecords::Model))
                    .col(big_integer(UsageRecords::InputTokens))
                    .col(big_integer(UsageRecords::OutputTokens))
                    .col(double_null(UsageRecords::CostUsd))
                    .col(timestamp_with_time_zone(UsageRecords::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("usage_records_project")
                    .table(UsageRecords::Table)
                    .col(UsageRecords::ProjectId)
                    .col(UsageRecords::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Sqlite {
            manager.get_connection().execute_unprepared("DROP TABLE IF EXISTS memories_fts").await?;
        }
        for table in [
            UsageRecords::Table.into_iden(),
            EmbeddingSettings::Table.into_iden(),
            Memories::Table.into_iden(),
            MemoryBlocks::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        for column in [Smiths::MemoryCount, Smiths::BlockCount] {
            manager.alter_table(Table::alter().table(Smiths::Table).drop_column(column).to_owned()).await?;
        }
        manager.alter_table(Table::alter().table(Agents::Table).drop_column(Agents::MemoryBlocks).to_owned()).await
    }
}
