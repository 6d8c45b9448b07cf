//! Request ids and W3C trace context: taken from the client when well-formed, made up
//! otherwise, sent upstream and back.
//!
//! An id is logged and forwarded, so only a sane one is taken: at most 128 visible
//! ASCII characters for `x-request-id`, the exact `traceparent` shape (version `00`,
//! non-zero ids), and neither may hold a card-shaped number (the leak guard's
//! definition). Ids made up here never hold one either: random hex has a run of
//! digits that passes the Luhn check and a network's prefix about once a thousand ids,
//! which a downstream scanner would flag.

use data_encoding::HEXLOWER;
use http::{HeaderMap, HeaderName, HeaderValue};
use rand::RngCore as _;

use crate::rules::guard::shows_card;

/// `x-request-id`.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `traceparent` (W3C Trace Context).
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The longest `x-request-id` taken from a client.
pub const MAX_REQUEST_ID: usize = 128;

/// The ids of one request.
#[derive(Clone, Debug)]
pub struct RequestIds {
    /// The client's `x-request-id`, or a new UUIDv7.
    pub request_id: HeaderValue,
    /// The `traceparent` forwarded: the client's, or a new one.
    traceparent: HeaderValue,
}

impl RequestIds {
    /// Take the ids from `headers` (or make new ones) and leave exactly one sane
    /// `x-request-id` and `traceparent` in them, to be forwarded.
    pub fn take(headers: &mut HeaderMap) -> RequestIds {
        let request_id = one_sane(headers, REQUEST_ID, sane_id, new_request_id);
        let traceparent = one_sane(
            headers,
            TRACEPARENT,
            |v| v.to_str().ok().and_then(trace_id_of).is_some(),
            // Start a trace: a new trace id and parent id, sampled flag off.
            || header_value(made_up(new_traceparent)),
        );
        RequestIds {
            request_id,
            traceparent,
        }
    }

    /// The request id as text (it is visible ASCII).
    pub fn request_id(&self) -> &str {
        self.request_id.to_str().unwrap_or("-")
    }

    /// The 32 hex digits of the trace id.
    pub fn trace_id(&self) -> &str {
        // `00-` then the trace id: checked or made so.
        self.traceparent
            .to_str()
            .ok()
            .and_then(|tp| tp.get(3..35))
            .unwrap_or("-")
    }

    /// Put the request id on a response.
    pub fn answer(&self, headers: &mut HeaderMap) {
        headers.insert(REQUEST_ID, self.request_id.clone());
    }
}

/// One request's access line (`vaultgate::access`, at info): the same fields from
/// every listener, each leaving out what it does not know. Names, templates, sizes
/// and times only: never a path, query, header or body.
#[derive(Debug, Default)]
pub struct AccessLine<'a> {
    /// `proxy`, `api` or `outbound`.
    pub listener: &'static str,
    /// The route (or endpoint) that served the request; `-` when none did.
    pub route: Option<&'a str>,
    pub method: Option<&'a http::Method>,
    /// The route's path template, never the path.
    pub path: Option<&'a str>,
    pub status: u16,
    pub upstream_status: Option<u16>,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
    pub latency: std::time::Duration,
    pub upstream_latency: Option<std::time::Duration>,
    /// The authenticated client (the API).
    pub client: Option<&'a str>,
    /// Values tokenized or revealed (the API).
    pub values: Option<usize>,
    /// `ok` or the error code.
    pub outcome: Option<&'a str>,
}

