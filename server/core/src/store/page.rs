//! One page of a cursor-paginated list, newest first.
//!
//! Ids are time-sortable, so a page is "ids below the cursor, descending" and the cursor is
//! the last id of the previous page, base64url-encoded so callers treat it as opaque.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::Error;

pub const DEFAULT_LIMIT: u64 = 20;
pub const MAX_LIMIT: u64 = 100;

/// A validated page request.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: u64,
    /// Return only items whose id sorts below this one.
    pub before_id: Option<String>,
}

impl PageRequest {
    /// From what a caller sent: a limit (1 to 100, default 20) and a cursor (empty or absent
    /// for the first page, so clients can always pass the last one back).
    pub fn new(limit: Option<u64>, cursor: Option<&str>) -> Result<Self, Error> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Error::invalid_param("limit", format!("limit must be between 1 and {MAX_LIMIT}.")));
        }
        let before_id = match cursor {
            None | Some("") => None,
            Some(cursor) => Some(decode_cursor(cursor)?),
        };
        Ok(Self { limit, before_id })
    }
}

pub fn decode_cursor(cursor: &str) -> Result<String, Error> {
    let invalid =
        || Error::bad_request("invalid_cursor", "The cursor is not one this API issued.").with_param("cursor");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let id = String::from_utf8(bytes).map_err(|_| invalid())?;
    let well_formed = id.split_once('_').is_some_and(|(prefix, rest)| {
        !prefix.is_empty() && !rest.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    if well_formed { Ok(id) } else { Err(invalid()) }
}

pub fn encode_cursor(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

/// One page of items: the query fetched `limit + 1` rows to learn whether more exist.
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

impl<T> Page<T> {
    pub fn from_rows(mut rows: Vec<T>, request: &PageRequest, id_of: impl Fn(&T) -> &str) -> Self {
        let has_more = rows.len() as u64 > request.limit;
        rows.truncate(request.limit as usize);
        let next_cursor = if has_more { rows.last().map(|row| encode_cursor(id_of(row))) } else { None };
        Self { data: rows, next_cursor, has_more }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { data: self.data.into_iter().map(f).collect(), next_cursor: self.next_cursor, has_more: self.has_more }
    }

    /// [`Page::map`] for a conversion that can fail: the first failure is the answer.
    pub fn try_map<U>(self, f: impl FnMut(T) -> Result<U, Error>) -> Result<Page<U>, Error> {
        let data = self.data.into_iter().map(f).collect::<Result<_, _>>()?;
        Ok(Page { data, next_cursor: self.next_cursor, has_more: self.has_more })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let request = PageRequest::new(Some(5), Some(&encode_cursor("smt_01abc"))).unwrap();
        assert_eq!(request.before_id.as_deref(), Some("smt_01abc"));
        assert!(PageRequest::new(None, Some("")).unwrap().before_id.is_none());
        for bad in ["%%%", "bm90IGFuIGlk"] {
            assert_eq!(PageRequest::new(None, Some(bad)).unwrap_err().code, "invalid_cursor", "{bad}");
        }
        assert_eq!(PageRequest::new(Some(0), None).unwrap_err().code, "invalid_parameter");
    }

    #[test]
    fn page_knows_whether_more_exist() {
        let request = PageRequest { limit: 2, before_id: None };
        let page = Page::from_rows(vec!["a_3".to_string(), "a_2".into(), "a_1".into()], &request, |s| s);
        assert!(page.has_more);
        assert_eq!(page.data.len(), 2);
        assert_eq!(page.next_cursor, Some(encode_cursor("a_2")));
        let last = Page::from_rows(vec!["a_1".to_string()], &request, |s| s);
        assert!(!last.has_more && last.next_cursor.is_none());
    }
}
