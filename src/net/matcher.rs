//! What a route matches on: its method, its path pattern, and the canonical form of
//! a request path. Shared by the inbound and outbound proxies.

use std::borrow::Cow;

use http::Method;
use serde::Deserialize;

use crate::{Error, Result};

/// `method = "POST"` or `"*"`: which methods a route takes, parsed once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum MethodFilter {
    #[default]
    Any,
    One(Method),
}

impl TryFrom<String> for MethodFilter {
    type Error = &'static str;

    fn try_from(m: String) -> std::result::Result<MethodFilter, &'static str> {
        if m == "*" {
            return Ok(MethodFilter::Any);
        }
        Method::from_bytes(m.as_bytes())
            .map(MethodFilter::One)
            .map_err(|_| "not an HTTP method or \"*\"")
    }
}

/// `"*"` or the method's name, as written in a config file.
impl PartialEq<&str> for MethodFilter {
    fn eq(&self, other: &&str) -> bool {
        match self {
            MethodFilter::Any => *other == "*",
            MethodFilter::One(m) => m.as_str() == *other,
        }
    }
}

impl MethodFilter {
    /// Whether a request method is taken. Methods compare ASCII case-insensitively:
    /// some backends route `post` as `POST`.
    pub fn allows(&self, method: &Method) -> bool {
        match self {
            MethodFilter::Any => true,
            MethodFilter::One(m) => m.as_str().eq_ignore_ascii_case(method.as_str()),
        }
    }

    /// The method, if one is named.
    pub fn method(&self) -> Option<&Method> {
        match self {
            MethodFilter::Any => None,
            MethodFilter::One(m) => Some(m),
        }
    }
}

/// One segment of a path pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// Must equal the request segment.
    Literal(String),
    /// `{name}`: any one non-empty segment.
    Param,
    /// `*`: any one segment; as the last segment, the rest of the path (zero or more).
    Wildcard,
}

/// A path pattern such as `/accounts/{id}/paymentInfo` or `/static/*`, parsed once
/// when the config is read.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct PathPattern {
    segments: Vec<Segment>,
}

/// The pattern as written in the config (a parameter shows as `{param}`): a path
/// template that holds no request value, for logs.
impl std::fmt::Display for PathPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for segment in &self.segments {
            f.write_str("/")?;
            match segment {
                Segment::Literal(s) => f.write_str(s)?,
                Segment::Param => f.write_str("{param}")?,
                Segment::Wildcard => f.write_str("*")?,
            }
        }
        Ok(())
    }
}

impl TryFrom<String> for PathPattern {
    type Error = &'static str;

    fn try_from(pattern: String) -> std::result::Result<PathPattern, &'static str> {
        PathPattern::parse(&pattern)
    }
}

