//! The streaming leak guard of pass-through routes: a body wrapper that scans each
//! chunk as it passes to the upstream.
//!
//! Only the tail of a chunk that could start a card number is held back (the trailing
//! run of digits and separator-like bytes, at most [`MAX_TAIL`] bytes) and sent with
//! the next chunk, after the seam between the two was scanned. A chunk with no such
//! tail and no hit goes on as it came, without a copy. Pieces that only continue the
//! held tail (a body sent a byte at a time) are gathered, up to [`GATHER`] bytes,
//! and read together: read one by one, each would cost the whole tail again. On a
//! hit:
//!
//! - hits that are tokens this vault issued pass (the chunk waits for that check);
//! - `block`: the wrapper yields an error instead of the chunk, so the upstream request
//!   is aborted before the digits are sent, and the handler answers 400
//!   `card_number_detected` (see [`GuardOutcome`]);
//! - `detect`: logged masked (first six, last four), counted in
//!   `vaultgate_leak_guard_hits_total{route,mode}`, then forwarded.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};

use super::exposure::{self, HitDigits};
use crate::config::GuardMode;
use crate::net::body::BoxError;
use crate::rules::guard;
use crate::vault::Vault;

/// The most bytes held back from one chunk: a 19-digit card written with multi-byte
/// digits, short separator runs of multi-byte separators and the NULs the guard reads
/// as nothing beside every character (UTF-16, UTF-32) fits: 19 × 4 + 54 × 3 bytes of
/// characters and 72 × 3 NULs between them, 454 bytes.
pub const MAX_TAIL: usize = 512;

/// The most bytes of small pieces that continue a held run gathered before they are
/// read as one chunk ([`StreamGuard::poll_next`]).
const GATHER: usize = 8 * 1024;

/// The bytes of a chunk kept for [`StreamGuard::read_entities`]: one less than
/// `<!ENTITY`.
const ENTITY_SEAM: usize = 7;

/// What a route's guard needs, built once per route (and copied once per shard, see
/// [`super::ShardState`]).
#[derive(Clone, Debug)]
pub struct GuardCtx {
    pub route: Arc<str>,
    pub mode: GuardMode,
    pub vault: Arc<Vault>,
    /// `vaultgate_leak_guard_hits_total{route,mode}` for this route.
    pub hits: crate::metrics::Counter,
}

impl GuardCtx {
    /// Log and count hits that were let through (`detect` mode).
    pub fn report(&self, place: &'static str, masked: &[String]) {
        self.hits
            .increment(u64::try_from(masked.len()).unwrap_or(1));
        for m in masked {
            tracing::warn!(route = %self.route, place, card = %m, "card number detected; forwarded (detect mode)");
        }
    }

    /// Count hits that were refused (`block` mode).
    pub fn count_blocked(&self, place: &'static str) {
        self.hits.increment(1);
        tracing::warn!(route = %self.route, place, "card number detected; request refused");
    }
}

/// What the handler learns from a guarded body after the upstream send: whether the
/// guard blocked it, why when it was not a card (a multipart part it cannot read),
/// and the rest of the client's body (to drain before answering).
#[derive(Debug)]
pub struct GuardOutcome<B> {
    blocked: AtomicBool,
    rest: Mutex<Option<B>>,
    refused: Mutex<Option<crate::Error>>,
}

impl<B> GuardOutcome<B> {
    pub fn new() -> Arc<GuardOutcome<B>> {
        Arc::new(GuardOutcome {
            blocked: AtomicBool::new(false),
            rest: Mutex::new(None),
            refused: Mutex::new(None),
        })
    }

    /// The error to answer with, once blocked: the reason a part was refused, or a
    /// card found.
    pub fn error(&self) -> crate::Error {
        let reason = match self.refused.lock() {
            Ok(mut r) => r.take(),
            Err(p) => p.into_inner().take(),
        };
        reason.unwrap_or_else(|| crate::Error::LeakRejected("the request body".to_owned()))
    }

    fn refuse(&self, reason: crate::Error, rest: Option<B>) {
        match self.refused.lock() {
            Ok(mut r) => *r = Some(reason),
            Err(p) => *p.into_inner() = Some(reason),
        }
        self.block(rest);
    }

    /// Whether the guard stopped the body.
    pub fn blocked(&self) -> bool {
        self.blocked.load(Ordering::Acquire)
    }

    /// The unread rest of the client's body, once blocked.
    pub fn take_rest(&self) -> Option<B> {
        match self.rest.lock() {
            Ok(mut r) => r.take(),
            Err(p) => p.into_inner().take(),
        }
    }

