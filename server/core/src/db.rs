//! Connecting to SQLite or PostgreSQL and bringing the schema up to date.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://ingram.db?mode=rwc";

/// WAL pages past which a commit on the pool's connections checkpoints by itself (64 MiB);
/// the run store's checkpointer keeps the WAL well below that.
const WAL_AUTOCHECKPOINT_PAGES: &str = "16384";
/// What the WAL file is truncated back to after a checkpoint.
const WAL_SIZE_LIMIT_BYTES: &str = "67108864";
/// The pool's connections on SQLite: reads run beside each other and beside the run store's
/// writer (WAL); writes outside the run path are rare and wait for SQLite's lock.
const SQLITE_CONNECTIONS: u32 = 4;

/// Creates a new SQLite database file readable by its owner only, before SQLite does; its
/// WAL and shared-memory files take the same permissions.
fn create_private(url: &str) -> anyhow::Result<()> {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path == ":memory:" || std::path::Path::new(path).exists() {
        return Ok(());
    }
    match crate::crypto::write_private(std::path::Path::new(path), "") {
        Ok(()) => Ok(()),
        // Created meanwhile by another process: it is that one's to create.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(anyhow::anyhow!("creating {path}: {err}")),
    }
}

pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options.sqlx_logging(false);
    if url.starts_with("postgres") {
        // sqlx pings every connection it hands out, a round trip per statement; ping only
        // those idle long enough that the server or a proxy may have dropped them.
        options.max_connections(16).test_before_acquire_if_idle_for(Duration::from_secs(30));
    } else {
        create_private(url)?;
        // A file cannot hang up: no ping before each statement.
        options.test_before_acquire(false).max_connections(SQLITE_CONNECTIONS).min_connections(1);
        // WAL lets readers run beside the writer, and with synchronous=NORMAL a commit is
        // not an fsync: it survives a crash of the server, and a power loss may undo the
        // last commits but never corrupts the file (docs/runs.md). Checkpoints, which do
        // fsync, are left to the run store's checkpointer; a commit checkpoints only past the
        // limit.
        options.map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
                .pragma("journal_size_limit", WAL_SIZE_LIMIT_BYTES)
        });
    }
    let db = Database::connect(options).await?;
    Migrator::up(&db, None).await?;
    Ok(db)
}

/// Whether the database answers (the health check).
pub async fn ping(db: &DatabaseConnection) -> crate::Result<()> {
    Ok(db.ping().await?)
}
