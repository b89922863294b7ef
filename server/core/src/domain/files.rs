//! Files inlined into a smith's conversation. A run's input keeps no base64: when the run is
//! created, data URLs and `file_data` are stored as the smith's files and named by `file_id`
//! instead. The model gets the bytes back when it reads the conversation.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
};

use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::ids::{FileId, ProjectId, SmithId};
use crate::providers::{Attachment, AttachmentKind, AttachmentSource, Role};
use crate::store::{file, now};
use crate::types::{ContentPart, FilePart, ImagePart, InputMessage};

/// Whether any message carries an image or a file.
pub fn has_attachments(input: &[InputMessage]) -> bool {
    input.iter().any(|message| message.content.attachments().next().is_some())
}

/// Stores the inline content of `input` as the smith's files and puts their ids in its
/// place; checks that every `file_id` names a file of this smith.
pub async fn store_inline(
    db: &impl ConnectionTrait,
    project_id: &ProjectId,
    smith_id: &SmithId,
    input: &mut [InputMessage],
) -> Result<()> {
    let owner = Owner { project_id, smith_id };
    for (index, message) in input.iter_mut().enumerate() {
        let role = message.role;
        for part in message.content.attachments_mut() {
            let at = |message: &str| invalid_content(format!("Message {index}: {message}"));
            if role != Role::User {
                return Err(at("images and files are accepted in user messages only."));
            }
            match part {
                ContentPart::ImageUrl { image_url } => {
                    store_image(db, &owner, image_url).await.map_err(|e| e.at(at))?
                }
                ContentPart::File { file } => store_file(db, &owner, file).await.map_err(|e| e.at(at))?,
                ContentPart::Text { .. } => {}
            }
        }
    }
    Ok(())
}

struct Owner<'a> {
    project_id: &'a ProjectId,
    smith_id: &'a SmithId,
}

/// Why a part was refused: a message for the caller, or a database failure.
enum PartError {
    Invalid(String),
    Api(Error),
}

impl PartError {
    fn at(self, at: impl Fn(&str) -> Error) -> Error {
        match self {
            Self::Invalid(message) => at(&message),
            Self::Api(err) => err,
        }
    }
}

impl From<Error> for PartError {
    fn from(err: Error) -> Self {
        Self::Api(err)
    }
}

impl From<sea_orm::DbErr> for PartError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Api(err.into())
    }
}

fn invalid_content(message: String) -> Error {
    Error::bad_request("invalid_content", message)
}

async fn store_image(db: &impl ConnectionTrait, owner: &Owner<'_>, image: &mut ImagePart) -> Result<(), PartError> {
    match (image.url.as_deref(), image.file_id.as_ref()) {
        (Some(_), Some(_)) => Err(PartError::Invalid("give an image's url or its file_id, not both.".into())),
        (None, None) => Err(PartError::Invalid("an image needs a url or a file_id.".into())),
        (None, Some(id)) => {
            let stored = find(db, owner, id).await?;
            if !stored.media_type.starts_with("image/") {
                return Err(PartError::Invalid(format!("file {id} is {}, not an image.", stored.media_type)));
            }
            Ok(())
        }
        (Some(url), None) if url.starts_with("https://") || url.starts_with("http://") => Ok(()),
        (Some(url), None) => {
            let (media_type, bytes) = decode_data_url(url)
                .ok_or_else(|| PartError::Invalid("an image url must be http(s) or a base64 data: URL.".into()))?;
            if !media_type.starts_with("image/") {
                return Err(PartError::Invalid(format!("the data URL holds {media_type}, not an image.")));
            }
            let filename = format!("image.{}", extension(&media_type));
            image.file_id = Some(store(db, owner, filename, media_type, bytes).await?);
            image.url = None;
            Ok(())
        }
    }
}

async fn store_file(db: &impl ConnectionTrait, owner: &Owner<'_>, file: &mut FilePart) -> Result<(), PartError> {
    match (file.file_data.as_deref(), file.file_id.as_ref()) {
        (Some(_), Some(_)) => Err(PartError::Invalid("give a file's file_data or its file_id, not both.".into())),
        (None, None) => Err(PartError::Invalid("a file needs file_data or a file_id.".into())),
        (None, Some(id)) => {
            find(db, owner, id).await?;
            Ok(())
        }
        (Some(data), None) => {
            let (media_type, bytes) = match decode_data_url(data) {
                Some(decoded) => decoded,
                None => {
                    let bytes = decode_base64(data)
                        .ok_or_else(|| PartError::Invalid("file_data must be base64 or a base64 data: URL.".into()))?;
                    (media_type_of(file.filename.as_deref()).to_owned(), bytes)
                }
            };
            let filename = file.filename.clone().unwrap_or_else(|| format!("file.{}", extension(&media_type)));
            file.file_id = Some(store(db, owner, filename, media_type, bytes).await?);
            file.file_data = None;
            Ok(())
        }
    }
}