    fn block(&self, rest: Option<B>) {
        match self.rest.lock() {
            Ok(mut r) => *r = rest,
            Err(p) => *p.into_inner() = rest,
        }
        self.blocked.store(true, Ordering::Release);
    }
}

/// The error a blocked body ends with (never sent anywhere; the handler answers 400).
#[derive(Debug)]
pub struct CardBlocked;

impl std::fmt::Display for CardBlocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a card number was found in a pass-through body")
    }
}

impl std::error::Error for CardBlocked {}

type Check = Pin<Box<dyn Future<Output = bool> + Send>>;

/// A chunk with hits, waiting for the "are these our tokens" check.
struct Pending {
    chunk: Bytes,
    masked: Vec<String>,
    check: Check,
}

/// The scanning state that does not depend on the body type (also fuzzed).
#[derive(Default)]
pub struct TailScanner {
    /// Bytes held back from earlier chunks, not yet emitted.
    tail: Bytes,
    /// Scratch: the tail and the head of the next chunk, contiguous.
    seam: Vec<u8>,
    /// The hits found with escapes decoded in the last chunk (the tail is decoded
    /// again with the next one).
    reported: Vec<HitDigits>,
}

impl TailScanner {
    /// The digits of every hit that `chunk` completes: in the chunk, or across the
    /// seam with the held tail; and, when either holds an escape, in the two with
    /// their escapes decoded ([`exposure::decoded_escapes`]), as a backend decoding a
    /// JSON string or a form value would read them.
    pub fn hits(&mut self, chunk: &[u8], out: &mut Vec<HitDigits>) {
        let mut raw = Vec::new();
        // The run that begins the chunk continues the held tail: it is scanned whole,
        // from the tail's start, in the seam. (Unless it is longer than the seam.)
        let mut chunk_from = 0;
        if !self.tail.is_empty() {
            let head = chunk.get(..chunk.len().min(MAX_TAIL)).unwrap_or(chunk);
            let boundary = self.tail.len();
            // The run that crosses the boundary ends where the chunk's first run does.
            let seam_limit = match head.iter().position(|b| !held_like(*b)) {
                Some(end) => {
                    chunk_from = end;
                    boundary + end
                }
                None => usize::MAX,
            };
            self.seam.clear();
            self.seam.extend_from_slice(&self.tail);
            self.seam.extend_from_slice(head);
            let seam = &self.seam;
            // Hits before the boundary were found with the earlier chunk.
            let crosses = |r: &std::ops::Range<usize>| r.end > boundary && r.start < seam_limit;
            read_text(seam, crosses, |_| true, out, &mut raw);
        }
        // A chunk that cannot hold a hit is passed over at once. Its leading run,
        // read above from the tail's start, is out of context here: not a hit as
        // written (which would hide the same digits read with escapes decoded).
        let own = |r: &std::ops::Range<usize>| r.start >= chunk_from;
        read_text(chunk, own, own, out, &mut raw);
        self.decoded_hits(chunk, &raw, out);
    }

    /// The hits of the held tail and `chunk` read with their escapes decoded, other
    /// than those read as they are (`raw`, which may be tokens of ours) and those
    /// reported with the chunk before.
    fn decoded_hits(&mut self, chunk: &[u8], raw: &[HitDigits], out: &mut Vec<HitDigits>) {
        if !exposure::has_escape(chunk) && !exposure::has_escape(&self.tail) {
            self.reported.clear();
            return;
        }
        let mut joined = zeroize::Zeroizing::new(Vec::with_capacity(self.tail.len() + chunk.len()));
        joined.extend_from_slice(&self.tail);
        joined.extend_from_slice(chunk);
        let mut now = Vec::new();
        for hit in exposure::escaped_hits(&joined) {
            let seen = |list: &[HitDigits]| exposure::among(&hit, list);
            if !seen(raw) && !seen(&self.reported) && !seen(&now) {
                out.push(hit.clone());
            }
            now.push(hit);
        }
        self.reported = now;
    }

    /// Whether all of `chunk` continues the run held back: it would be held whole.
    pub fn continues_run(&self, chunk: &[u8]) -> bool {
        !self.tail.is_empty() && chunk.iter().all(|b| held_like(*b))
    }

