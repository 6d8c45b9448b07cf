//! The route table: method + path pattern + content types, first match wins.

use std::sync::Arc;

use http::{HeaderMap, Method, header};

use crate::config::{Config, MediaType, RouteConfig};
use crate::net::matcher::{MethodFilter, PathPattern, canonical_path};
use crate::rules::RouteRules;
use crate::{Error, Result};

/// A route, ready to serve.
#[derive(Debug)]
pub struct Route {
    pub name: Arc<str>,
    /// Index into the proxy's upstream list.
    pub upstream: usize,
    method: MethodFilter,
    path: PathPattern,
    content_types: Option<Vec<MediaType>>,
    /// `None` for a pure pass-through route (the body streams unread).
    pub rules: Option<Arc<RouteRules>>,
}

impl Route {
    fn build(cfg: &RouteConfig, upstream: usize) -> Route {
        let rules = cfg.rules();
        Route {
            name: Arc::from(cfg.name.as_str()),
            upstream,
            method: cfg.method.clone(),
            path: cfg.path.clone(),
            content_types: cfg.content_types.clone(),
            rules: (!rules.is_pass_through()).then(|| Arc::new(rules)),
        }
    }

    fn matches(&self, method: &Method, path: &str, headers: &HeaderMap) -> bool {
        if !self.method.allows(method) {
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
                types.iter().any(|t| t.as_str() == essence)
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
