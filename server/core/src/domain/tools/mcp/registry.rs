//! Registering, refreshing, reading and removing a project's MCP servers.

use std::collections::BTreeMap;

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use super::client::{self, Refusal};
use super::presets::{self, AuthKind};
use super::{LIST_DEADLINE, Mcp, McpTool, SERVERS_PER_PROJECT_MAX, sealing, servers_of};
use crate::cache::Invalidation;
use crate::domain::limits;
use crate::error::{Error, Result};
use crate::ids::ProjectId;
use crate::store::{mcp_server, now};

/// Characters of a server's name, which configs use in `mcp/<name>/…`.
pub const NAME_MAX: usize = 48;
pub const URL_MAX: usize = 2_048;
pub const DESCRIPTION_MAX: usize = 1_000;
pub const HEADERS_MAX: usize = 16;
pub const HEADER_NAME_MAX: usize = 128;
pub const HEADER_VALUE_MAX: usize = 4_096;

/// Headers the transport sets itself, which a registration may not override.
const RESERVED_HEADERS: &[&str] = &[
    "accept",
    "connection",
    "content-length",
    "content-type",
    "host",
    "last-event-id",
    "mcp-method",
    "mcp-name",
    "mcp-protocol-version",
    "mcp-session-id",
    "transfer-encoding",
];

/// What a project registers: a URL, or a catalog preset (with its URL's variables). No
/// `Debug`: the headers are secrets.
pub struct Registration {
    pub url: Option<String>,
    pub catalog: Option<String>,
    pub variables: BTreeMap<String, String>,
    pub headers: Vec<(String, String)>,
    pub description: Option<String>,
}

/// Whether a registration made the server or replaced one.
pub enum Registered {
    Created(mcp_server::Model),
    Replaced(mcp_server::Model),
}

/// What asking a server for its tools found.
struct Asked {
    tools: Option<Vec<McpTool>>,
    protocol_version: Option<String>,
    refusal: Option<Refusal>,
}

