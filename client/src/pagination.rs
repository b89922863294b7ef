//! Cursor pagination as a `Stream` of items.

use std::future::Future;

use futures::{Stream, TryStreamExt, stream};
use progenitor_client::{Error as ProgenitorError, ResponseValue};

use crate::Error;
use crate::types::{self, ErrorEnvelope};

/// A page of a cursor-paginated list.
pub trait CursorPage {
    type Item;
    fn into_parts(self) -> (Vec<Self::Item>, Option<String>);
}

macro_rules! cursor_pages {
    ($($list:ident => $item:ident),* $(,)?) => {$(
        impl CursorPage for types::$list {
            type Item = types::$item;
            fn into_parts(self) -> (Vec<types::$item>, Option<String>) {
                let next = if self.has_more { self.next_cursor } else { None };
                (self.data, next)
            }
        }
    )*};
}

cursor_pages! {
    AgentList => Agent,
    ProjectList => Project,
    SmithList => Smith,
    SmithRevisionList => SmithRevision,
    TokenList => Token,
}

/// Streams every item of a list, fetching pages as the stream is read. `fetch` gets the
/// cursor to pass on, empty for the first page (the server reads an empty cursor as none),
/// usually `|cursor| client.list_smiths().cursor(cursor).send()`.
pub fn paginate<P, F, Fut>(fetch: F) -> impl Stream<Item = Result<P::Item, Error>>
where
    P: CursorPage,
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<ResponseValue<P>, ProgenitorError<ErrorEnvelope>>>,
{
    struct State<F> {
        fetch: F,
        cursor: Option<String>,
        done: bool,
    }
    stream::try_unfold(State { fetch, cursor: None, done: false }, |mut state| async move {
        if state.done {
            return Ok(None);
        }
        let page = (state.fetch)(state.cursor.take().unwrap_or_default()).await?.into_inner();
        let (items, next) = page.into_parts();
        state.done = next.is_none();
        state.cursor = next;
        Ok::<_, Error>(Some((stream::iter(items.into_iter().map(Ok)), state)))
    })
    .try_flatten()
}
