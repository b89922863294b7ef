use std::sync::Arc;

use sea_orm::DatabaseConnection;

use ingram_core::engine::Engine;
use ingram_core::settings::Settings;

/// What every handler can reach. Everything that matters lives in the database.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub settings: Arc<Settings>,
    pub engine: Engine,
}

impl AppState {
    pub fn new(db: DatabaseConnection, settings: Settings) -> Self {
        let settings = Arc::new(settings);
        let engine = Engine::new(db.clone(), settings.clone());
        Self { db, settings, engine }
    }
}
