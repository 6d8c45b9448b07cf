//! The route table: method + path pattern + content types, first match wins.

use std::sync::Arc;

use http::{HeaderMap, Method, header};

use crate::config::{Config, RouteConfig};
use crate::pipeline::CompiledRules;
use crate::{Error, Result};

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

/// A path pattern such as `/accounts/{id}/paymentInfo` or `/static/*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathPattern {
    segments: Vec<Segment>,
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
    /// ASCII case-insensitively and one trailing `/` is ignored, because common
    /// backends route that way: a request must not slip past a rules route by
    /// spelling its path differently. Callers pass a [`canonical_path`].
    pub fn matches(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let rest = if rest.is_empty() {
            rest
        } else {
            rest.strip_suffix('/').unwrap_or(rest)
        };
        let mut req = rest.split('/');
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
                Segment::Literal(lit) => lit.eq_ignore_ascii_case(seg),
                Segment::Param => !seg.is_empty(),
                Segment::Wildcard => true,
            };
            if !ok {
                return false;
            }
        }
        req.next().is_none()
    }
}

/// A route, ready to serve.
#[derive(Debug)]
pub struct Route {
    pub name: Arc<str>,
    /// Index into the proxy's upstream list.
    pub upstream: usize,
    method: Option<Method>,
    path: PathPattern,
    content_types: Option<Vec<String>>,
    /// `None` for a pure pass-through route (the body streams unread).
    pub rules: Option<Arc<CompiledRules>>,
}

impl Route {
    fn build(i: usize, cfg: &RouteConfig, upstream: usize) -> Result<Route> {
        let key = format!("routes[{i}]");
        let method = if cfg.method == "*" {
            None
        } else {
            Some(
                Method::from_bytes(cfg.method.as_bytes())
                    .map_err(|_| Error::Config(format!("{key}.method: not an HTTP method")))?,
            )
        };
        let path = PathPattern::parse(&cfg.path)
            .map_err(|msg| Error::Config(format!("{key}.path: {msg}")))?;
        let rules = cfg.rules();
        let rules = if rules.is_pass_through() {
            None
        } else {
            Some(Arc::new(
                CompiledRules::compile(&rules)
                    .map_err(|e| Error::Config(format!("{key}.fields: {e}")))?,
            ))
        };
        Ok(Route {
            name: Arc::from(cfg.name.as_str()),
            upstream,
            method,
            path,
            content_types: cfg
                .content_types
                .as_ref()
                .map(|v| v.iter().map(|t| t.to_ascii_lowercase()).collect()),
            rules,
        })
    }

    fn matches(&self, method: &Method, path: &str, headers: &HeaderMap) -> bool {
        if self.method.as_ref().is_some_and(|m| m != method) {
            return false;
        }
        if !self.path.matches(path) {
            return false;
        }
        match &self.content_types {
            None => true,
            Some(types) => {
                let Some(essence) = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(';').next())
                    .map(|v| v.trim().to_ascii_lowercase())
                else {
                    return false;
                };
                types.contains(&essence)
            }
        }
    }
}

/// All routes, in config order.
#[derive(Debug)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Build the table; `upstream_index` maps an upstream name to its index.
    pub fn build(config: &Config) -> Result<RouteTable> {
        let mut routes = Vec::with_capacity(config.routes.len());
        for (i, cfg) in config.routes.iter().enumerate() {
            let upstream = config
                .upstreams
                .iter()
                .position(|u| u.name == cfg.upstream)
                .ok_or_else(|| Error::Config(format!("routes[{i}].upstream: unknown upstream")))?;
            routes.push(Route::build(i, cfg, upstream)?);
        }
        Ok(RouteTable { routes })
    }

    /// The first route that matches, with its index, if any. A path that is not in
    /// canonical form is refused (see [`canonical_path`]).
    pub fn find(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<Option<(usize, &Route)>> {
        let path = canonical_path(path)?;
        Ok(self
            .routes
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(method, &path, headers)))
    }

    /// All routes (for metrics registration).
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
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
pub fn canonical_path(raw: &str) -> Result<String> {
    const REFUSED: &str = "the request path is not in canonical form";
    let decoded = percent_decode(raw).ok_or_else(|| Error::BadRequest(REFUSED.to_owned()))?;
    let has_encoded_separator = raw
        .as_bytes()
        .windows(3)
        .any(|w| w.eq_ignore_ascii_case(b"%2f") || w.eq_ignore_ascii_case(b"%5c"));
    if has_encoded_separator || decoded.contains('\\') || decoded.chars().any(char::is_control) {
        return Err(Error::BadRequest(REFUSED.to_owned()));
    }
    let Some(rest) = decoded.strip_prefix('/') else {
        return Err(Error::BadRequest(REFUSED.to_owned()));
    };
    let mut out = String::with_capacity(decoded.len());
    let mut segments = rest.split('/').peekable();
    while let Some(seg) = segments.next() {
        let seg = seg.split(';').next().unwrap_or_default();
        let is_last = segments.peek().is_none();
        if seg == "." || seg == ".." || (seg.is_empty() && !is_last) {
            return Err(Error::BadRequest(REFUSED.to_owned()));
        }
        out.push('/');
        out.push_str(seg);
    }
    Ok(out)
}

/// Decode `%XX` escapes; `None` for a broken escape or a result that is not UTF-8.
fn percent_decode(raw: &str) -> Option<String> {
    if !raw.contains('%') {
        return Some(raw.to_owned());
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = hex(bytes.next()?)?;
            let lo = hex(bytes.next()?)?;
            out.push(hi << 4 | lo);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        PathPattern::parse(pattern).unwrap().matches(path)
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
        let c = |p: &str| canonical_path(p).unwrap();
        assert!(m("/v1/payment", &c("/V1/Payment")));
        assert!(m("/v1/payment", &c("/v1/payment/")));
        assert!(m("/v1/payment", &c("/v1/pay%6dent")));
        assert!(m("/v1/payment", &c("/v1/payment;jsessionid=1")));
        assert!(m("/*", &c("/")));
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

    #[test]
    fn bad_patterns() {
        for p in [
            "", "x", "/a/{b", "/a/{}", "/a/b*", "/a?q", "/{a}b", "/a%2f", "/a;b",
        ] {
            assert!(PathPattern::parse(p).is_err(), "{p}");
        }
    }
}
