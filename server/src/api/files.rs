//! `/v1/files`: the images and documents inlined into smiths' conversations, as OpenAI
//! describes files. Runs name them by `file_id` in their input.

use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::api::schemas;
use crate::http::ApiResult;
use crate::http::auth::{Authorized, scopes};
use crate::http::extract::Path;
use ingram_core::domain::files;
use ingram_core::ids::{FileId, SmithId};
use ingram_core::store::file;

/// A stored file, in OpenAI's file shape plus what Ingram knows of it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct File {
    #[schema(value_type = schemas::FileId)]
    pub id: FileId,
    /// Always `file`.
    pub object: String,
    /// Size in bytes.
    pub bytes: i64,
    /// Unix seconds, as in OpenAI.
    pub created_at: i64,
    pub filename: String,
    /// Always `user_data`: the file came inline in a conversation.
    pub purpose: String,
    pub media_type: String,
    /// The smith whose conversation it came in.
    #[schema(value_type = schemas::SmithId)]
    pub smith_id: SmithId,
}

impl From<file::Info> for File {
    fn from(info: file::Info) -> Self {
        Self {
            id: info.id,
            object: "file".into(),
            bytes: info.bytes,
            created_at: info.created_at.timestamp(),
            filename: info.filename,
            purpose: "user_data".into(),
            media_type: info.media_type,
            smith_id: info.smith_id,
        }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_file)).routes(routes!(get_file_content))
}

const FID: &str = "The file's id (file_…).";

#[utoipa::path(get, path = "/v1/files/{fid}", tag = "files", params(("fid" = schemas::FileId, Path, description = FID)),
    responses((status = 200, description = "The file's metadata.", body = File)))]
async fn get_file(
    State(state): State<AppState>,
    caller: Authorized<scopes::FilesRead>,
    Path(fid): Path<FileId>,
) -> ApiResult<axum::Json<File>> {
    Ok(axum::Json(files::get(&state.db, &caller, &fid).await?.into()))
}

#[utoipa::path(get, path = "/v1/files/{fid}/content", tag = "files", params(("fid" = schemas::FileId, Path, description = FID)),
    responses((status = 200, description = "The file's bytes, with its media type as Content-Type.",
        content_type = "application/octet-stream", body = Vec<u8>)))]
async fn get_file_content(
    State(state): State<AppState>,
    caller: Authorized<scopes::FilesRead>,
    Path(fid): Path<FileId>,
) -> ApiResult<Response> {
    let file = files::get_content(&state.db, &caller, &fid).await?;
    let disposition = format!("attachment; filename=\"{}\"", header_safe(&file.filename));
    let headers = [
        (CONTENT_TYPE, file.media_type),
        (CONTENT_DISPOSITION, disposition),
        (X_CONTENT_TYPE_OPTIONS, "nosniff".into()),
    ];
    Ok((headers, file.data).into_response())
}

/// The filename with anything that could break out of a quoted header value replaced.
fn header_safe(filename: &str) -> String {
    filename.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' { c } else { '_' }).collect()
}
