use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::engine::Engine;
use crate::settings::Settings;

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