impl PathPattern {
    /// Parse a pattern; the error says what is wrong (without the pattern itself).
    pub fn parse(pattern: &str) -> std::result::Result<PathPattern, &'static str> {
        let rest = pattern
            .strip_prefix('/')
            .ok_or("a path pattern must start with '/'")?;
        if pattern.contains(['?', '#']) {
            return Err("a path pattern must not contain '?' or '#'");
        }
        let mut segments = Vec::new();
        if rest.is_empty() {
            // `/` matches only the root.
            segments.push(Segment::Literal(String::new()));
            return Ok(PathPattern { segments });
        }
        for seg in rest.split('/') {
            let parsed = if seg.is_empty() {
                return Err("a path pattern must not have empty segments or a trailing '/'");
            } else if seg == "*" {
                Segment::Wildcard
            } else if let Some(inner) = seg.strip_prefix('{') {
                let name = inner
                    .strip_suffix('}')
                    .ok_or("a '{' segment must end with '}'")?;
                if name.is_empty() || name.contains(['{', '}']) {
                    return Err("a {param} segment needs a name");
                }
                Segment::Param
            } else if seg.contains(['{', '}', '*']) {
                return Err("'{param}' and '*' must fill a whole segment");
            } else if seg.contains(['%', ';', '\\']) {
                return Err("a path pattern must not contain '%', ';' or '\\'");
            } else {
                Segment::Literal(seg.to_owned())
            };
            segments.push(parsed);
        }
        Ok(PathPattern { segments })
    }

    /// Whether a request path (without the query) matches. Literal segments compare
    /// ASCII case-insensitively, one trailing `/` is ignored, and a last literal
    /// segment also takes a format suffix (`/v1/payment.json`), because common
    /// backends route that way (Rails routes `(.:format)` to the same action, Spring's
    /// suffix pattern match and Express's `strict: false` likewise): a request must
    /// not slip past a rules route by spelling its path differently. Callers pass a
    /// [`canonical_path`].
    pub fn matches(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let rest = if rest.is_empty() {
            rest
        } else {
            rest.strip_suffix('/').unwrap_or(rest)
        };
        // Bytes, not `str::split`: a path's segments are short, and a byte loop finds
        // the next `/` faster than the `memchr` searcher does.
        let mut req = rest.as_bytes().split(|&b| b == b'/');
        let mut pats = self.segments.iter().peekable();
        while let Some(pat) = pats.next() {
            let is_last = pats.peek().is_none();
            if is_last && *pat == Segment::Wildcard {
                return true;
            }
            let Some(seg) = req.next() else {
                return false;
            };
            let ok = match pat {
                Segment::Literal(lit) if is_last && !lit.is_empty() => {
                    let (head, format) = seg.split_at(seg.len().min(lit.len()));
                    lit.as_bytes().eq_ignore_ascii_case(head)
                        && (format.is_empty() || format.first() == Some(&b'.'))
                }
                Segment::Literal(lit) => lit.as_bytes().eq_ignore_ascii_case(seg),
                Segment::Param => !seg.is_empty(),
                Segment::Wildcard => true,
            };
            if !ok {
                return false;
            }
        }
        req.next().is_none()
    }

    /// Whether a request path matches exactly as it is written, for an allow-list
    /// whose forwarded path is the one sent (outbound routes with `exact = true`):
    /// literal segments byte for byte (no other case, no format suffix, no trailing
    /// `/`), parameters and `*` non-empty, and nothing a server could read otherwise
    /// than it is written: no `%` escape, `;` parameter or `\\` anywhere.
    pub fn matches_exactly(&self, raw: &str) -> bool {
        if raw.contains(['%', ';', '\\']) {
            return false;
        }
        let Some(rest) = raw.strip_prefix('/') else {
            return false;
        };
        let mut req = rest.split('/');
        let mut pats = self.segments.iter().peekable();
        while let Some(pat) = pats.next() {
            if pats.peek().is_none() && *pat == Segment::Wildcard {
                return true;
            }
            let Some(seg) = req.next() else {
                return false;
            };
            let ok = match pat {
                Segment::Literal(lit) => lit == seg,
                Segment::Param | Segment::Wildcard => !seg.is_empty(),
            };
            if !ok {
                return false;
            }
        }
        req.next().is_none()
    }

    /// Whether some request path matches both patterns (for configuration warnings).
    pub fn overlaps(&self, other: &PathPattern) -> bool {
        segments_overlap(&self.segments, &other.segments)
    }
}

fn segments_overlap(a: &[Segment], b: &[Segment]) -> bool {
    match (a.split_first(), b.split_first()) {
        (None, None) => true,
        // A trailing `*` takes any rest, including none.
        (Some((Segment::Wildcard, [])), _) | (_, Some((Segment::Wildcard, []))) => true,
        (None, Some(_)) | (Some(_), None) => false,
        (Some((x, rest_a)), Some((y, rest_b))) => {
            let one = match (x, y) {
                (Segment::Literal(p), Segment::Literal(q)) => p.eq_ignore_ascii_case(q),
                (Segment::Literal(l), _) | (_, Segment::Literal(l)) => !l.is_empty(),
                _ => true,
            };
            one && segments_overlap(rest_a, rest_b)
        }
    }
}

