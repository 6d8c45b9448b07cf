//! The route table. **The path decides**: the first route whose path pattern matches
//! owns the request, together with every other route that has the very same pattern
//! (one path, several methods). Among those, the method picks the route, then the
//! content type. A method none of them takes is 405 with `Allow`; a content type none
//! of them accepts is 415 naming the accepted types. A request is never passed on to a
//! later route with another pattern: a `POST` spelled `post`, a `PUT`, or a body
//! without the expected content type must not slip past a rules route to a
//! pass-through catch-all.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, Method, header};

use crate::config::{Config, MediaType, RouteConfig};
use crate::net::matcher::{MethodFilter, PathPattern, canonical_path};
use crate::rules::{LeakPolicy, RouteRules};
use crate::{Error, Result};

use crate::config::GuardMode;

/// Headers that ask a backend to treat a request as another method.
pub const METHOD_OVERRIDE_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
];

/// The request parameter that asks a backend to treat a POST as another method:
/// Symfony and Laravel read it from the body, then the query string; Express's
/// `method-override('_method')` from the query string; Rails from the body.
const METHOD_OVERRIDE_PARAM: &str = "_method";

/// Whether a query string carries a non-empty `_method` parameter, read as the
/// parsers that honour it read a key: `+` and `%XX` decoded, spaces around it
/// dropped, in any ASCII case, with or without brackets after it (`_method[]`);
/// pairs split on `&` and on `;`.
fn has_method_override_param(query: &str) -> bool {
    query.split(['&', ';']).any(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if value.is_empty() {
            return false;
        }
        let key = key.replace('+', " ");
        let key = percent_encoding::percent_decode_str(&key).decode_utf8_lossy();
        let name = key.split('[').next().unwrap_or_default().trim();
        name.eq_ignore_ascii_case(METHOD_OVERRIDE_PARAM)
    })
}

/// A route, ready to serve.
#[derive(Debug)]
pub struct Route {
    pub name: Arc<str>,
    /// The path pattern as text (never a request's path), for the access log.
    pub template: Arc<str>,
    /// Index into the proxy's upstream list.
    pub upstream: usize,
    method: MethodFilter,
    path: PathPattern,
    content_types: Option<Vec<MediaType>>,
    /// `None` for a pure pass-through route (the body streams, scanned by the
    /// streaming guard).
    pub rules: Option<Arc<RouteRules>>,
    /// The streaming leak guard of a pass-through route.
    pub stream_guard: GuardMode,
    /// Scan header values and cookies with the leak guard (rules routes).
    pub scan_headers: bool,
    /// The index of the first route with the very same path pattern: the routes that
    /// own a request together share it.
    owner: usize,
    /// Whether a route sharing this one's pattern has rules.
    owners_have_rules: bool,
}

impl Route {
    fn build(cfg: &RouteConfig, upstream: usize) -> Route {
        let rules = cfg.rules();
        Route {
            name: Arc::from(cfg.name.as_str()),
            template: Arc::from(cfg.path.to_string()),
            upstream,
            method: cfg.method.clone(),
            path: cfg.path.clone(),
            content_types: cfg.content_types.clone(),
            rules: (!rules.is_pass_through()).then(|| Arc::new(rules)),
            stream_guard: cfg.stream_guard.unwrap_or_default(),
            scan_headers: cfg.scan_headers.unwrap_or(false),
            owner: 0,
            owners_have_rules: false,
        }
    }

    /// Whether the leak guard reads this route's request outside its body rules (the
    /// path at least): a pass-through route unless `stream_guard = "off"`, a rules
    /// route unless it lets leaks through (`leak_guard = "allow"`) without
    /// `scan_headers`.
    pub fn is_guarded(&self) -> bool {
        match &self.rules {
            None => self.stream_guard != GuardMode::Off,
            Some(rules) => self.scan_headers || rules.leak_guard != LeakPolicy::Allow,
        }
    }

    /// The method the route takes; `None` for any.
    pub fn method(&self) -> Option<&Method> {
        self.method.method()
    }

    fn accepts(&self, headers: &HeaderMap) -> bool {
        let Some(types) = &self.content_types else {
            return true;
        };
        // Exactly one Content-Type: with two, the backend may read the other one.
        let mut values = headers.get_all(header::CONTENT_TYPE).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return false;
        };
        let Some(essence) = value
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .map(str::trim)
        else {
            return false;
        };
        // The configured types are lower case; compared without making a lower-case
        // copy of the request's.
        types
            .iter()
            .any(|t| t.as_str().eq_ignore_ascii_case(essence))
    }
}

