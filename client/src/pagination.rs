//! Cursor pagination as a `Stream` of items.

use std::future::Future;

use futures::{Stream, TryStreamExt, stream};
use progenitor_client::ResponseValue;

use crate::Error;

/// A page of a cursor-paginated list.
pub trait CursorPage {
    type Item;
    fn into_parts(self) -> (Vec<Self::Item>, Option<String>);
}

// Implemented for every list of the spec by `cargo xtask regenerate`, in generated.rs.

/// Streams every item of a list, fetching pages as the stream is read. `fetch` gets the
/// cursor to pass on, empty for the first page (the server reads an empty cursor as none),
/// usually `|cursor| client.list_smiths().cursor(cursor).send()`.
pub fn paginate<P, F, Fut>(fetch: F) -> impl Stream<Item = Result<P::Item, Error>>
where
    P: CursorPage,
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<ResponseValue<P>, Error>>,
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