    /// Let a clean chunk through: returns up to two parts to emit in order (the held
    /// tail, then the chunk up to its own new tail) and holds back the new tail.
    pub fn pass(&mut self, chunk: Bytes) -> (Option<Bytes>, Option<Bytes>) {
        if chunk.len() <= MAX_TAIL && self.continues_run(&chunk) {
            // The whole chunk continues the held run (a body sent a few bytes at a
            // time): the run grows across chunks, so join it.
            let mut joined = BytesMut::with_capacity(self.tail.len() + chunk.len());
            joined.extend_from_slice(&self.tail);
            joined.extend_from_slice(&chunk);
            let mut joined = joined.freeze();
            let cut = tail_start(&joined);
            self.tail = joined.split_off(cut);
            return (non_empty(joined), None);
        }
        let mut chunk = chunk;
        let new_tail = chunk.split_off(tail_start(&chunk));
        let held = std::mem::replace(&mut self.tail, new_tail);
        (non_empty(held), non_empty(chunk))
    }

    /// The held tail, at the end of the body.
    pub fn finish(&mut self) -> Option<Bytes> {
        non_empty(std::mem::take(&mut self.tail))
    }

    /// Bytes held back right now.
    pub fn held(&self) -> usize {
        self.tail.len()
    }
}

/// The hits of `text` and the cards its number literals denote (as a JSON parser
/// reads them: a 16-digit integer part and `.9` is the double of the integer after
/// it, which may be a card) that `new` says were not found before, onto `out`; the
/// hits `in_context` says were read in their context onto `raw` (the hits as
/// written). A literal is held back whole with a possible card's tail (digits, `.`,
/// `e`, signs), so one cut between chunks is read in the seam.
fn read_text(
    text: &[u8],
    new: impl Fn(&std::ops::Range<usize>) -> bool,
    in_context: impl Fn(&std::ops::Range<usize>) -> bool,
    out: &mut Vec<HitDigits>,
    raw: &mut Vec<HitDigits>,
) {
    let mut denoted = Vec::new();
    guard::scan_hits_and_literals(
        text,
        |hit| {
            let digits = exposure::digits(text, hit);
            if new(&hit.range) {
                out.push(digits.clone());
            }
            if in_context(&hit.range) {
                raw.push(digits);
            }
        },
        |range, digits| {
            if new(&range) {
                denoted.push(HitDigits::denoted(digits));
            }
        },
    );
    out.append(&mut denoted);
}

fn non_empty(b: Bytes) -> Option<Bytes> {
    (!b.is_empty()).then_some(b)
}

/// Where the trailing run that could start a card number begins: the last bytes that
/// are digits, separators, non-ASCII (a multi-byte digit or space) or part of an
/// escape that may spell one ([`held_like`]), at most [`MAX_TAIL`] of them.
/// `chunk.len()` (nothing held) when that run holds no digit, no non-ASCII byte and no
/// escape's first byte.
pub fn tail_start(chunk: &[u8]) -> usize {
    let mut start = chunk.len();
    let mut relevant = false;
    let floor = chunk.len().saturating_sub(MAX_TAIL);
    while start > floor {
        let Some(&b) = chunk.get(start - 1) else {
            break;
        };
        if !held_like(b) {
            break;
        }
        relevant |= b.is_ascii_digit() || b >= 0x80 || matches!(b, b'\\' | b'%' | b'&' | b'<');
        start -= 1;
    }
    if relevant { start } else { chunk.len() }
}

/// Whether a byte may be part of a card number as written: a digit, a separator, or
/// part of a multi-byte character (a Unicode digit or space).
/// The ASCII separators are the guard's own (`digits::is_separator`), so the two
/// cannot drift apart (a form feed was one until the fuzzer found it missing here).
fn run_like(b: u8) -> bool {
    crate::rules::digits::byte_class(b) != crate::rules::digits::ByteClass::Other
        || matches!(b, b'+' | b':')
}

/// [`run_like`], or part of an escape that may spell a digit or a separator
/// (`\u0034`, `\x34`, `\t`, `%34`, `%u0034`, `&#52;`, `&#x34;`, `&ndash;`): held back
/// with a possible card's tail, so that an escape split between chunks, and a run of
/// escaped digits across them, is decoded whole. (Any ASCII letter, for the names of
/// character references; and the bytes of XML markup a parser drops, `<![CDATA[`,
/// `<!-- -->`, `<? ?>`.)
fn held_like(b: u8) -> bool {
    run_like(b)
        || b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'\\' | b'%' | b'&' | b'#' | b';' | b'<' | b'!' | b'[' | b']' | b'>' | b'?'
        )
}

