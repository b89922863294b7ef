//! Every request of the generated client goes through [`ClientHooks::exec`] here: creates get
//! an `Idempotency-Key` when the caller set none, and transient failures are retried with
//! that same key, so a retry never creates a second resource.

use std::time::Duration;

use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::header::{HeaderValue, RETRY_AFTER};
use reqwest::{Method, Request, Response, StatusCode};

use crate::Client;

/// How the client retries what can succeed when tried again: connection errors and timeouts,
/// 408, 429, 502, 503 and 504, and a 409 the server marks as transient with `Retry-After` (an
/// `Idempotency-Key` still in progress). Never a 500 (a bug) nor any other 4xx (an answer).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The first backoff; it doubles with each retry.
    pub initial_backoff: Duration,
    /// No single wait is longer than this, whatever `Retry-After` says.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_retries: 2, initial_backoff: Duration::from_millis(250), max_backoff: Duration::from_secs(20) }
    }
}

impl RetryPolicy {
    pub fn none() -> Self {
        Self { max_retries: 0, ..Self::default() }
    }

    fn backoff(&self, retry: u32) -> Duration {
        self.initial_backoff.saturating_mul(2u32.saturating_pow(retry)).min(self.max_backoff)
    }
}

const IDEMPOTENCY_KEY: &str = "idempotency-key";

fn retryable(response: &Response) -> bool {
    match response.status() {
        StatusCode::REQUEST_TIMEOUT
        | StatusCode::TOO_MANY_REQUESTS
        | StatusCode::BAD_GATEWAY
        | StatusCode::SERVICE_UNAVAILABLE
        | StatusCode::GATEWAY_TIMEOUT => true,
        StatusCode::CONFLICT => response.headers().contains_key(RETRY_AFTER),
        _ => false,
    }
}

fn retry_after(response: &Response) -> Option<Duration> {
    let seconds: u64 = response.headers().get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

impl ClientHooks<RetryPolicy> for Client {
    async fn exec(&self, mut request: Request, _info: &OperationInfo) -> reqwest::Result<Response> {
        if request.method() == Method::POST && !request.headers().contains_key(IDEMPOTENCY_KEY) {
            let key = format!("ingram-rs-{}", uuid::Uuid::new_v4());
            request
                .headers_mut()
                .insert(IDEMPOTENCY_KEY, HeaderValue::from_str(&key).expect("a uuid is a header value"));
        }
        let policy = self.inner();
        let mut retry = 0;
        loop {
            // Streaming bodies cannot be cloned and so are sent once.
            let next = if retry < policy.max_retries { request.try_clone() } else { None };
            let result = self.client().execute(request).await;
            let Some(next) = next else { return result };
            let wait = match &result {
                Ok(response) if retryable(response) => retry_after(response).unwrap_or(policy.backoff(retry)),
                Ok(_) => return result,
                Err(err) if err.is_connect() || err.is_timeout() || err.is_request() => policy.backoff(retry),
                Err(_) => return result,
            };
            tokio::time::sleep(wait.min(policy.max_backoff)).await;
            request = next;
            retry += 1;
        }
    }
}