/// Stores the content once per smith: the same bytes under the same name reuse the file.
async fn store(
    db: &impl ConnectionTrait,
    owner: &Owner<'_>,
    filename: String,
    media_type: String,
    bytes: Vec<u8>,
) -> Result<FileId, PartError> {
    if bytes.is_empty() {
        return Err(PartError::Invalid("the file is empty.".into()));
    }
    let sha256 = crate::digest::sha256_hex(&[&bytes]);
    let existing: Option<FileId> = file::Entity::find()
        .select_only()
        .column(file::Column::Id)
        .filter(file::Column::SmithId.eq(owner.smith_id))
        .filter(file::Column::Sha256.eq(sha256.as_str()))
        .filter(file::Column::Filename.eq(filename.as_str()))
        .filter(file::Column::MediaType.eq(media_type.as_str()))
        .into_tuple()
        .one(db)
        .await?;
    if let Some(id) = existing {
        return Ok(id);
    }
    let row = file::ActiveModel {
        id: Set(FileId::generate()),
        project_id: Set(owner.project_id.clone()),
        smith_id: Set(owner.smith_id.clone()),
        filename: Set(filename),
        media_type: Set(media_type),
        bytes: Set(i64::try_from(bytes.len()).unwrap_or(i64::MAX)),
        sha256: Set(sha256),
        data: Set(bytes),
        created_at: Set(now()),
    };
    Ok(row.insert(db).await?.id)
}

async fn find(db: &impl ConnectionTrait, owner: &Owner<'_>, id: &FileId) -> Result<file::Info> {
    file::Entity::find_by_id(id)
        .filter(file::Column::ProjectId.eq(owner.project_id))
        .filter(file::Column::SmithId.eq(owner.smith_id))
        .into_partial_model()
        .one(db)
        .await?
        .ok_or_else(|| not_found(id))
}

fn not_found(id: &FileId) -> Error {
    Error::not_found("file_not_found", "file", id)
}

/// A file the caller may see: one of its project's, and for a smith token one of its smith's.
pub async fn get(db: &impl ConnectionTrait, caller: &Caller, id: &FileId) -> Result<file::Info> {
    visible(caller, file::Entity::find_by_id(id)).into_partial_model().one(db).await?.ok_or_else(|| not_found(id))
}

/// The file with its content, under the same rule as [`get`].
pub async fn get_content(db: &impl ConnectionTrait, caller: &Caller, id: &FileId) -> Result<file::Model> {
    visible(caller, file::Entity::find_by_id(id)).one(db).await?.ok_or_else(|| not_found(id))
}

fn visible(caller: &Caller, query: sea_orm::Select<file::Entity>) -> sea_orm::Select<file::Entity> {
    let query = query.filter(file::Column::ProjectId.eq(caller.project_id.as_str()));
    match &caller.smith_id {
        Some(smith_id) => query.filter(file::Column::SmithId.eq(smith_id.as_str())),
        None => query,
    }
}

/// The stored files the messages name, by id.
pub async fn load_named<'a>(
    db: &impl ConnectionTrait,
    project_id: &ProjectId,
    messages: impl IntoIterator<Item = &'a InputMessage>,
) -> Result<HashMap<FileId, file::Model>> {
    let ids: Vec<&str> = messages
        .into_iter()
        .flat_map(|message| message.content.attachments())
        .filter_map(|part| match part {
            ContentPart::ImageUrl { image_url } => image_url.file_id.as_ref().map(FileId::as_str),
            ContentPart::File { file } => file.file_id.as_ref().map(FileId::as_str),
            ContentPart::Text { .. } => None,
        })
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let files = file::Entity::find()
        .filter(file::Column::ProjectId.eq(project_id))
        .filter(file::Column::Id.is_in(ids))
        .all(db)
        .await?;
    Ok(files.into_iter().map(|file| (file.id.clone(), file)).collect())
}

