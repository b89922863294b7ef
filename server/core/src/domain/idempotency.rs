//! Idempotency keys as stored: a key is claimed by one request, which holds it with a lease it
//! renews, then stores its answer sealed for replay or releases the key so a retry runs anew.
//! The HTTP layer decides which answers are kept and how a replay is sent.

use std::time::Duration;

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter};

use crate::crypto::SealContext;
use crate::error::{Error, ErrorKind, Result};
use crate::ids::TokenId;
use crate::settings::Settings;
use crate::store::{idempotency_key, now};

/// Keys are kept at least this long; older ones are purged.
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How long a duplicate waits for the first request before giving up with a 409.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(30);

/// A key as one caller used it, with the request it was used for.
pub struct Keyed {
    /// The token that sent the request: a stored answer is replayed to that token only.
    pub scope: TokenId,
    pub key: String,
    /// SHA-256 over what identifies the request (method, path, body, …).
    pub request_hash: String,
}

impl Keyed {
    fn sealing(&self) -> SealContext<'_> {
        SealContext::IdempotentAnswer { scope: self.scope.as_str(), key: &self.key }
    }
}

/// One request's hold on a key.
pub struct Claim {
    id: String,
}

/// What a keyed request does: run, holding the key, or answer what was stored for it.
pub enum Claimed {
    Run(Claim),
    Replay { status: u16, body: String },
}

/// The idempotency keys of this database, under the server's master key and lease.
#[derive(Clone, Copy)]
pub struct Keys<'a> {
    db: &'a DatabaseConnection,
    settings: &'a Settings,
}

impl<'a> Keys<'a> {
    pub fn new(db: &'a DatabaseConnection, settings: &'a Settings) -> Self {
        Self { db, settings }
    }

