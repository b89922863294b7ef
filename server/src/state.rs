use sea_orm::DatabaseConnection;

/// What every handler can reach. Everything that matters lives in the database.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
}
