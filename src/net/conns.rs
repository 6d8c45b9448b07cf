//! The connections a listener serves: which are idle and since when, so that idle
//! ones are closed after a timeout, and the oldest idle one makes room when the
//! listener is at `max_connections`.
//!
//! A connection is busy from the moment a request arrives until its response body is
//! done (or dropped); otherwise it is idle. Before its first request a connection gets
//! the header read timeout; between requests, the idle timeout. On HTTP/1, the header
//! read timeout also runs from the first byte of each request head until the head is
//! read (the connection's reads tell [`ConnSlot::head_begun`]): a client dripping a
//! head is cut off, and a keep-alive connection that sends nothing waits out the idle
//! timeout.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// Every open connection of one listener.
#[derive(Debug)]
pub struct ConnTable {
    epoch: Instant,
    next_id: AtomicU64,
    slots: Mutex<HashMap<u64, Arc<ConnSlot>>>,
}

/// One open connection.
#[derive(Debug)]
pub struct ConnSlot {
    id: u64,
    epoch: Instant,
    /// Requests in flight (until their response bodies end).
    active: AtomicUsize,
    /// Whether a request was ever seen.
    served: AtomicBool,
    /// When it last became idle, in ms since `epoch`.
    idle_since_ms: AtomicU64,
    /// When the request head being read began, in ms since `epoch`, plus one; 0 when
    /// none is.
    head_since_ms: AtomicU64,
    /// Chosen to make room; do not choose again.
    closing: AtomicBool,
    evict: Notify,
    /// Requests seen, and requests the client cancelled before their answer (an
    /// HTTP/2 stream reset, an HTTP/1 connection closed mid-request).
    requests: AtomicU64,
    cancelled: AtomicU64,
    /// Told once the client cancelled too many of its requests.
    cancels: Notify,
    /// The send-stall clock: advanced every half idle timeout
    /// ([`ConnSlot::send_stalled`]).
    stall_epoch: AtomicU64,
    /// Response bodies waiting for hyper to take their next bytes, by the epoch
    /// (modulo 3) in which they began to wait.
    waiting: [AtomicUsize; 3],
}

/// A connection on which the client cancelled more than half of its requests, once
/// it sent at least this many, is closed (HTTP/2: GOAWAY, new streams refused). An
/// HTTP/2 client can open a stream, wait until vaultgate has forwarded it, reset it
/// and open the next: h2's bound on resets (20 pending) counts only streams reset
/// before they were accepted, and `h2_max_concurrent_streams` bounds streams open at
/// once, not opened per second. Envoy's `premature_reset_total_stream_count` (500,
/// more than half reset) is the same rule.
pub const CANCEL_FLOOD_MIN_REQUESTS: u64 = 500;

/// Removes its connection from the table when the connection task ends.
#[derive(Debug)]
pub struct Registered {
    table: Arc<ConnTable>,
    pub slot: Arc<ConnSlot>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut slots = match self.table.slots.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        slots.remove(&self.slot.id);
    }
}

impl ConnTable {
    pub fn new() -> Arc<ConnTable> {
        Arc::new(ConnTable {
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            slots: Mutex::new(HashMap::new()),
        })
    }

    /// Track a new connection (idle since now).
    pub fn register(self: &Arc<Self>) -> Registered {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(ConnSlot {
            id,
            epoch: self.epoch,
            active: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            idle_since_ms: AtomicU64::new(ms_since(self.epoch)),
            head_since_ms: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            evict: Notify::new(),
            requests: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            cancels: Notify::new(),
            stall_epoch: AtomicU64::new(0),
            waiting: [
                AtomicUsize::new(0),
                AtomicUsize::new(0),
                AtomicUsize::new(0),
            ],
        });
        let mut slots = match self.slots.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        slots.insert(id, Arc::clone(&slot));
        Registered {
            table: Arc::clone(self),
            slot,
        }
    }

