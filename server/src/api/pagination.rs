//! Cursor pagination on the wire: `limit` + opaque `cursor` in, `{data, next_cursor,
//! has_more}` out, newest first (the rule itself is `ingram_core::store::page`).

use serde::Deserialize;
use utoipa::IntoParams;

pub use ingram_core::store::page::{Page, PageRequest, decode_cursor, encode_cursor};

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// How many items to return, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
    /// The previous page's `next_cursor`, passed back unchanged.
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn validate(&self) -> ingram_core::Result<PageRequest> {
        PageRequest::new(self.limit, self.cursor.as_deref())
    }
}

/// Declares the concrete list type of one resource (utoipa inlines generic pages, so each
/// resource gets its own named schema).
macro_rules! list_type {
    ($list:ident, $item:ty) => {
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub struct $list {
            pub data: Vec<$item>,
            /// Pass back as `cursor` for the next page; null on the last page.
            pub next_cursor: Option<String>,
            pub has_more: bool,
        }

        impl From<$crate::api::pagination::Page<$item>> for $list {
            fn from(page: $crate::api::pagination::Page<$item>) -> Self {
                Self { data: page.data, next_cursor: page.next_cursor, has_more: page.has_more }
            }
        }
    };
}
pub(crate) use list_type;