/// A request body scanned as it streams; see the module docs.
pub struct StreamGuard<B> {
    inner: Option<B>,
    ctx: Arc<GuardCtx>,
    outcome: Arc<GuardOutcome<B>>,
    scanner: TailScanner,
    /// A multipart body's header blocks, read as they pass.
    heads: Option<crate::codec::PartHeads>,
    queued: Option<Frame<Bytes>>,
    pending: Option<Pending>,
    found: Vec<HitDigits>,
    /// The last bytes of the body so far ([`ENTITY_SEAM`]).
    seen: smallvec::SmallVec<[u8; ENTITY_SEAM]>,
    /// An XML declaration the body so far starts but does not finish
    /// ([`crate::codec::xml_decl_seam`]; usually empty).
    decl: Vec<u8>,
    /// Whether the body is UTF-16 or UTF-32 text with a character the guard does not
    /// read ([`crate::codec::WidthWatch`]).
    width: crate::codec::WidthWatch,
    /// A wide body read with its NULs dropped (its text, all ASCII), escapes and all.
    narrow: TailScanner,
    /// The end of the body, its trailers or an error, met while gathering pieces
    /// ([`Self::poll_next`]): handled after the gathered chunk.
    after: Option<Next>,
    /// Pieces that continue the held run, not read yet ([`Self::poll_next`]).
    gathered: BytesMut,
}

/// What the body yields next, with small pieces gathered ([`StreamGuard::poll_next`]).
enum Next {
    Data(Bytes),
    Trailers(Frame<Bytes>),
    End,
    Failed(BoxError),
}

impl<B> StreamGuard<B> {
    /// `heads`: the watch over a multipart body's header blocks, if it is one
    /// ([`crate::codec::PartHeads::for_header`]); `width`: the watch over its encoding
    /// ([`crate::codec::WidthWatch::for_header`]).
    pub(crate) fn new(
        inner: B,
        ctx: Arc<GuardCtx>,
        outcome: Arc<GuardOutcome<B>>,
        heads: Option<crate::codec::PartHeads>,
        width: crate::codec::WidthWatch,
    ) -> StreamGuard<B> {
        StreamGuard {
            inner: Some(inner),
            ctx,
            outcome,
            heads,
            scanner: TailScanner::default(),
            queued: None,
            pending: None,
            found: Vec::new(),
            seen: smallvec::SmallVec::new(),
            decl: Vec::new(),
            width,
            narrow: TailScanner::default(),
            after: None,
            gathered: BytesMut::new(),
        }
    }

    /// Refuse (in `block` mode) a body in UTF-16 or UTF-32 with no declared charset
    /// that holds a character other than ASCII, which the guard does not read there
    /// ([`crate::codec::WidthWatch`]), before the chunk that completes it is sent on.
    fn read_width(&mut self, chunk: &Bytes) -> Result<(), BoxError> {
        if !self.width.feed(chunk) || self.ctx.mode != GuardMode::Block {
            return Ok(());
        }
        let reason = crate::codec::wide_refusal();
        tracing::warn!(route = %self.ctx.route, error = %reason, "body refused");
        self.outcome.refuse(reason, self.inner.take());
        Err(Box::new(CardBlocked))
    }

    /// Read a multipart body's header blocks on to the end of `chunk` (`None`: the end
    /// of the body). A block the guard cannot read (a transfer encoding, a charset, a
    /// second Content-Disposition) blocks the body in `block` mode, with that reason;
    /// `detect` logs it and stops reading blocks.
    fn read_heads(&mut self, chunk: Option<&Bytes>) -> Result<(), BoxError> {
        let Some(heads) = self.heads.as_mut() else {
            return Ok(());
        };
        let read = match chunk {
            Some(chunk) => heads.feed(chunk),
            None => heads.finish(),
        };
        let Err(reason) = read else {
            return Ok(());
        };
        self.heads = None;
        if self.ctx.mode == GuardMode::Block {
            tracing::warn!(route = %self.ctx.route, error = %reason, "multipart body refused");
            self.outcome.refuse(reason, self.inner.take());
            return Err(Box::new(CardBlocked));
        }
        tracing::warn!(route = %self.ctx.route, error = %reason, "a multipart part the guard cannot read was forwarded (detect mode)");
        Ok(())
    }