impl AccessLine<'_> {
    /// Write the line for the request `ids` name.
    pub fn write(&self, ids: &RequestIds) {
        if crate::logging::fields_are_plain() {
            self.write_plain(ids);
        } else {
            self.write_fields(ids);
        }
    }

    /// The line as its fields, one by one.
    fn write_fields(&self, ids: &RequestIds) {
        tracing::info!(
            target: "vaultgate::access",
            request_id = ids.request_id(),
            trace_id = ids.trace_id(),
            listener = self.listener,
            route = self.route.unwrap_or("-"),
            method = self.method.map(method_text),
            path = self.path,
            status = self.status,
            upstream_status = self.upstream_status,
            bytes_in = self.bytes_in,
            bytes_out = self.bytes_out,
            latency_us = micros(self.latency),
            upstream_latency_us = self.upstream_latency.map(micros),
            client = self.client,
            values = self.values,
            outcome = self.outcome,
            "access"
        );
    }

    /// The same line, put together here and logged as one message: a dispatch per
    /// field was most of the line's cost. It must read as [`Self::write_fields`]
    /// does (a test holds the two to the same bytes).
    fn write_plain(&self, ids: &RequestIds) {
        // Put together only a line that is logged (below `info`, none is).
        if !tracing::enabled!(target: "vaultgate::access", tracing::Level::INFO) {
            return;
        }
        crate::logging::plain_line(
            "access",
            |f| {
                f.str("request_id", ids.request_id());
                f.str("trace_id", ids.trace_id());
                f.str("listener", self.listener);
                f.str("route", self.route.unwrap_or("-"));
                f.opt_str("method", self.method.map(method_text));
                f.opt_str("path", self.path);
                f.int("status", self.status);
                f.opt_int("upstream_status", self.upstream_status);
                f.opt_int("bytes_in", self.bytes_in);
                f.opt_int("bytes_out", self.bytes_out);
                f.int("latency_us", micros(self.latency));
                f.opt_int("upstream_latency_us", self.upstream_latency.map(micros));
                f.opt_str("client", self.client);
                f.opt_int("values", self.values);
                f.opt_str("outcome", self.outcome);
            },
            // A `message` field of type `str`: written as it is, with no formatting pass.
            |line| tracing::info!(target: "vaultgate::access", message = line),
        );
    }
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The value of `name` when `headers` hold exactly one and it is `sane`; otherwise a
/// `made` one, which then replaces every value of `name`. The name is looked up once.
fn one_sane(
    headers: &mut HeaderMap,
    name: HeaderName,
    sane: impl Fn(&HeaderValue) -> bool,
    made: impl FnOnce() -> HeaderValue,
) -> HeaderValue {
    match headers.entry(name) {
        http::header::Entry::Occupied(mut e) => {
            let mut all = e.iter();
            if let (Some(v), None) = (all.next(), all.next())
                && sane(v)
            {
                return v.clone();
            }
            let v = made();
            e.insert(v.clone());
            v
        }
        http::header::Entry::Vacant(e) => e.insert(made()).clone(),
    }
}

/// A made-up id as a header value (it is visible ASCII). Its bytes are owned by a
/// shared buffer from the start, so the copies that go upstream, into the access line
/// and onto the response share them without another allocation (a `Vec`'s bytes
/// would be moved into a shared buffer on the first clone).
fn header_value<const N: usize>(id: [u8; N]) -> HeaderValue {
    HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(id))
        .unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// At most [`MAX_REQUEST_ID`] visible ASCII characters, at least one, holding no
/// card-shaped number.
pub fn sane_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_REQUEST_ID
        && b.iter().all(|c| c.is_ascii_graphic())
        && !shows_card(b)
}

/// Whether a request's method may be logged and sent on: a standard one, or an
/// extension method that holds no card-shaped number (read raw and with its escapes
/// decoded, as [`sane_id`] reads an id).
pub fn method_is_sane(method: &http::Method) -> bool {
    is_standard(method) || !shows_card(method.as_str().as_bytes())
}

/// A request's method as logs write it: the method, or `-` for one that holds a
/// card-shaped number ([`method_is_sane`]; such a request is refused).
pub fn method_text(method: &http::Method) -> &str {
    if method_is_sane(method) {
        method.as_str()
    } else {
        "-"
    }
}

fn is_standard(method: &http::Method) -> bool {
    use http::Method;
    [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ]
    .contains(method)
}

/// A made-up id that holds no card-shaped number: drawn again until it does not (a
/// few draws in a thousand need a second). Only an id with a long enough digit run
/// is scanned, about one in forty.
fn made_up<const N: usize>(draw: impl Fn() -> [u8; N]) -> [u8; N] {
    let mut id = draw();
    for _ in 0..16 {
        if !(long_digit_run(&id) && shows_card(&id)) {
            break;
        }
        id = draw();
    }
    id
}