/// The path a route is matched against: percent-decoded, with `;params` dropped from
/// each segment (servlet containers ignore them when routing).
///
/// Backends normalize paths before routing, so a path that normalizes to something
/// else than it reads (`/x/../v1/payment`, `/v1//payment`, `/v1/pay%6dent`,
/// `/v1%2Fpayment`) could otherwise reach a tokenizing endpoint through a pass-through
/// route. Dot segments, empty segments, backslashes, encoded `/` and `\`, control
/// characters and bad percent-escapes are refused with 400.
pub fn canonical_path(raw: &str) -> Result<Cow<'_, str>> {
    // The usual path: visible ASCII without escapes, parameters or backslashes, so
    // only its segments need a look, and it is its own canonical form.
    if raw
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'%' | b';' | b'\\'))
    {
        return plain_segments(raw).map(|_| Cow::Borrowed(raw));
    }
    let decoded = percent_decode(raw).ok_or_else(not_canonical)?;
    let has_encoded_separator = raw
        .as_bytes()
        .windows(3)
        .any(|w| w.eq_ignore_ascii_case(b"%2f") || w.eq_ignore_ascii_case(b"%5c"));
    if has_encoded_separator || decoded.contains('\\') || decoded.chars().any(char::is_control) {
        return Err(not_canonical());
    }
    let rest = plain_segments(&decoded)?;
    // Without parameters the checked path is its own canonical form (no copy); else
    // each segment loses its `;…`.
    if !decoded.contains(';') {
        return Ok(decoded);
    }
    let mut out = String::with_capacity(decoded.len());
    for seg in rest.split('/') {
        out.push('/');
        out.push_str(seg.split(';').next().unwrap_or_default());
    }
    Ok(Cow::Owned(out))
}

fn not_canonical() -> Error {
    Error::BadRequest("the request path is not in canonical form".to_owned())
}

/// Check a decoded path's segments: it starts with `/`, and no segment (its `;…`
/// left out) is `.`, `..` or empty, but for the last. Returns the path after its
/// first `/`.
fn plain_segments(path: &str) -> Result<&str> {
    let rest = path.strip_prefix('/').ok_or_else(not_canonical)?;
    // Bytes, as in [`PathPattern::matches`].
    let mut segments = rest.as_bytes().split(|&b| b == b'/').peekable();
    while let Some(seg) = segments.next() {
        let seg = seg.split(|&b| b == b';').next().unwrap_or_default();
        let is_last = segments.peek().is_none();
        if seg == b"." || seg == b".." || (seg.is_empty() && !is_last) {
            return Err(not_canonical());
        }
    }
    Ok(rest)
}

