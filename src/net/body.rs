//! The body type every listener answers with, and the one way an [`Error`] becomes
//! an HTTP response.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::{Frame, SizeHint};

use crate::Error;

/// Any boxed error a body can fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response (or forwarded request) body: buffered, empty or streamed.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A body holding these bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body holding these bytes and `guard` until it has been sent (or dropped).
pub fn full_held<G>(bytes: Bytes, guard: G) -> Body
where
    G: Send + Unpin + 'static,
{
    boxed(Hold::new(Full::new(bytes), guard))
}

/// Wrap any body whose error converts into a [`BoxError`].
pub fn boxed<B>(body: B) -> Body
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// Box a body whose errors are boxed already: no error-mapping layer around it, so
/// one call less per frame and per poll of its end.
pub fn boxed_as_is<B>(body: B) -> Body
where
    B: hyper::body::Body<Data = Bytes, Error = BoxError> + Send + 'static,
{
    UnsyncBoxBody::new(body)
}

/// A body that holds `G` (a busy mark, a connection slot) until it ends or is dropped.
pub struct Hold<B, G> {
    inner: B,
    guard: Option<G>,
}

impl<B, G> Hold<B, G> {
    pub fn new(inner: B, guard: G) -> Hold<B, G> {
        Hold {
            inner,
            guard: Some(guard),
        }
    }
}

impl<B, G> hyper::body::Body for Hold<B, G>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    G: Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            this.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A streamed request body that ends with [`BodyStalled`] when the client sends
/// nothing for `limit`: the upstream send then fails with it among its causes, and
/// the client gets 400 (its fault) rather than a gateway error. The timer is armed
/// only once the client keeps the body waiting: a body that arrives with its head
/// costs none.
pub struct Idle<B> {
    inner: B,
    limit: std::time::Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<B> Idle<B> {
    pub fn new(inner: B, limit: std::time::Duration) -> Idle<B> {
        Idle {
            inner,
            limit,
            timer: None,
        }
    }

    /// The wrapped body (what is left of it).
    pub fn into_inner(self) -> B {
        self.inner
    }
}

/// The error a stalled body ends with (never sent anywhere; the handler answers 400).
#[derive(Debug)]
pub struct BodyStalled;

impl std::fmt::Display for BodyStalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body was not received in time")
    }
}

impl std::error::Error for BodyStalled {}

impl From<BodyStalled> for Error {
    /// 400: a body not received in time is the client's fault, whichever route
    /// waited for it.
    fn from(stalled: BodyStalled) -> Error {
        Error::BadRequest(stalled.to_string())
    }
}

impl<B> hyper::body::Body for Idle<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                // The next wait starts now.
                if let Some(timer) = this.timer.as_mut() {
                    timer
                        .as_mut()
                        .reset(tokio::time::Instant::now() + this.limit);
                }
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let limit = this.limit;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyStalled)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A JSON response with this status.
pub fn json(status: http::StatusCode, json: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(full(json));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// The JSON error response for an error: `Error::status()` and `Error::to_json()`,
/// with `WWW-Authenticate` on a 401, `Retry-After` on a 429 (and on a 503 for a full
/// body budget) and `Allow` on a 405.
pub fn error_response(err: &Error) -> Response<Body> {
    let mut res = json(err.status(), err.to_json());
    let (name, value) = match err {
        Error::Unauthenticated => (
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"vaultgate\""),
        ),
        Error::RateLimited { retry_after_secs }
        | Error::TokenizationSweepDetected { retry_after_secs } => {
            (header::RETRY_AFTER, HeaderValue::from(*retry_after_secs))
        }
        Error::BodyMemoryFull => (header::RETRY_AFTER, HeaderValue::from_static("1")),
        Error::MethodNotAllowed { allow } => match HeaderValue::from_str(allow) {
            Ok(v) => (header::ALLOW, v),
            Err(_) => return res,
        },
        _ => return res,
    };
    res.headers_mut().insert(name, value);
    res
}

/// Read a whole request body of at most `limit` bytes: refused by Content-Length
/// before reading, or as soon as the stream goes over.
pub async fn read_body(
    headers: &http::HeaderMap,
    body: hyper::body::Incoming,
    limit: usize,
) -> crate::Result<Bytes> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX)) {
        return Err(Error::BodyTooLarge { limit });
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(Error::BodyTooLarge { limit })
        }
        Err(_) => Err(Error::BadRequest(
            "the request body could not be read".to_owned(),
        )),
    }
}
