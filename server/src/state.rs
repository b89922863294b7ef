use std::sync::Arc;

use sea_orm::DatabaseConnection;

use ingram_core::cache::Caches;
use ingram_core::engine::Engine;
use ingram_core::settings::Settings;

/// What every handler can reach. Everything that matters lives in the database; the caches
/// hold what every request would otherwise read again.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub settings: Arc<Settings>,
    pub caches: Arc<Caches>,
    pub engine: Engine,
}

impl AppState {
    /// Fails when the run store cannot open beside `db`.
    pub fn new(db: DatabaseConnection, settings: Settings) -> ingram_core::Result<Self> {
        let settings = Arc::new(settings);
        let caches = Arc::new(Caches::new());
        let engine = Engine::new(db.clone(), settings.clone(), caches.clone())?;
        Ok(Self { db, settings, caches, engine })
    }
}