/// Whether `text` has [`MIN_DIGITS`] digit-like bytes in one run, counting through
/// the leak guard's separators: the least a card-shaped number needs (the guard also
/// limits the separators between digit groups, and a non-ASCII byte counts as a
/// digit here, so this says yes more often).
///
/// [`MIN_DIGITS`]: crate::rules::guard::MIN_DIGITS
fn long_digit_run(text: &[u8]) -> bool {
    use crate::rules::digits::{ByteClass, byte_class};
    let mut digits = 0;
    for &c in text {
        match byte_class(c) {
            ByteClass::DigitLike => {
                digits += 1;
                if digits >= crate::rules::guard::MIN_DIGITS {
                    return true;
                }
            }
            ByteClass::Separator => {}
            ByteClass::Other => digits = 0,
        }
    }
    false
}

/// The trace id of a well-formed version-00 `traceparent`
/// (`00-<32 hex>-<16 hex>-<2 hex>`, lower case, ids not all zero).
pub fn trace_id_of(v: &str) -> Option<&str> {
    let mut parts = v.split('-');
    let (Some(version), Some(trace), Some(parent), Some(flags), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let hex_of = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    };
    let zero = |s: &str| s.bytes().all(|c| c == b'0');
    (version == "00"
        && hex_of(trace, 32)
        && hex_of(parent, 16)
        && hex_of(flags, 2)
        && !zero(trace)
        && !zero(parent)
        && !shows_card(v.as_bytes()))
    .then_some(trace)
}

/// A new UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits, with the
/// version and variant bits set.
pub fn new_request_id() -> HeaderValue {
    header_value(made_up(uuid_v7))
}

/// A UUIDv7 in its 8-4-4-4-12 hex form.
fn uuid_v7() -> [u8; 36] {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut b = random::<16>();
    let ts = millis.to_be_bytes();
    for (dst, src) in b.iter_mut().zip(ts.iter().skip(2)) {
        *dst = *src;
    }
    if let Some(v) = b.get_mut(6) {
        *v = (*v & 0x0f) | 0x70;
    }
    if let Some(v) = b.get_mut(8) {
        *v = (*v & 0x3f) | 0x80;
    }
    let hex = hex::<16, 32>(&b);
    let mut id = [b'-'; 36];
    for (at, from, len) in [(0, 0, 8), (9, 8, 4), (14, 12, 4), (19, 16, 4), (24, 20, 12)] {
        splice(&mut id, at, hex.get(from..from + len));
    }
    id
}

/// A new `traceparent`: version 00, a random trace id and parent id, not sampled.
fn new_traceparent() -> [u8; 55] {
    let hex = hex::<24, 48>(&random::<24>());
    let mut tp = *b"00-________________________________-________________-00";
    splice(&mut tp, 3, hex.get(..32));
    splice(&mut tp, 36, hex.get(32..));
    tp
}

/// `bytes` in lower-case hex, in one pass (`H` is twice `N`).
fn hex<const N: usize, const H: usize>(bytes: &[u8; N]) -> [u8; H] {
    let mut out = [0u8; H];
    if HEXLOWER.encode_len(N) == H {
        HEXLOWER.encode_mut(bytes, &mut out);
    }
    out
}

/// Copy `part` into `into` at `at` (both lengths are fixed by the caller).
fn splice(into: &mut [u8], at: usize, part: Option<&[u8]>) {
    if let Some((dst, src)) = part.and_then(|p| Some((into.get_mut(at..at + p.len())?, p))) {
        dst.copy_from_slice(src);
    }
}