    /// Refuse (in `block` mode) a body that declares an XML entity
    /// ([`crate::codec::declares_xml_entity`]) or an XML encoding the guard cannot
    /// read ([`Self::declares_encoding`]), before the chunk that holds the
    /// declaration is sent on; `seen` keeps the last bytes for an entity declaration
    /// cut between chunks.
    fn read_entities(&mut self, chunk: &Bytes) -> Result<(), BoxError> {
        // Every declaration starts with `<`: with none in the chunk, none in the
        // last bytes before it and no declaration left unfinished, nothing starts,
        // continues or ends here (the usual JSON or form chunk, in one pass).
        if self.decl.is_empty()
            && memchr::memchr(b'<', &self.seen).is_none()
            && memchr::memchr(b'<', chunk).is_none()
        {
            // The last bytes then hold no `<`: as good as none.
            self.seen.clear();
            return Ok(());
        }
        let declared = crate::codec::declares_xml_entity(&self.seen, chunk);
        let keep = chunk.len().min(ENTITY_SEAM);
        if keep == ENTITY_SEAM {
            self.seen.clear();
        } else {
            let drop = (self.seen.len() + keep).saturating_sub(ENTITY_SEAM);
            self.seen.drain(..drop.min(self.seen.len()));
        }
        self.seen
            .extend_from_slice(chunk.get(chunk.len() - keep..).unwrap_or_default());
        if self.ctx.mode != GuardMode::Block {
            return Ok(());
        }
        let reason = if declared {
            crate::codec::entity_refusal()
        } else if self.declares_encoding(chunk) {
            crate::codec::encoding_refusal()
        } else {
            return Ok(());
        };
        tracing::warn!(route = %self.ctx.route, error = %reason, "body refused");
        self.outcome.refuse(reason, self.inner.take());
        Err(Box::new(CardBlocked))
    }

    /// Whether the body, on to the end of `chunk`, declares an XML encoding the guard
    /// cannot read ([`crate::codec::declares_xml_encoding`]); a declaration cut
    /// between chunks is kept in `decl` and read whole with the next.
    fn declares_encoding(&mut self, chunk: &Bytes) -> bool {
        if self.decl.is_empty() {
            let declared = crate::codec::declares_xml_encoding(chunk);
            self.decl
                .extend_from_slice(crate::codec::xml_decl_seam(chunk));
            return declared;
        }
        let mut joined = std::mem::take(&mut self.decl);
        joined.extend_from_slice(chunk);
        let declared = crate::codec::declares_xml_encoding(&joined);
        self.decl
            .extend_from_slice(crate::codec::xml_decl_seam(&joined));
        declared
    }

    /// The next piece of the body to read. A piece that only continues the run the
    /// scanner holds back ([`TailScanner::continues_run`]) is not read on its own:
    /// it would be held back whole anyway, and reading it would cost the held tail
    /// again, so a body sent a byte per chunk (or per HTTP/2 DATA frame) would cost
    /// the tail for every byte. Such pieces are gathered, up to [`GATHER`] bytes,
    /// and read with the first piece that does not continue the run, or at the end
    /// of the body (the end, trailers or an error then come next time).
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Next>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<BoxError>,
    {
        if let Some(next) = self.after.take() {
            return Poll::Ready(next);
        }
        loop {
            let next = match self.inner.as_mut() {
                None => Next::End,
                Some(inner) => match ready!(Pin::new(inner).poll_frame(cx)) {
                    None => Next::End,
                    Some(Err(e)) => Next::Failed(e.into()),
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => Next::Data(data),
                        Err(trailers) => Next::Trailers(trailers),
                    },
                },
            };
            let data = match next {
                Next::Data(data) => data,
                other if self.gathered.is_empty() => return Poll::Ready(other),
                other => {
                    self.after = Some(other);
                    return Poll::Ready(Next::Data(self.gathered.split().freeze()));
                }
            };
            if self.gathered.len() + data.len() <= GATHER && self.scanner.continues_run(&data) {
                self.gathered.extend_from_slice(&data);
                continue;
            }
            if self.gathered.is_empty() {
                return Poll::Ready(Next::Data(data));
            }
            self.gathered.extend_from_slice(&data);
            return Poll::Ready(Next::Data(self.gathered.split().freeze()));
        }
    }

    /// Emit a clean chunk (minus its new tail); `None` when all of it was held back.
    fn pass(&mut self, chunk: Bytes) -> Option<Frame<Bytes>> {
        match self.scanner.pass(chunk) {
            (Some(first), second) => {
                self.queued = second.map(Frame::data);
                Some(Frame::data(first))
            }
            (None, Some(only)) => Some(Frame::data(only)),
            (None, None) => None,
        }
    }
}