impl Mcp {
    /// Registers (or replaces) server `name`: checks the registration, asks the server for its
    /// tools, and stores the result either way (a server that refused is stored with its
    /// `error`, never as healthy).
    pub async fn register(&self, project_id: &ProjectId, name: &str, registration: Registration) -> Result<Registered> {
        validate_name(name)?;
        limits::text("description", registration.description.as_deref(), DESCRIPTION_MAX)?;
        let (url, catalog) = self.target(&registration)?;
        validate_headers(&registration.headers)?;
        if let Some(slug) = &catalog {
            let preset = presets::find(slug).expect("checked by target");
            for need in preset.headers.iter().filter(|need| need.required) {
                if !registration.headers.iter().any(|(header, _)| header.eq_ignore_ascii_case(need.name)) {
                    return Err(Error::invalid_param(
                        "headers",
                        format!("The catalog entry '{slug}' needs the header '{}': {}", need.name, need.description),
                    ));
                }
            }
        }
        let existing = mcp_server::Entity::find_by_id((project_id.clone(), name.to_owned())).one(&self.db).await?;
        if existing.is_none() {
            let count =
                mcp_server::Entity::find().filter(mcp_server::Column::ProjectId.eq(project_id)).count(&self.db).await?;
            if count >= SERVERS_PER_PROJECT_MAX as u64 {
                return Err(Error::bad_request(
                    "mcp_servers_limit",
                    format!("A project may register at most {SERVERS_PER_PROJECT_MAX} MCP servers."),
                ));
            }
        }
        let asked = self.ask(&url, &registration.headers).await;
        let at = now();
        let header_names: Vec<&str> = registration.headers.iter().map(|(name, _)| name.as_str()).collect();
        let sealed = (!registration.headers.is_empty()).then(|| {
            let plain = serde_json::to_string(&registration.headers).expect("headers serialize");
            self.settings.master_key.seal(&plain, sealing(project_id, name))
        });
        let row = mcp_server::ActiveModel {
            project_id: Set(project_id.clone()),
            name: Set(name.to_owned()),
            url: Set(url),
            description: Set(registration.description),
            catalog: Set(catalog),
            header_names: Set(serde_json::json!(header_names)),
            headers_ciphertext: Set(sealed),
            tools: Set(serde_json::json!(asked.tools.unwrap_or_default())),
            protocol_version: Set(asked.protocol_version),
            error_code: Set(asked.refusal.as_ref().map(|refusal| refusal.code.to_owned())),
            error_message: Set(asked.refusal.map(|refusal| refusal.message)),
            refreshed_at: Set(Some(at)),
            created_at: Set(existing.as_ref().map_or(at, |existing| existing.created_at)),
            updated_at: Set(at),
        };
        mcp_server::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([mcp_server::Column::ProjectId, mcp_server::Column::Name])
                    .update_columns([
                        mcp_server::Column::Url,
                        mcp_server::Column::Description,
                        mcp_server::Column::Catalog,
                        mcp_server::Column::HeaderNames,
                        mcp_server::Column::HeadersCiphertext,
                        mcp_server::Column::Tools,
                        mcp_server::Column::ProtocolVersion,
                        mcp_server::Column::ErrorCode,
                        mcp_server::Column::ErrorMessage,
                        mcp_server::Column::RefreshedAt,
                        mcp_server::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec(&self.db)
            .await?;
        self.changed(project_id).await;
        let stored = self.get(project_id, name).await?;
        Ok(if existing.is_some() { Registered::Replaced(stored) } else { Registered::Created(stored) })
    }

    /// Asks server `name` for its tools again. A server that now refuses keeps the tools it
    /// last listed (a passing outage does not take them from runs' offers) and shows why in
    /// its `error`.
    pub async fn refresh(&self, project_id: &ProjectId, name: &str) -> Result<mcp_server::Model> {
        let current = self.get(project_id, name).await?;
        let headers = self.headers(&current)?;
        let asked = self.ask(&current.url, &headers).await;
        let at = now();
        let mut update = mcp_server::Entity::update_many()
            .col_expr(mcp_server::Column::RefreshedAt, sea_orm::sea_query::Expr::value(Some(at)))
            .col_expr(
                mcp_server::Column::ErrorCode,
                sea_orm::sea_query::Expr::value(asked.refusal.as_ref().map(|refusal| refusal.code.to_owned())),
            )
            .col_expr(
                mcp_server::Column::ErrorMessage,
                sea_orm::sea_query::Expr::value(asked.refusal.map(|refusal| refusal.message)),
            );
        if let Some(tools) = asked.tools {
            update = update
                .col_expr(mcp_server::Column::Tools, sea_orm::sea_query::Expr::value(serde_json::json!(tools)))
                .col_expr(mcp_server::Column::ProtocolVersion, sea_orm::sea_query::Expr::value(asked.protocol_version));
        }
        // Only over the registration that was asked: one replaced meanwhile keeps its own listing.
        let updated = update
            .filter(mcp_server::Column::ProjectId.eq(project_id))
            .filter(mcp_server::Column::Name.eq(name))
            .filter(mcp_server::Column::UpdatedAt.eq(current.updated_at))
            .exec(&self.db)
            .await?;
        if updated.rows_affected == 1 {
            self.changed(project_id).await;
        }
        self.get(project_id, name).await
    }

    pub async fn get(&self, project_id: &ProjectId, name: &str) -> Result<mcp_server::Model> {
        mcp_server::Entity::find_by_id((project_id.clone(), name.to_owned()))
            .one(&self.db)
            .await?
            .ok_or_else(|| not_found(name))
    }

    /// Every server of the project, by name (a project has at most [`SERVERS_PER_PROJECT_MAX`]).
    pub async fn list(&self, project_id: &ProjectId) -> Result<Vec<mcp_server::Model>> {
        servers_of(&self.db, project_id).await
    }

    /// Removes server `name`: runs stop offering its tools at once.
    pub async fn delete(&self, project_id: &ProjectId, name: &str) -> Result<()> {
        let deleted = mcp_server::Entity::delete_many()
            .filter(mcp_server::Column::ProjectId.eq(project_id))
            .filter(mcp_server::Column::Name.eq(name))
            .exec(&self.db)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(not_found(name));
        }
        self.changed(project_id).await;
        Ok(())
    }

    async fn changed(&self, project_id: &ProjectId) {
        self.caches.invalidate(&self.db, Invalidation::Project(project_id.clone())).await;
    }

    /// The URL a registration reaches and the preset it came from, checked against the
    /// egress policy (an address it forbids is refused before anything is stored).
    fn target(&self, registration: &Registration) -> Result<(String, Option<String>)> {
        let (url, catalog) = match (&registration.url, &registration.catalog) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid_param("url", "Give either url or catalog, not both."));
            }
            (None, None) => return Err(Error::invalid_param("url", "Give the server's url, or a catalog entry.")),
            (Some(url), None) => {
                if !registration.variables.is_empty() {
                    return Err(Error::invalid_param("variables", "variables fill a catalog entry's URL template."));
                }
                (url.clone(), None)
            }
            (None, Some(slug)) => {
                let preset = presets::find(slug).ok_or_else(|| {
                    Error::bad_request("unknown_catalog_entry", format!("The catalog has no entry '{slug}'."))
                        .with_param("catalog")
                })?;
                if preset.auth == AuthKind::Oauth {
                    return Err(Error::bad_request(
                        "catalog_requires_connection",
                        format!(
                            "'{slug}' authenticates each user with OAuth, which needs a connection; connections are not available yet."
                        ),
                    )
                    .with_param("catalog"));
                }
                let url = preset.url(&registration.variables).map_err(|why| Error::invalid_param("variables", why))?;
                (url, Some(slug.clone()))
            }
        };
        limits::text("url", Some(&url), URL_MAX)?;
        crate::egress::check_saved_url(&self.settings.egress, &url).map_err(|denied| {
            Error::bad_request("egress_denied", format!("url is not allowed: {denied}")).with_param("url")
        })?;
        Ok((url, catalog))
    }

    /// Connects and lists, within [`LIST_DEADLINE`].
    async fn ask(&self, url: &str, headers: &[(String, String)]) -> Asked {
        let work = async {
            let session = client::connect(&self.egress, url, headers).await?;
            let protocol_version = session.protocol_version();
            let tools = session.list_tools().await;
            session.close().await;
            Ok::<_, Refusal>((tools?, protocol_version))
        };
        match tokio::time::timeout(LIST_DEADLINE, work).await {
            Ok(Ok((tools, protocol_version))) => Asked { tools: Some(tools), protocol_version, refusal: None },
            Ok(Err(refusal)) => Asked { tools: None, protocol_version: None, refusal: Some(refusal) },
            Err(_) => Asked { tools: None, protocol_version: None, refusal: Some(Refusal::timed_out(LIST_DEADLINE)) },
        }
    }
}