    /// Claims the key, or finds its stored answer. Refused: a key used with another request
    /// (`idempotency_key_reused`), an answer the master key cannot open, and, after waiting
    /// for the first request, a key still held (`idempotency_key_in_progress`, retryable).
    pub async fn claim_or_replay(self, keyed: &Keyed) -> Result<Claimed> {
        let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
        let claim = Claim { id: ulid::Ulid::new().to_string() };
        loop {
            if self.try_claim(keyed, &claim).await? {
                return Ok(Claimed::Run(claim));
            }
            let stored =
                idempotency_key::Entity::find_by_id((keyed.scope.to_string(), keyed.key.clone())).one(self.db).await?;
            let Some(stored) = stored else {
                // The first request failed and released the key: claim it ourselves.
                continue;
            };
            if stored.request_hash != keyed.request_hash {
                return Err(Error::new(
                    ErrorKind::KeyReused,
                    "idempotency_key_reused",
                    "This Idempotency-Key was already used with a different request.",
                )
                .with_param("Idempotency-Key"));
            }
            if let (Some(status), Some(sealed)) = (stored.response_status, &stored.response_body) {
                let body = self.settings.master_key.open(sealed, keyed.sealing()).ok_or_else(|| {
                    Error::conflict(
                        "idempotency_answer_unreadable",
                        "The answer stored for this Idempotency-Key cannot be read (the server's master key changed); use a new key.",
                    )
                })?;
                let status = u16::try_from(status).map_err(|_| Error::internal("A stored answer has no status."))?;
                return Ok(Claimed::Replay { status, body });
            }
            if self.take_over_lapsed(keyed, &stored, &claim).await? {
                return Ok(Claimed::Run(claim));
            }
            if tokio::time::Instant::now() >= deadline {
                // The one 409 that is worth retrying, and says so with Retry-After.
                let in_progress = Error::conflict(
                    "idempotency_key_in_progress",
                    "A request with this Idempotency-Key is still being processed; retry shortly.",
                );
                return Err(Error { retry_after: Some(Duration::from_secs(1)), ..in_progress });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn lease_until(self) -> chrono::DateTime<chrono::Utc> {
        now() + chrono::Duration::from_std(self.settings.idempotency_lease).unwrap_or_default()
    }

    /// Inserts the key as claimed by this request; false when it already exists.
    async fn try_claim(self, keyed: &Keyed, claim: &Claim) -> Result<bool> {
        let row = idempotency_key::ActiveModel {
            scope: Set(keyed.scope.to_string()),
            key: Set(keyed.key.clone()),
            request_hash: Set(keyed.request_hash.clone()),
            response_status: Set(None),
            response_body: Set(None),
            claim_id: Set(Some(claim.id.clone())),
            lease_until: Set(Some(self.lease_until())),
            created_at: Set(now()),
        };
        let inserted = idempotency_key::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([idempotency_key::Column::Scope, idempotency_key::Column::Key])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(self.db)
            .await?;
        Ok(inserted == 1)
    }

    /// Takes over an unanswered key whose claim lapsed (its server died), unless someone else
    /// took it or answered it first.
    async fn take_over_lapsed(self, keyed: &Keyed, stored: &idempotency_key::Model, claim: &Claim) -> Result<bool> {
        if stored.lease_until.is_some_and(|until| until >= now()) {
            return Ok(false);
        }
        let taken = idempotency_key::Entity::update_many()
            .col_expr(idempotency_key::Column::ClaimId, Expr::value(Some(claim.id.clone())))
            .col_expr(idempotency_key::Column::LeaseUntil, Expr::value(Some(self.lease_until())))
            .filter(unanswered(keyed))
            // Lapsed still, as the row stands: a renewal that came in between wins.
            .filter(
                Condition::any()
                    .add(idempotency_key::Column::LeaseUntil.lt(now()))
                    .add(idempotency_key::Column::LeaseUntil.is_null()),
            )
            .filter(match &stored.claim_id {
                Some(previous) => idempotency_key::Column::ClaimId.eq(previous.as_str()),
                None => idempotency_key::Column::ClaimId.is_null(),
            })
            .exec(self.db)
            .await?;
        Ok(taken.rows_affected == 1)
    }

    /// Renews the claim every third of its lease, until the future is dropped.
    pub async fn keep_renewing(self, keyed: &Keyed, claim: &Claim) {
        loop {
            tokio::time::sleep(self.settings.idempotency_lease / 3).await;
            let renewed = idempotency_key::Entity::update_many()
                .col_expr(idempotency_key::Column::LeaseUntil, Expr::value(Some(self.lease_until())))
                .filter(held(keyed, claim))
                .exec(self.db)
                .await;
            if let Err(err) = renewed {
                tracing::warn!(error = %err, "could not renew an idempotency claim");
            }
        }
    }

    /// Stores the answer sealed, only while this request still holds the key unanswered.
    pub async fn store(self, keyed: &Keyed, claim: &Claim, status: u16, body: &str) {
        let sealed = self.settings.master_key.seal(body, keyed.sealing());
        let stored = idempotency_key::Entity::update_many()
            .col_expr(idempotency_key::Column::ResponseStatus, Expr::value(Some(i32::from(status))))
            .col_expr(idempotency_key::Column::ResponseBody, Expr::value(Some(sealed)))
            .col_expr(idempotency_key::Column::LeaseUntil, Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None))
            .filter(held(keyed, claim))
            .filter(idempotency_key::Column::ResponseStatus.is_null())
            .exec(self.db)
            .await;
        match stored {
            Ok(result) if result.rows_affected == 0 => {
                tracing::warn!(
                    "an idempotency claim was taken over before its answer was stored; the answer is not kept"
                );
            }
            Ok(_) => {}
            Err(err) => tracing::error!(error = %err, "could not record an idempotent response"),
        }
    }

    /// Gives the key up, if this request still holds it unanswered.
    pub async fn release(self, keyed: &Keyed, claim: &Claim) {
        let deleted = idempotency_key::Entity::delete_many()
            .filter(held(keyed, claim))
            .filter(idempotency_key::Column::ResponseStatus.is_null())
            .exec(self.db)
            .await;
        if let Err(err) = deleted {
            tracing::error!(error = %err, "could not release an idempotency key");
        }
    }

    /// Deletes keys past their retention; run periodically.
    pub async fn purge_expired(self) -> Result<u64> {
        let cutoff = now() - chrono::Duration::from_std(RETENTION).unwrap_or_default() * 2;
        let result = idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::CreatedAt.lt(cutoff))
            .exec(self.db)
            .await?;
        Ok(result.rows_affected)
    }
}

/// The key's row while no answer is stored.
fn unanswered(keyed: &Keyed) -> Condition {
    Condition::all()
        .add(idempotency_key::Column::Scope.eq(keyed.scope.as_str()))
        .add(idempotency_key::Column::Key.eq(keyed.key.as_str()))
        .add(idempotency_key::Column::ResponseStatus.is_null())
}

/// The key's row while this claim holds it.
fn held(keyed: &Keyed, claim: &Claim) -> Condition {
    Condition::all()
        .add(idempotency_key::Column::Scope.eq(keyed.scope.as_str()))
        .add(idempotency_key::Column::Key.eq(keyed.key.as_str()))
        .add(idempotency_key::Column::ClaimId.eq(claim.id.as_str()))
}