/// Random bytes for ids. Ids are not secrets (they are logged and sent on), so a fast
/// generator per thread, seeded from the OS-seeded `rand::rng()`, draws them:
/// ChaCha's block refills were about 400 instructions per request.
fn random<const N: usize>() -> [u8; N] {
    use rand::SeedableRng as _;
    thread_local! {
        static IDS: std::cell::RefCell<rand::rngs::SmallRng> =
            std::cell::RefCell::new(rand::rngs::SmallRng::from_rng(&mut rand::rng()));
    }
    let mut b = [0u8; N];
    IDS.with_borrow_mut(|rng| rng.fill_bytes(&mut b));
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_sane_ids_and_makes_new_ones() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("abc-123"));
        h.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let ids = RequestIds::take(&mut h);
        assert_eq!(ids.request_id(), "abc-123");
        assert_eq!(ids.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");

        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("has space"));
        h.insert(TRACEPARENT, HeaderValue::from_static("00-zz-00-01"));
        let ids = RequestIds::take(&mut h);
        let id = ids.request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'7');
        assert!(b"89ab".contains(&id.as_bytes()[19]), "{id}");
        for (i, c) in id.bytes().enumerate() {
            let dash = [8, 13, 18, 23].contains(&i);
            assert_eq!(c == b'-', dash, "{id}");
            assert!(
                dash || c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
                "{id}"
            );
        }
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let stamped = u128::from_str_radix(&id.replace('-', "")[..12], 16).unwrap();
        assert!(millis.abs_diff(stamped) < 60_000, "{id}");
        assert_eq!(h.get(&REQUEST_ID).unwrap(), id);
        let tp = h.get(&TRACEPARENT).unwrap().to_str().unwrap();
        assert_eq!(trace_id_of(tp), Some(ids.trace_id()));
        assert!(sane_id(&HeaderValue::from_str(&"a".repeat(128)).unwrap()));
        assert!(!sane_id(&HeaderValue::from_str(&"a".repeat(129)).unwrap()));
    }

    #[test]
    fn a_repeated_id_is_replaced_by_one_made_up() {
        let mut h = HeaderMap::new();
        h.append(REQUEST_ID, HeaderValue::from_static("first"));
        h.append(REQUEST_ID, HeaderValue::from_static("second"));
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        h.append(TRACEPARENT, HeaderValue::from_static(tp));
        h.append(TRACEPARENT, HeaderValue::from_static(tp));
        let ids = RequestIds::take(&mut h);
        let sent: Vec<_> = h.get_all(&REQUEST_ID).iter().collect();
        assert_eq!(sent, [ids.request_id()], "{sent:?}");
        assert_eq!(ids.request_id().len(), 36);
        let sent: Vec<_> = h.get_all(&TRACEPARENT).iter().collect();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_ne!(sent[0], tp);
        assert_eq!(trace_id_of(sent[0].to_str().unwrap()), Some(ids.trace_id()));
    }

    #[test]
    fn ids_holding_a_card_number_are_replaced() {
        let mut h = HeaderMap::new();
        h.insert(
            REQUEST_ID,
            HeaderValue::from_static("order-4242424242424242"),
        );
        h.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-0000000000000000411111111111111a-00f067aa0ba902b7-01"),
        );
        let ids = RequestIds::take(&mut h);
        assert!(!ids.request_id().contains("4242424242424242"));
        assert!(!ids.trace_id().contains("4111111111111111"));
        let tp = h.get(&TRACEPARENT).unwrap().to_str().unwrap();
        assert!(!tp.contains("4111111111111111"), "{tp}");
        assert!(
            !h.get(&REQUEST_ID)
                .unwrap()
                .to_str()
                .unwrap()
                .contains("4242")
        );
    }

    #[test]
    fn made_up_ids_never_hold_a_card_number() {
        // About one draw in a thousand would without the redraw.
        for _ in 0..20_000 {
            let mut h = HeaderMap::new();
            let ids = RequestIds::take(&mut h);
            let tp = h.get(&TRACEPARENT).unwrap().as_bytes().to_vec();
            assert!(!shows_card(&tp), "{}", String::from_utf8_lossy(&tp));
            assert!(
                !shows_card(ids.request_id().as_bytes()),
                "{}",
                ids.request_id()
            );
        }
    }

    #[test]
    fn only_ids_with_a_long_digit_run_can_hold_a_card_number() {
        assert!(long_digit_run(b"x-4242-4242-4242-4242"));
        assert!(!long_digit_run(b"424242424242a4242"));
        // Hex and dashes, digits likelier than in real ids: whatever the guard finds,
        // the cheap test finds first.
        let mut rng = rand::rng();
        let mut found = 0;
        for _ in 0..50_000 {
            let id: String = (0..36)
                .map(|_| {
                    let r: u8 = rand::Rng::random_range(&mut rng, 0..20);
                    char::from(b"0123456789012345ab--"[usize::from(r)])
                })
                .collect();
            if shows_card(id.as_bytes()) {
                found += 1;
                assert!(long_digit_run(id.as_bytes()), "{id}");
            }
        }
        assert!(found > 0, "the sample held no card number to check against");
    }

    use crate::logging::Capture;

    /// Log lines written while `f` runs, as the JSON the `json` log format prints.
    fn json_lines(f: impl FnOnce()) -> Vec<serde_json::Value> {
        let sink = Capture::default();
        let out = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = out.text();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn an_access_line_put_together_reads_as_its_fields_logged_one_by_one() {
        let text = |f: &dyn Fn()| {
            let sink = Capture::default();
            let out = sink.clone();
            let subscriber = crate::logging::plain_text_subscriber(move || sink.clone());
            tracing::subscriber::with_default(subscriber, || {
                let span = tracing::info_span!("request", request_id = "r", method = %"POST");
                let _in = span.enter();
                f();
            });
            out.text()
        };
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("req-\"quoted\"-7"));
        let ids = RequestIds::take(&mut h);
        let post = http::Method::POST;
        let odd = http::Method::from_bytes(b"M-SEARCH").unwrap();
        let lines = [
            AccessLine {
                listener: "proxy",
                route: Some("pay"),
                method: Some(&post),
                path: Some("/v1/payment/{param}"),
                status: 200,
                upstream_status: Some(201),
                bytes_in: Some(10),
                bytes_out: Some(u64::MAX),
                latency: std::time::Duration::from_micros(1500),
                upstream_latency: Some(std::time::Duration::from_secs(u64::MAX)),
                client: Some("caf\u{e9} \u{1b}[31m \u{85} tab\t"),
                values: Some(3),
                outcome: Some("ok"),
            },
            AccessLine {
                listener: "api",
                route: Some("we\"ird"),
                method: Some(&odd),
                status: 404,
                ..AccessLine::default()
            },
            AccessLine::default(),
        ];
        for line in &lines {
            let fields = text(&|| line.write_fields(&ids));
            let plain = text(&|| line.write_plain(&ids));
            assert!(
                fields.contains("vaultgate::access: access request_id="),
                "{fields}"
            );
            assert_eq!(plain, fields);
        }
    }

    #[test]
    fn access_lines_share_their_fields_and_leave_out_what_is_unknown() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("req-7"));
        let ids = RequestIds::take(&mut h);
        let post = http::Method::POST;
        let lines = json_lines(|| {
            AccessLine {
                listener: "proxy",
                route: Some("pay"),
                method: Some(&post),
                path: Some("/v1/payment"),
                status: 200,
                upstream_status: Some(201),
                bytes_in: Some(10),
                latency: std::time::Duration::from_micros(1500),
                upstream_latency: Some(std::time::Duration::from_micros(700)),
                ..AccessLine::default()
            }
            .write(&ids);
            AccessLine {
                listener: "outbound",
                method: Some(&post),
                status: 502,
                outcome: Some("upstream_unavailable"),
                ..AccessLine::default()
            }
            .write(&ids);
        });
        assert_eq!(lines.len(), 2);
        let (proxy, outbound) = (&lines[0], &lines[1]);
        for line in &lines {
            assert_eq!(line["target"], "vaultgate::access");
            assert_eq!(line["level"], "INFO");
            assert_eq!(line["request_id"], "req-7");
            assert_eq!(line["trace_id"], ids.trace_id());
            assert_eq!(line["method"], "POST");
        }
        assert_eq!(proxy["listener"], "proxy");
        assert_eq!(proxy["route"], "pay");
        assert_eq!(proxy["path"], "/v1/payment");
        assert_eq!(proxy["status"], 200);
        assert_eq!(proxy["upstream_status"], 201);
        assert_eq!(proxy["latency_us"], 1500);
        assert_eq!(proxy["upstream_latency_us"], 700);
        assert!(proxy.get("client").is_none() && proxy.get("outcome").is_none());
        assert_eq!(outbound["listener"], "outbound");
        assert_eq!(outbound["route"], "-");
        assert_eq!(outbound["status"], 502);
        assert_eq!(outbound["outcome"], "upstream_unavailable");
        for absent in ["path", "upstream_status", "bytes_in", "client", "values"] {
            assert!(outbound.get(absent).is_none(), "{absent}: {outbound}");
        }
    }
}