fn not_found(name: &str) -> Error {
    Error::not_found("mcp_server_not_found", "MCP server", name)
}

/// 1 to [`NAME_MAX`] of `a-z`, `0-9`, `_` and `-`, starting with a letter or digit.
fn validate_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= NAME_MAX
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(Error::invalid_param(
            "name",
            format!("An MCP server's name is 1 to {NAME_MAX} of a-z, 0-9, _ and -, starting with a letter or digit."),
        ))
    }
}

fn validate_headers(headers: &[(String, String)]) -> Result<()> {
    if headers.len() > HEADERS_MAX {
        return Err(Error::invalid_param("headers", format!("At most {HEADERS_MAX} headers.")));
    }
    for (index, (name, value)) in headers.iter().enumerate() {
        let token = !name.is_empty()
            && name.len() <= HEADER_NAME_MAX
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            return Err(Error::invalid_param(
                "headers",
                format!("A header name is 1 to {HEADER_NAME_MAX} characters of an HTTP token."),
            ));
        }
        if RESERVED_HEADERS.iter().any(|reserved| name.eq_ignore_ascii_case(reserved)) {
            return Err(Error::invalid_param("headers", format!("The header '{name}' is set by the MCP transport.")));
        }
        if headers[..index].iter().any(|(earlier, _)| earlier.eq_ignore_ascii_case(name)) {
            return Err(Error::invalid_param("headers", format!("The header '{name}' is given twice.")));
        }
        // Visible ASCII and spaces: what every HTTP stack sends unchanged.
        let printable =
            value.len() <= HEADER_VALUE_MAX && value.bytes().all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic());
        if !printable {
            return Err(Error::invalid_param(
                "headers",
                format!("The header '{name}' must be at most {HEADER_VALUE_MAX} visible ASCII characters."),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_headers_are_checked() {
        for good in ["weather", "gh-2", "a_b", "0"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Weather", "we ather", "-x", "a/b", &"a".repeat(NAME_MAX + 1)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        let header = |name: &str, value: &str| vec![(name.to_owned(), value.to_owned())];
        assert!(validate_headers(&header("Authorization", "Bearer abc")).is_ok());
        for (name, value) in
            [("Mcp-Session-Id", "x"), ("Host", "x"), ("bad name", "x"), ("X-Key", "line\nbreak"), ("X-Key", "é")]
        {
            assert!(validate_headers(&header(name, value)).is_err(), "{name}: {value}");
        }
        let twice = vec![("X-A".to_owned(), "1".to_owned()), ("x-a".to_owned(), "2".to_owned())];
        assert!(validate_headers(&twice).is_err());
    }
}
