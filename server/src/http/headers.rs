//! Ingram's own headers that more than one surface reads or writes.

/// Names the smith for a tenant-admin token on the OpenAI surfaces, instead of `user`.
pub const SMITH: &str = "ic-smith-id";
/// Records a chat completion's run on this thread of the smith instead of a new one.
pub const THREAD: &str = "ic-thread-id";
/// Names the run a streamed answer belongs to, so a retried create can point at it.
pub const RUN_ID: &str = "x-run-id";
/// The sequence number a streamed answer starts after, so a client that drops before the
/// first frame resumes from the right place.
pub const STREAM_AFTER: &str = "x-run-stream-after";