impl<B> Body for StreamGuard<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            if let Some(frame) = this.queued.take() {
                return Poll::Ready(Some(Ok(frame)));
            }
            if let Some(pending) = &mut this.pending {
                let ours = ready!(pending.check.as_mut().poll(cx));
                let Some(Pending { chunk, masked, .. }) = this.pending.take() else {
                    continue;
                };
                if !ours {
                    if this.ctx.mode == GuardMode::Block {
                        this.ctx.count_blocked("body");
                        this.outcome.block(this.inner.take());
                        return Poll::Ready(Some(Err(Box::new(CardBlocked))));
                    }
                    this.ctx.report("body", &masked);
                }
                if let Some(frame) = this.pass(chunk) {
                    return Poll::Ready(Some(Ok(frame)));
                }
                continue;
            }
            if this.inner.is_none() && this.after.is_none() {
                return Poll::Ready(None);
            }
            let chunk = match ready!(this.poll_next(cx)) {
                Next::End => {
                    if let Err(e) = this.read_heads(None) {
                        return Poll::Ready(Some(Err(e)));
                    }
                    this.inner = None;
                    return Poll::Ready(this.scanner.finish().map(|t| Ok(Frame::data(t))));
                }
                Next::Failed(e) => return Poll::Ready(Some(Err(e))),
                Next::Data(chunk) => chunk,
                Next::Trailers(trailers) => {
                    if let Err(e) = this.read_heads(None) {
                        return Poll::Ready(Some(Err(e)));
                    }
                    match this.scanner.finish() {
                        Some(tail) => {
                            this.queued = Some(trailers);
                            return Poll::Ready(Some(Ok(Frame::data(tail))));
                        }
                        None => return Poll::Ready(Some(Ok(trailers))),
                    }
                }
            };
            if let Err(e) = this.read_heads(Some(&chunk)) {
                return Poll::Ready(Some(Err(e)));
            }
            if let Err(e) = this.read_entities(&chunk) {
                return Poll::Ready(Some(Err(e)));
            }
            if let Err(e) = this.read_width(&chunk) {
                return Poll::Ready(Some(Err(e)));
            }
            this.found.clear();
            this.scanner.hits(&chunk, &mut this.found);
            if this.width.is_wide() {
                // UTF-16 or UTF-32 of ASCII (any other character refused it above):
                // its text is its bytes without their NULs.
                let text: Bytes = chunk.iter().copied().filter(|b| *b != 0).collect();
                this.narrow.hits(&text, &mut this.found);
                let _ = this.narrow.pass(text);
            }
            if this.found.is_empty() {
                if let Some(frame) = this.pass(chunk) {
                    return Poll::Ready(Some(Ok(frame)));
                }
                continue;
            }
            let hits = std::mem::take(&mut this.found);
            let masked = hits.iter().map(|d| exposure::mask(d)).collect();
            let vault = Arc::clone(&this.ctx.vault);
            this.pending = Some(Pending {
                chunk,
                masked,
                check: Box::pin(async move { exposure::all_ours(&vault, &hits).await }),
            });
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
            && self.after.is_none()
            && self.gathered.is_empty()
            && self.queued.is_none()
            && self.pending.is_none()
            && self.scanner.held() == 0
    }

    fn size_hint(&self) -> SizeHint {
        let held = self.scanner.held()
            + self.gathered.len()
            + self
                .queued
                .as_ref()
                .and_then(Frame::data_ref)
                .map_or(0, Bytes::len)
            + self.pending.as_ref().map_or(0, |p| p.chunk.len());
        let held = u64::try_from(held).unwrap_or(u64::MAX);
        let inner = match &self.inner {
            Some(inner) => inner.size_hint(),
            None => SizeHint::with_exact(0),
        };
        // Built afresh: moving the lower bound of an exact hint first would cross its
        // upper bound.
        let mut hint = SizeHint::new();
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(held));
        }
        hint.set_lower(inner.lower().saturating_add(held));
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> (Vec<u8>, usize) {
        let mut s = TailScanner::default();
        let mut out = Vec::new();
        let mut hits = 0;
        for c in chunks {
            let mut found = Vec::new();
            s.hits(c, &mut found);
            hits += found.len();
            let (a, b) = s.pass(Bytes::copy_from_slice(c));
            out.extend(a.iter().chain(b.iter()).flat_map(|x| x.to_vec()));
        }
        out.extend(s.finish().unwrap_or_default());
        (out, hits)
    }

    #[test]
    fn tails_hold_only_digit_runs() {
        assert_eq!(tail_start(b"{\"a\":\"x\"}"), 9);
        assert_eq!(tail_start(b"\"x\" 4242 42"), 3);
        // Letters may belong to an escape (`\\u00`, `\\t`) or a reference's name
        // (`&ndash;`): held too.
        assert_eq!(tail_start(b"\"x\"\\u0034 42"), 3);
        assert_eq!(tail_start(b"\"x\"4242&nda"), 3);
        // Nothing is held without a digit, an escape's first byte or a non-ASCII byte.
        assert_eq!(tail_start(b"abc   "), 6);
        assert_eq!(tail_start(&[b'1'; 1000]), 1000 - MAX_TAIL);
    }

    /// The chunk's leading run read alone (`4242…` without the held `%43` before it)
    /// is not a hit as written: the same digits read with the escape decoded
    /// (`%43` is `C`, which ends the 21-digit identifier) are found (a fuzz finding).
    #[test]
    fn a_leading_run_out_of_context_hides_no_decoded_hit() {
        let (out, hits) = run(&[
            b"\0\\\x0054@222222222222424%43",
            b"4242999999950424242\x1f\0",
        ]);
        assert_eq!(
            out,
            b"\0\\\x0054@222222222222424%434242999999950424242\x1f\0"
        );
        assert!(hits >= 1);
    }

    #[test]
    fn finds_cards_across_chunks_and_keeps_bytes() {
        let body = b"{\"note\":\"pay with 4242 4242 4242 4242 please\"}";
        for split in 1..body.len() {
            let (a, b) = body.split_at(split);
            let (out, hits) = run(&[a, b]);
            assert_eq!(out, body);
            // A prefix of a card may itself look like one (Luhn-valid, 13+ digits).
            assert!(hits >= 1, "split at {split}");
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        let (out, hits) = run(&bytes);
        assert_eq!(out.as_slice(), &body[..]);
        assert!(hits >= 1);
        let (out, hits) = run(&[b"no digits here", b" nor here"]);
        assert_eq!((out.as_slice(), hits), (&b"no digits here nor here"[..], 0));
    }

    #[test]
    fn every_chunking_finds_what_the_whole_scan_finds() {
        let bodies: [&[u8]; 8] = [
            b"{\"a\":\"4242 4242 4242 4242\",\"b\":[378282246310005]}",
            b"id 5 4111-1111-1111-1111 9 and 99 4000056655665556 end",
            b"1234567890123456789012345 4242424242424242",
            b"\xef\xbc\x91 12 34 5555555555554444\n\n",
            // Escapes a backend decodes, split anywhere.
            b"{\"pan\":\"\\u0034\\u0032\\u0034\\u0032\\u0034\\u0032\\u0034\\u0032\\u0034\\u0032\\u0034\\u0032\\u0034\\u0032\\u0034\\u0032\"}",
            b"cardNumber=%34%32%34%32%34%32%34%32%34%32%34%32%34%32%34%32&x=1",
            b"<p>&#52;&#50;&#52;&#50;&#x34;&#x32;&#x34;&#x32;424242424242</p>",
            b"{\"pan\":\"\\u0034242424242424242\",\"n\":\"%u0034242424242424242\"}",
        ];
        for body in bodies {
            for step in 0..64u8 {
                let mut data = vec![step];
                data.extend_from_slice(body);
                crate::fuzzing::stream_guard(&data);
            }
        }
    }

    /// Octal escapes (`\64`, `\064`, as Python's `unicode_escape`, C and PHP read
    /// them) are decoded on a pass-through body too, one split between chunks
    /// included: the held tail keeps `\` and digits.
    #[test]
    fn octal_escaped_cards_are_found_across_chunks() {
        let bodies: [&[u8]; 2] = [
            br#"{"x":"\64\62\64\62\64\62\64\62\64\62\64\62\64\62\64\62"}"#,
            // `\064` then `2` is `42`, `\040` a space.
            br#"note: 42\0642\04042\0642\04042\0642\04042\0642 thanks"#,
        ];
        for body in bodies {
            assert!(run(&[body]).1 >= 1);
            found_however_cut(body);
        }
    }

    /// `body`'s card is found, and its bytes kept, cut in two anywhere or sent a byte
    /// at a time.
    fn found_however_cut(body: &[u8]) {
        for split in 1..body.len() {
            let (a, b) = body.split_at(split);
            let (out, hits) = run(&[a, b]);
            assert_eq!(out, body);
            assert!(hits >= 1, "split at {split}");
        }
        let one_byte: Vec<&[u8]> = body.chunks(1).collect();
        assert!(run(&one_byte).1 >= 1);
    }

    /// A card spelled with escapes is found however the body is cut; one of our
    /// tokens written plainly next to an escape is not read again as decoded.
    #[test]
    fn escaped_cards_are_found_across_chunks() {
        let body: &[u8] =
            b"{\"pan\":\"\\u0034\\u0032\\u0034\\u0032\\u0034\\u0032\\u0034\\u0032\\u00342424242\"}";
        found_however_cut(body);
        let mut s = TailScanner::default();
        let mut found = Vec::new();
        s.hits(
            b"{\"token\":\"4242424242424242\",\"note\":\"50%25 \\u00e9\"}",
            &mut found,
        );
        assert_eq!(found.len(), 1);
        assert!(found[0].is_plain(), "the plain hit, once");
        // Other digits, escaped: read as decoded, so never taken for a token.
        let mut found = Vec::new();
        s.hits(b"{\"note\":\"\\u0034111111111111111\"}", &mut found);
        assert_eq!(found.len(), 1);
        assert!(!found[0].is_plain());
        assert_eq!(&*found[0], "4111111111111111");
    }

    /// `text` as UTF-16 or UTF-32 bytes, either byte order.
    fn wide(text: &str, unit: usize, le: bool) -> Vec<u8> {
        text.chars()
            .flat_map(|c| {
                let v = u32::from(c);
                let b = if le { v.to_le_bytes() } else { v.to_be_bytes() };
                match (unit, le) {
                    (2, true) => b[..2].to_vec(),
                    (2, false) => b[2..].to_vec(),
                    _ => b.to_vec(),
                }
            })
            .collect()
    }

    /// Cards in UTF-16 and UTF-32 (the guard reads their NULs as nothing) are found
    /// however the body is cut, the longest such card (19 digits, three separators
    /// between every two) included: the held tail holds it whole.
    #[test]
    fn nul_interleaved_cards_are_found_across_chunks() {
        let mut longest: Vec<char> = Vec::new();
        // 19 digits: a Visa prefix, Luhn-completed.
        let mut digits: Vec<u32> = "424242424242424242"
            .chars()
            .filter_map(|c| c.to_digit(10))
            .collect();
        let sum: u32 = digits
            .iter()
            .rev()
            .enumerate()
            .map(|(i, d)| {
                if i % 2 == 0 {
                    (d * 2) % 9 + u32::from(*d == 9) * 9
                } else {
                    *d
                }
            })
            .sum();
        digits.push((10 - sum % 10) % 10);
        for (i, d) in digits.iter().enumerate() {
            if i > 0 {
                longest.extend([' ', '-', ' ']);
            }
            longest.push(char::from_digit(*d, 10).unwrap());
        }
        let longest: String = longest.into_iter().collect();
        assert!(guard::is_card_shaped(
            longest
                .bytes()
                .filter(u8::is_ascii_digit)
                .collect::<Vec<_>>()
                .as_slice()
        ));
        for card in [
            "4242 - 4242 - 4242 - 4242",
            "378282246310005",
            longest.as_str(),
        ] {
            let text = format!("{{\"note\":\"{card}\"}}");
            for (unit, le) in [(2, true), (2, false), (4, true), (4, false)] {
                let body = wide(&text, unit, le);
                for split in 1..body.len() {
                    let (a, b) = body.split_at(split);
                    let (out, hits) = run(&[a, b]);
                    assert_eq!(out, body);
                    assert!(hits >= 1, "{card} unit {unit} le {le} split at {split}");
                }
                for size in [1, 3, 7] {
                    let chunks: Vec<&[u8]> = body.chunks(size).collect();
                    let (out, hits) = run(&chunks);
                    assert_eq!(out, body);
                    assert!(
                        hits >= 1,
                        "{card} unit {unit} le {le} in {size}-byte chunks"
                    );
                }
            }
        }
        // Text without digits in UTF-16 passes, nothing found.
        let clean = wide("{\"note\":\"hello - world\"}", 2, true);
        let (out, hits) = run(&clean.chunks(5).collect::<Vec<_>>());
        assert_eq!((out, hits), (clean.clone(), 0));
    }

    #[test]
    fn clean_chunks_go_on_without_a_copy() {
        let mut s = TailScanner::default();
        let chunk = Bytes::from_static(b"{\"id\":12,\"x\":\"y\"}");
        let ptr = chunk.as_ptr();
        let (held, rest) = s.pass(chunk);
        assert!(held.is_none());
        assert_eq!(rest.unwrap().as_ptr(), ptr);
    }
}