/// What the model sees of an image or file part: its URL, or its stored bytes.
pub fn attachment(part: &ContentPart, stored: &HashMap<FileId, file::Model>) -> Option<Attachment> {
    let from_store = |kind, id: &str, detail: Option<String>| {
        let file = stored.get(id)?;
        Some(Attachment {
            kind,
            media_type: Some(file.media_type.clone()),
            filename: Some(file.filename.clone()),
            source: AttachmentSource::Base64(STANDARD.encode(&file.data)),
            detail,
        })
    };
    match part {
        ContentPart::Text { .. } => None,
        ContentPart::ImageUrl { image_url } => {
            let detail = image_url.detail.map(|detail| detail.as_str().to_owned());
            match (&image_url.file_id, &image_url.url) {
                (Some(id), _) => from_store(AttachmentKind::Image, id.as_str(), detail),
                (None, Some(url)) => Some(Attachment {
                    kind: AttachmentKind::Image,
                    media_type: media_type_of(Some(url.split(['?', '#']).next().unwrap_or(url)))
                        .strip_prefix("image/")
                        .map(|subtype| format!("image/{subtype}")),
                    filename: None,
                    source: AttachmentSource::Url(url.clone()),
                    detail,
                }),
                (None, None) => None,
            }
        }
        ContentPart::File { file } => {
            from_store(AttachmentKind::File, file.file_id.as_ref().map(FileId::as_str)?, None)
        }
    }
}

/// `data:<media type>[;params];base64,<data>`; other data URLs are not accepted.
fn decode_data_url(url: &str) -> Option<(String, Vec<u8>)> {
    let (meta, data) = url.strip_prefix("data:")?.split_once(',')?;
    let meta = meta.strip_suffix(";base64")?;
    let media_type = meta.split(';').next().filter(|kind| is_media_type(kind)).unwrap_or("application/octet-stream");
    Some((media_type.to_ascii_lowercase(), decode_base64(data)?))
}

/// `type/subtype` of token characters only, so it is safe to serve as a Content-Type.
fn is_media_type(value: &str) -> bool {
    let token =
        |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b));
    value.split_once('/').is_some_and(|(kind, subtype)| token(kind) && token(subtype))
}

fn decode_base64(data: &str) -> Option<Vec<u8>> {
    let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(&compact).or_else(|_| STANDARD_NO_PAD.decode(&compact)).ok()
}

const MEDIA_TYPES: &[(&str, &str)] = &[
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("pdf", "application/pdf"),
    ("txt", "text/plain"),
    ("md", "text/markdown"),
    ("csv", "text/csv"),
    ("json", "application/json"),
];

/// The media type a file name's extension suggests.
fn media_type_of(name: Option<&str>) -> &'static str {
    let extension = name.and_then(|name| name.rsplit_once('.')).map(|(_, ext)| ext.to_ascii_lowercase());
    MEDIA_TYPES
        .iter()
        .find(|(known, _)| Some(*known) == extension.as_deref())
        .map_or("application/octet-stream", |(_, media_type)| media_type)
}

fn extension(media_type: &str) -> &'static str {
    MEDIA_TYPES.iter().find(|(_, known)| *known == media_type).map_or("bin", |(extension, _)| extension)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_decode_with_their_media_type() {
        let (media_type, bytes) = decode_data_url("data:image/PNG;base64,aGVsbG8=").unwrap();
        assert_eq!((media_type.as_str(), bytes.as_slice()), ("image/png", b"hello".as_slice()));
        let (media_type, _) = decode_data_url("data:text/plain;charset=utf-8;base64,aGk").unwrap();
        assert_eq!(media_type, "text/plain");
        assert!(decode_data_url("data:text/plain,hello").is_none(), "only base64 data URLs");
        assert!(decode_data_url("data:image/png;base64,!!!").is_none());
        let (media_type, _) = decode_data_url("data:text/html\r\nX: y;base64,aGk=").unwrap();
        assert_eq!(media_type, "application/octet-stream", "never an unsafe header value");
    }

    #[test]
    fn names_and_media_types_map_both_ways() {
        assert_eq!(media_type_of(Some("Report.PDF")), "application/pdf");
        assert_eq!(media_type_of(Some("noext")), "application/octet-stream");
        assert_eq!(extension("image/jpeg"), "jpg");
        assert_eq!(extension("application/zip"), "bin");
    }
}
