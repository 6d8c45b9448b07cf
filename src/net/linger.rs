//! Reading a request body so that it can still be drained after an early answer, and
//! the drain itself ("lingering close", as nginx calls it).
//!
//! A client that writes its whole body before it reads (Python's `urllib`, Java's
//! `HttpURLConnection`) gets a broken pipe instead of our 413 or 400 when we close the
//! connection with its body unread. So after an early error on HTTP/1, the rest of the
//! body is read and thrown away, up to [`LINGER_BYTES`] and [`LINGER_TIME`], while the
//! answer is written. [`read_whole`] is the one whole-body read of a proxied
//! request, bounded in bytes, time and the process's body budget.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header;
use http_body_util::BodyExt as _;
use hyper::body::Body;

use crate::net::body::BodyStalled;
use crate::net::budget::{BodyBudget, Lease};
use crate::{Error, Result};

/// The most body bytes drained after an early answer.
pub const LINGER_BYTES: u64 = 16 * 1024 * 1024;
/// The longest a drain runs.
pub const LINGER_TIME: Duration = Duration::from_secs(5);

/// Read a whole body of at most `limit` bytes through `&mut`, so that the caller keeps
/// the unread rest when it is refused: by Content-Length before reading, or as soon as
/// the stream goes over. The body's bytes are counted in `lease`, and the read is
/// refused when the process's body budget has no room for them: a declared
/// `Content-Length` is counted before reading (so a client that waits for
/// `100 Continue` is refused without sending its body), a chunked body's pieces as
/// they arrive.
pub async fn read_limited<B>(
    headers: &http::HeaderMap,
    body: &mut B,
    limit: usize,
    lease: &mut Lease,
) -> Result<Bytes>
where
    B: Body<Data = Bytes> + Unpin,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let declared = match declared {
        Some(n) => match usize::try_from(n) {
            Ok(n) if n <= limit => Some(n),
            _ => return Err(Error::BodyTooLarge { limit }),
        },
        None => None,
    };
    lease.take(declared.unwrap_or(0))?;
    // One chunk (the common case) is kept as it is; more are joined.
    let mut first: Option<Bytes> = None;
    let mut joined = BytesMut::new();
    let mut total: usize = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|_| Error::BadRequest("the request body could not be read".to_owned()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        if total > limit {
            return Err(Error::BodyTooLarge { limit });
        }
        // Past what was counted up front (hyper ends a body at its Content-Length).
        lease.take(total.saturating_sub(lease.bytes()))?;
        match first.take() {
            None if joined.is_empty() => first = Some(data),
            earlier => {
                if let Some(earlier) = earlier {
                    joined.extend_from_slice(&earlier);
                }
                joined.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| joined.freeze()))
}

/// A whole body read under `limit` bytes and within `within` (a body dripped byte by
/// byte would otherwise hold the connection, and its slot under `max_connections`, for
/// as long as the client likes: then 400, [`BodyStalled`]), and the lease its bytes
/// hold on the process's body budget ([`crate::net::budget`]), which the caller keeps
/// until the body has been sent on.
pub async fn read_whole<B>(
    headers: &http::HeaderMap,
    body: &mut B,
    limit: usize,
    within: Duration,
    budget: &Arc<BodyBudget>,
) -> Result<(Bytes, Lease)>
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut lease = budget.lease();
    let bytes = tokio::time::timeout(within, read_limited(headers, body, limit, &mut lease))
        .await
        .map_err(|_| Error::from(BodyStalled))??;
    Ok((bytes, lease))
}

/// Whether a request's unread body should be drained after an early answer: HTTP/1
/// only (HTTP/2 resets the stream instead), and not when the client waits for
/// `100 Continue` (it has not sent the body).
pub fn should_linger(parts: &http::request::Parts) -> bool {
    parts.version < http::Version::HTTP_2 && !parts.headers.contains_key(header::EXPECT)
}

/// Drain the rest of a body in the background, bounded in bytes and time.
pub fn spawn_drain<B>(body: B)
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
{
    if body.is_end_stream() {
        return;
    }
    tokio::spawn(async move {
        let _ = tokio::time::timeout(LINGER_TIME, drain(body, LINGER_BYTES)).await;
    });
}

async fn drain<B>(mut body: B, max: u64)
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut read: u64 = 0;
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(data) = frame.data_ref() {
            read = read.saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
            if read > max {
                return;
            }
        }
    }
}
