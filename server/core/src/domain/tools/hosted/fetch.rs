//! `hosted/http_fetch`: a GET to a URL the model chose, so through the egress policy like
//! every URL a tenant (or its model) chooses: public addresses only unless the operator
//! allowed more, no redirects, a deadline, and a capped read.

use std::time::Duration;

/// Bytes of a fetched body read at most; the rest is never read.
pub const FETCH_BODY_MAX: usize = 256 * 1024;
/// Characters of a fetched body handed to the model at most.
pub const FETCH_TEXT_MAX: usize = 20_000;

pub async fn get(egress: &crate::egress::Egress, url: &str, deadline: Duration) -> Result<String, String> {
    let client = egress.client_for(url).map_err(|denied| format!("the URL is not allowed: {denied}"))?;
    let call = async {
        let response = client
            .get(url)
            .header("accept", "text/html, text/plain, application/json, */*;q=0.5")
            .send()
            .await
            .map_err(|err| match crate::egress::denial_in(&err) {
                Some(denied) => format!("the URL is not allowed: {denied}"),
                None => format!("the request failed: {}", err.without_url()),
            })?;
        let status = response.status();
        let body = crate::providers::read_capped(response, FETCH_BODY_MAX).await;
        let text = String::from_utf8_lossy(&body);
        let mut text: String = text.chars().take(FETCH_TEXT_MAX).collect();
        if body.len() == FETCH_BODY_MAX || text.chars().count() == FETCH_TEXT_MAX {
            text.push_str("\n[truncated]");
        }
        Ok(format!("HTTP {}\n\n{text}", status.as_u16()))
    };
    tokio::time::timeout(deadline, call).await.map_err(|_| "the request timed out".to_owned())?
}