    /// Ask the connection that has been idle longest to close. `false` when every
    /// connection is busy (or already closing).
    pub fn evict_oldest_idle(&self) -> bool {
        let slots = match self.slots.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let oldest = slots
            .values()
            .filter(|s| s.active.load(Ordering::Acquire) == 0 && !s.closing.load(Ordering::Acquire))
            .min_by_key(|s| s.idle_since_ms.load(Ordering::Acquire));
        match oldest {
            Some(slot) => {
                slot.closing.store(true, Ordering::Release);
                slot.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

fn ms_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl ConnSlot {
    /// A request arrived; the connection is busy until the guard drops.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.served.store(true, Ordering::Relaxed);
        self.head_since_ms.store(0, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::AcqRel);
        self.requests.fetch_add(1, Ordering::Relaxed);
        Busy(Arc::clone(self))
    }

    /// A request whose answer is being made; [`Answering::done`] once it is made.
    /// Dropped before that, the client cancelled it.
    pub fn answering(self: &Arc<Self>) -> Answering {
        Answering(Some(Arc::clone(self)))
    }

    /// Resolves once the client cancelled more than half of its requests, past
    /// [`CANCEL_FLOOD_MIN_REQUESTS`].
    pub async fn cancel_flood(&self) {
        self.cancels.notified().await;
    }

    /// Bytes arrived with no request in flight: a request head has begun (unless one
    /// already had), and the header read timeout runs from now.
    pub fn head_begun(&self) {
        if self.active.load(Ordering::Acquire) == 0
            && self.head_since_ms.load(Ordering::Relaxed) == 0
        {
            self.head_since_ms
                .store(ms_since(self.epoch).saturating_add(1), Ordering::Relaxed);
        }
    }

    /// Resolves once the connection has been idle for its timeout (`first` before any
    /// request, `idle` after one), or, with `head` (HTTP/1), once a request head has
    /// taken longer than `head` to arrive ([`head_begun`](Self::head_begun)).
    ///
    /// A head may begin at any time, so with `head` it looks again at least every half
    /// of it: a slow head is cut off between 1 and 1.5 times `head` after it began, and
    /// no timer is armed or cancelled per request.
    pub async fn idle_expired(&self, first: Duration, idle: Duration, head: Option<Duration>) {
        loop {
            let timeout = if self.served.load(Ordering::Relaxed) {
                idle
            } else {
                first
            };
            let wait = if self.active.load(Ordering::Acquire) > 0 {
                timeout
            } else {
                let now = ms_since(self.epoch);
                let since = |ms: u64| Duration::from_millis(now.saturating_sub(ms));
                let idle_left =
                    timeout.saturating_sub(since(self.idle_since_ms.load(Ordering::Acquire)));
                let head_left = match (head, self.head_since_ms.load(Ordering::Relaxed)) {
                    (Some(head), begun) if begun > 0 => head.saturating_sub(since(begun - 1)),
                    _ => Duration::MAX,
                };
                let left = idle_left.min(head_left);
                if left.is_zero() {
                    return;
                }
                left
            };
            let wait = head.map_or(wait, |head| wait.min(head / 2));
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    /// Resolves once a response body has waited for between 1 and 1.5 times `limit`
    /// for the client to take its next bytes ([`Sending`]): the client reads nothing
    /// (an HTTP/1 socket never read, an HTTP/2 window left at zero).
    ///
    /// The clock advances every half of `limit`; a body counts in the bucket of the
    /// epoch in which it began to wait. Before the clock moves into a bucket, any body
    /// still counted there began to wait two epochs ago. No timer is armed per
    /// response and no clock is read per frame.
    pub async fn send_stalled(&self, limit: Duration) {
        let tick = (limit / 2).max(Duration::from_millis(1));
        loop {
            tokio::time::sleep(tick).await;
            let next = self.stall_epoch.load(Ordering::Acquire).wrapping_add(1);
            if self.waiting_in(next).load(Ordering::Acquire) > 0 {
                return;
            }
            self.stall_epoch.store(next, Ordering::Release);
        }
    }

    fn waiting_in(&self, epoch: u64) -> &AtomicUsize {
        let [a, b, c] = &self.waiting;
        match epoch % 3 {
            0 => a,
            1 => b,
            _ => c,
        }
    }

    /// A response body begins to wait for hyper; the epoch to end it with.
    fn wait_begins(&self) -> u64 {
        let epoch = self.stall_epoch.load(Ordering::Acquire);
        self.waiting_in(epoch).fetch_add(1, Ordering::AcqRel);
        epoch
    }

    fn wait_ends(&self, epoch: u64) {
        self.waiting_in(epoch).fetch_sub(1, Ordering::AcqRel);
    }

    /// Resolves when the listener chose this connection to make room.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }
}

/// A connection's socket that tells its slot when bytes arrive
/// ([`ConnSlot::head_begun`]); without a slot, just the socket.
#[derive(Debug)]
pub struct Watched<I> {
    io: I,
    slot: Option<Arc<ConnSlot>>,
}

impl<I> Watched<I> {
    pub fn new(io: I, slot: Option<Arc<ConnSlot>>) -> Watched<I> {
        Watched { io, slot }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if let (Poll::Ready(Ok(())), Some(slot)) = (&polled, &this.slot)
            && buf.filled().len() > before
        {
            slot.head_begun();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// A request in flight on a connection.
#[derive(Debug)]
pub struct Busy(Arc<ConnSlot>);

impl Drop for Busy {
    fn drop(&mut self) {
        let slot = &self.0;
        slot.idle_since_ms
            .store(ms_since(slot.epoch), Ordering::Release);
        slot.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A request's answer in the making (see [`ConnSlot::answering`]).
#[derive(Debug)]
pub struct Answering(Option<Arc<ConnSlot>>);

impl Answering {
    /// The answer was made: the request was not cancelled.
    pub fn done(mut self) {
        self.0 = None;
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        let Some(slot) = self.0.take() else {
            return;
        };
        let cancelled = slot.cancelled.fetch_add(1, Ordering::Relaxed) + 1;
        let requests = slot.requests.load(Ordering::Relaxed);
        if requests >= CANCEL_FLOOD_MIN_REQUESTS && cancelled.saturating_mul(2) > requests {
            slot.cancels.notify_one();
        }
    }
}

/// A response body that keeps its connection busy until it ends or is dropped, and
/// that counts as waiting ([`ConnSlot::send_stalled`]) from when it is handed to
/// hyper, and from each frame it gives, until hyper asks for more.
pub struct Sending<B> {
    inner: B,
    busy: Option<Busy>,
    /// The epoch in which it began to wait, while it waits.
    waiting: Option<u64>,
}

impl<B> Sending<B> {
    pub fn new(inner: B, busy: Busy) -> Sending<B> {
        let waiting = Some(busy.0.wait_begins());
        Sending {
            inner,
            busy: Some(busy),
            waiting,
        }
    }

    fn stop_waiting(&mut self) {
        if let (Some(epoch), Some(busy)) = (self.waiting.take(), &self.busy) {
            busy.0.wait_ends(epoch);
        }
    }
}

impl<B> hyper::body::Body for Sending<B>
where
    B: hyper::body::Body<Data = bytes::Bytes> + Unpin,
{
    type Data = bytes::Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, B::Error>>> {
        let this = self.get_mut();
        this.stop_waiting();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(_))) => {
                this.waiting = this.busy.as_ref().map(|busy| busy.0.wait_begins());
            }
            Poll::Ready(None) => this.busy = None,
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for Sending<B> {
    fn drop(&mut self) {
        self.stop_waiting();
    }
}

#[cfg(test)]
mod tests;