/// Decode `%XX` escapes; `None` for a broken escape or a result that is not UTF-8.
fn percent_decode(raw: &str) -> Option<Cow<'_, str>> {
    // percent-encoding passes a malformed escape through as it is; a request path
    // that carries one is refused rather than guessed at.
    let bytes = raw.as_bytes();
    let malformed = bytes.iter().enumerate().any(|(i, b)| {
        *b == b'%'
            && !matches!(
                (bytes.get(i + 1), bytes.get(i + 2)),
                (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit()
            )
    });
    if malformed {
        return None;
    }
    percent_encoding::percent_decode_str(raw).decode_utf8().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        PathPattern::parse(pattern).unwrap().matches(path)
    }

    #[test]
    fn exactly_as_written() {
        let p = PathPattern::parse("/pay/charges").unwrap();
        assert!(p.matches_exactly("/pay/charges"));
        for path in [
            "/pay/charges.json",
            "/pay/CHARGES",
            "/pay/charges/",
            "/pay/charges;x=1",
            "/pay/charg%65s",
            "/pay/charges/x",
            "/pay",
            "pay/charges",
        ] {
            assert!(!p.matches_exactly(path), "{path}");
        }
        let p = PathPattern::parse("/pay/{id}/*").unwrap();
        assert!(p.matches_exactly("/pay/42/refunds/1"));
        assert!(p.matches_exactly("/pay/42"));
        assert!(!p.matches_exactly("/pay//refunds"));
        assert!(PathPattern::parse("/").unwrap().matches_exactly("/"));
    }

    #[test]
    fn literal_and_params() {
        assert!(m("/v1/payment", "/v1/payment"));
        assert!(m("/v1/payment", "/v1/payment/"));
        assert!(!m("/v1/payment", "/v1/payments"));
        assert!(!m("/v1/payment", "/v1"));
        assert!(m("/accounts/{id}/paymentInfo", "/accounts/42/paymentInfo"));
        assert!(!m("/accounts/{id}/paymentInfo", "/accounts//paymentInfo"));
        assert!(!m(
            "/accounts/{id}/paymentInfo",
            "/accounts/42/x/paymentInfo"
        ));
    }

    #[test]
    fn wildcards() {
        assert!(m("/*", "/"));
        assert!(m("/*", "/anything/at/all"));
        assert!(m("/static/*", "/static/a/b.css"));
        assert!(m("/static/*", "/static"));
        assert!(!m("/static/*", "/other"));
        assert!(m("/brm/*/paymentMethod", "/brm/v1/paymentMethod"));
        assert!(!m("/brm/*/paymentMethod", "/brm/a/b/paymentMethod"));
        assert!(m("/", "/"));
        assert!(!m("/", "/x"));
    }

    #[test]
    fn spelling_variants_still_match() {
        let c = |p: &str| canonical_path(p).unwrap().into_owned();
        assert!(m("/v1/payment", &c("/V1/Payment")));
        assert!(m("/v1/payment", &c("/v1/payment/")));
        assert!(m("/v1/payment", &c("/v1/pay%6dent")));
        assert!(m("/v1/payment", &c("/v1/payment;jsessionid=1")));
        // A format suffix on the last segment (Rails `(.:format)`, Spring).
        assert!(m("/v1/payment", &c("/v1/payment.json")));
        assert!(m("/v1/payment", &c("/v1/PAYMENT.xml/")));
        assert!(m("/v1/payment", &c("/v1/payment%2ejson")));
        assert!(!m("/v1/payment", &c("/v1/payments")));
        assert!(!m("/v1/payment", &c("/v1/payment.json/x")));
        assert!(!m("/v1/payment", &c("/v1.json/payment")));
        assert!(!m("/", &c("/.json")));
        assert!(m("/*", &c("/")));
        assert_eq!(c("/a;x=1/b;y/"), "/a/b/");
        assert_eq!(c("/a/b%20c"), "/a/b c");
        assert!(matches!(
            canonical_path("/v1/payment"),
            Ok(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn non_canonical_paths_are_refused() {
        for p in [
            "/x/../v1/payment",
            "/./v1/payment",
            "/v1//payment",
            "/v1%2Fpayment",
            "/v1%5cpayment",
            "/v1\\payment",
            "/v1/%2e%2e/x",
            "/v1/%zz",
            "/v1/%4",
            "/v1/%00",
            "/v1/%ff",
            "relative",
        ] {
            assert!(canonical_path(p).is_err(), "{p}");
        }
        assert_eq!(canonical_path("/a/b%20c/").unwrap(), "/a/b c/");
    }

    /// A plain path (no escape, parameter or backslash) takes a shorter way: it is
    /// judged as the same path spelled with an escape, which takes the long way.
    #[test]
    fn plain_and_escaped_spellings_are_judged_alike() {
        use rand::Rng as _;
        let pieces = ["a", "v1", ".", "..", "", "x-y", "~", "A.b", "_"];
        let mut rng = rand::rng();
        for _ in 0..5_000 {
            let n = rng.random_range(0..5);
            let mut path: String = (0..n)
                .map(|_| format!("/{}", pieces[rng.random_range(0..pieces.len())]))
                .collect();
            if path.is_empty() || rng.random_bool(0.1) {
                path.insert(0, 'a');
            }
            let escaped = format!("/%61{path}");
            let plain = format!("/a{path}");
            let (p, e) = (canonical_path(&plain), canonical_path(&escaped));
            assert_eq!(p.is_ok(), e.is_ok(), "{plain} vs {escaped}");
            if let (Ok(p), Ok(e)) = (p, e) {
                assert!(matches!(p, Cow::Borrowed(_)), "{plain}");
                assert_eq!(p, e, "{plain}");
            }
        }
    }

    #[test]
    fn overlaps() {
        let o = |a: &str, b: &str| {
            let (a, b) = (
                PathPattern::parse(a).unwrap(),
                PathPattern::parse(b).unwrap(),
            );
            assert_eq!(a.overlaps(&b), b.overlaps(&a));
            a.overlaps(&b)
        };
        assert!(o("/*", "/v1/payment"));
        assert!(o("/v1/*", "/v1/payment"));
        assert!(o("/v1/{x}", "/V1/payment"));
        assert!(o("/static/*", "/static"));
        assert!(o("/a/*/c", "/a/b/{c}"));
        assert!(!o("/v1/payment", "/v1/payments"));
        assert!(!o("/pass/*", "/v1/payment"));
        assert!(!o("/a/{b}", "/a"));
        assert!(!o("/", "/{x}"));
    }

    #[test]
    fn bad_patterns() {
        for p in [
            "", "x", "/a/{b", "/a/{}", "/a/b*", "/a?q", "/{a}b", "/a%2f", "/a;b",
        ] {
            assert!(PathPattern::parse(p).is_err(), "{p}");
        }
    }
}