/// All routes, in config order.
#[derive(Debug)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Build the table from a validated config.
    pub fn build(config: &Config) -> Result<RouteTable> {
        let mut routes = Vec::with_capacity(config.routes.len());
        for (i, cfg) in config.routes.iter().enumerate() {
            let upstream = config
                .upstreams
                .iter()
                .position(|u| u.name == cfg.upstream)
                .ok_or_else(|| Error::Config(format!("routes[{i}].upstream: unknown upstream")))?;
            routes.push(Route::build(cfg, upstream));
        }
        // Which routes own a request together, found once here instead of by
        // comparing patterns per request.
        let owners: Vec<usize> = routes
            .iter()
            .map(|r| routes.iter().position(|o| o.path == r.path).unwrap_or(0))
            .collect();
        let with_rules: Vec<bool> = owners
            .iter()
            .map(|o| {
                routes
                    .iter()
                    .zip(&owners)
                    .any(|(r, oo)| oo == o && r.rules.is_some())
            })
            .collect();
        for ((route, owner), rules) in routes.iter_mut().zip(owners).zip(with_rules) {
            route.owner = owner;
            route.owners_have_rules = rules;
        }
        Ok(RouteTable { routes })
    }

    /// The route that serves a request, with its index; `Ok(None)` when no pattern
    /// matches the path. A path that is not in canonical form is refused (see
    /// [`canonical_path`]); so are a method or a content type that the owning routes
    /// do not take, and a method-override header or `_method` query parameter on a
    /// path a rules route owns.
    pub fn find(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<Option<(usize, &Route)>> {
        let path = canonical_path(path)?;
        let Some(first) = self.routes.iter().position(|r| r.path.matches(&path)) else {
            return Ok(None);
        };
        // The first match is its pattern's first route, so its owners all follow it.
        let owners = || {
            self.routes
                .iter()
                .enumerate()
                .skip(first)
                .filter(move |(_, r)| r.owner == first)
        };
        if self.routes.get(first).is_some_and(|r| r.owners_have_rules)
            && (METHOD_OVERRIDE_HEADERS
                .iter()
                .any(|h| headers.contains_key(h))
                || query.is_some_and(has_method_override_param))
        {
            return Err(Error::MethodOverrideRefused);
        }
        let mut method_taken = false;
        for (i, route) in owners().filter(|(_, r)| r.method.allows(method)) {
            method_taken = true;
            if route.accepts(headers) {
                return Ok(Some((i, route)));
            }
        }
        if method_taken {
            Err(Error::UnsupportedMedia(format!(
                "this path accepts {}",
                accepted_types(owners().map(|(_, r)| r).filter(|r| r.method.allows(method)))
            )))
        } else {
            Err(Error::MethodNotAllowed {
                allow: allowed_methods(owners().map(|(_, r)| r)),
            })
        }
    }

    /// Every route whose pattern matches a (canonical) path, in config order: the
    /// first owns the request together with the routes of the very same pattern;
    /// the rest are never consulted.
    pub fn matching(&self, path: &str) -> Result<Vec<(usize, &Route, bool)>> {
        let path = canonical_path(path)?;
        let mut out = Vec::new();
        let mut owner: Option<&PathPattern> = None;
        for (i, r) in self.routes.iter().enumerate() {
            if r.path.matches(&path) {
                let owns = **owner.get_or_insert(&r.path) == r.path;
                out.push((i, r, owns));
            }
        }
        Ok(out)
    }

    /// All routes (for metrics registration).
    /// The route at `index` (as [`RouteTable::find`] numbers them).
    pub fn get(&self, index: usize) -> Option<&Route> {
        self.routes.get(index)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }
}

/// The methods of routes, for an `Allow` header: `POST, PUT`.
fn allowed_methods<'a>(routes: impl Iterator<Item = &'a Route>) -> String {
    let mut out: Vec<&str> = Vec::new();
    for r in routes {
        if let Some(m) = r.method.method()
            && !out.contains(&m.as_str())
        {
            out.push(m.as_str());
        }
    }
    out.join(", ")
}

/// The content types of routes, for a 415 message: `application/json or text/xml`.
fn accepted_types<'a>(routes: impl Iterator<Item = &'a Route>) -> String {
    let mut out: Vec<&str> = Vec::new();
    for r in routes {
        for t in r.content_types.iter().flatten() {
            if !out.contains(&t.as_str()) {
                out.push(t.as_str());
            }
        }
    }
    out.join(" or ")
}
