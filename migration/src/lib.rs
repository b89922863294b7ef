//! Schema migrations, run unchanged on SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m0001_foundation;
mod m0002_runs;
mod m0003_files;
mod m0004_security;
mod m0005_memory;
mod m0006_mcp;
mod m0007_approvals;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_foundation::Migration),
            Box::new(m0002_runs::Migration),
            Box::new(m0003_files::Migration),
            Box::new(m0004_security::Migration),
            Box::new(m0005_memory::Migration),
            Box::new(m0006_mcp::Migration),
            Box::new(m0007_approvals::Migration),
        ]
    }
}
