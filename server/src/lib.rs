//! The Ingram server: the `/v1` API over the core (`ingram-core`), which knows nothing of
//! HTTP. `http` holds the conventions every route shares, `api` one module per resource
//! family: wire types and thin handlers.

pub mod api;
pub mod http;
pub mod state;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use ingram_core::domain::idempotency::Keys;

pub use state::AppState;

/// The whole HTTP application, as the binary serves it.
pub fn app(state: AppState) -> Router {
    let (authenticated, public) = api::routers();
    let (authenticated, _) = authenticated.split_for_parts();
    let (public, _) = public.split_for_parts();
    let authenticated = authenticated
        .route_layer(from_fn_with_state(state.clone(), http::idempotency::idempotent_creates))
        .route_layer(from_fn_with_state(state.clone(), http::auth::authenticate));
    with_conventions(authenticated.merge(public)).with_state(state)
}

/// Wraps routes in what every response shares: the envelope for unmatched routes, request
/// ids, tracing, caught panics, the API version check and the body limit.
pub fn with_conventions(routes: Router<AppState>) -> Router<AppState> {
    routes
        .fallback(http::route_not_found)
        .method_not_allowed_fallback(http::method_not_allowed)
        .layer(
            ServiceBuilder::new()
                .layer(from_fn(http::set_aside_client_request_id))
                .layer(SetRequestIdLayer::new(http::REQUEST_ID, http::MakeRequestUlid))
                .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
                    let header = |name| request.headers().get(name).and_then(|id| id.to_str().ok()).unwrap_or("");
                    let request_id = header(http::REQUEST_ID);
                    let client_request_id = header(http::CLIENT_REQUEST_ID);
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id, client_request_id)
                }).on_response(DefaultOnResponse::new().level(tracing::Level::INFO)))
                .layer(PropagateRequestIdLayer::new(http::REQUEST_ID))
                .layer(CatchPanicLayer::custom(http::panic_response))
                .layer(from_fn(http::check_api_version))
                .layer(DefaultBodyLimit::max(http::BODY_LIMIT)),
        )
}

/// Background upkeep every replica runs: purging expired idempotency keys.
pub fn spawn_upkeep(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(3600));
        loop {
            interval.tick().await;
            match Keys::new(&state.db, &state.settings).purge_expired().await {
                Ok(purged) if purged > 0 => tracing::info!(purged, "purged expired idempotency keys"),
                Ok(_) => {}
                Err(err) => tracing::warn!(code = %err.code, "could not purge idempotency keys"),
            }
        }
    })
}

/// Serves the app on `listener` with TCP_NODELAY until `shutdown` resolves, then drains.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::warn!(%err, "could not set TCP_NODELAY");
        }
    });
    // `into_make_service` shares the router among connections; serving the `Router` itself
    // rebuilds its route table for every connection (about 20 KB each).
    axum::serve(listener, app(state).into_make_service()).with_graceful_shutdown(shutdown).await
}
