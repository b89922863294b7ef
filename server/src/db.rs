//! Connecting to SQLite or PostgreSQL and bringing the schema up to date.

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://ingram.db?mode=rwc";

pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options.sqlx_logging(false);
    if url.starts_with("postgres") {
        options.max_connections(16);
    } else {
        // WAL lets readers run beside the writer, and with synchronous=NORMAL a commit is
        // not an fsync: it survives a crash of the server, and a power loss may undo the
        // last commits but never corrupts the file (docs/decisions.md).
        options.map_sqlx_sqlite_opts(|sqlite| {
            sqlite.journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Normal)
        });
    }
    let db = Database::connect(options).await?;
    Migrator::up(&db, None).await?;
    Ok(db)
}
