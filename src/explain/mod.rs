//! `vaultgate explain`: a dry run of one request through a config's routes and body
//! rules. It says which route owns the request, what the rules and the leak guard
//! find (values masked), what would be forwarded (tokens as placeholders) or why the
//! request would be refused. It touches neither the store nor the keyring: it runs the
//! proxy's own route table, codec and [`plan`](crate::inbound::plan::plan).

pub mod mask;
mod render;

use http::{HeaderMap, Method, header};
use serde::Serialize;

use crate::codec::FindingKind;
use crate::config::{Config, GuardMode};
use crate::error::{Error, Result};
use crate::inbound::plan::{self, Keep, Step};
use crate::inbound::routes::{Route, RouteTable};
use crate::inbound::sanitize::{self, Limits};
use crate::inbound::{exposure, held};
use crate::rules::RouteRules;

pub use render::text;

/// The request to explain.
pub struct Request {
    pub method: Method,
    /// The path, with the query string if any (`/v1/payment?x=1`).
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// What the proxy would do with a request.
#[derive(Debug, Serialize)]
pub struct Explanation {
    pub method: String,
    pub path: String,
    /// Every route whose path pattern matches, in config order.
    pub routes: Vec<Candidate>,
    /// The index of the route that serves the request, if one does.
    pub route: Option<usize>,
    pub findings: Vec<FindingReport>,
    /// What goes upstream; `None` when the request is refused.
    pub forwarded: Option<Forwarded>,
    /// Why the request is refused; `None` when it is forwarded.
    pub refusal: Option<Refusal>,
    pub notes: Vec<String>,
}

/// A route whose pattern matches the path.
#[derive(Debug, Serialize)]
pub struct Candidate {
    pub index: usize,
    pub name: String,
    /// The method it takes, `*` for any.
    pub method: String,
    /// `rules` or `pass_through`.
    pub kind: &'static str,
    /// `owner`, `same_pattern` (owns the path too, but another method or content
    /// type picks the route) or `shadowed` (never consulted).
    pub role: &'static str,
    pub why: String,
}

/// One value the field rules or the leak guard found.
#[derive(Debug, Serialize)]
pub struct FindingReport {
    /// 1-based, as the placeholders number them.
    pub number: usize,
    /// `rule`, `leak_guard`, or `leak_guard_hidden` (a card that cannot be replaced
    /// in place).
    pub source: &'static str,
    /// The field rule's index in the route's rules.
    pub rule: Option<usize>,
    pub rule_path: Option<String>,
    pub class: &'static str,
    pub location: String,
    pub masked: String,
    /// `tokenize`, `keep_empty`, `keep_allowed` (leak guard `allow`, or `detect` on a
    /// pass-through route), or `not_reached` (the request is refused first).
    pub action: &'static str,
    pub token_format: Option<&'static str>,
    pub deterministic: Option<bool>,
    /// The finding (by number) whose token scopes this one.
    pub scope: Option<usize>,
    pub scope_path: Option<String>,
    pub placeholder: Option<String>,
}

/// What would be forwarded.
#[derive(Debug, Serialize)]
pub struct Forwarded {
    /// Whether any value is replaced.
    pub rewritten: bool,
    /// The body as the codec reads it (inside any of `body_layers`), tokens as
    /// placeholders and any other card number masked; `None` for no body or one that
    /// is not UTF-8.
    pub body: Option<String>,
    /// The body's length in bytes.
    pub body_len: usize,
    /// Layers the body is re-encoded in before it is sent (`gzip`, `base64`).
    pub body_layers: Vec<&'static str>,
    pub query: Option<String>,
}

/// How the request would be refused.
#[derive(Debug, Serialize)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// The `Allow` header of a 405.
    pub allow: Option<String>,
}

impl Refusal {
    fn of(e: &Error) -> Refusal {
        Refusal {
            status: e.status().as_u16(),
            code: e.code(),
            message: e.public_message(),
            allow: match e {
                Error::MethodNotAllowed { allow } => Some(allow.clone()),
                _ => None,
            },
        }
    }
}

impl Explanation {
    /// Whether the request would be forwarded.
    pub fn is_forwarded(&self) -> bool {
        self.refusal.is_none()
    }

    fn refuse(&mut self, e: &Error) {
        self.refusal = Some(Refusal::of(e));
        self.forwarded = None;
    }
}

/// Explain one request under a config. An error is the config's or the request's
/// shape (not a refusal: refusals are part of the explanation).
pub fn explain(config: &Config, req: &Request) -> Result<Explanation> {
    let table = RouteTable::build(config)?;
    let (parts, ()) = http::Request::builder()
        .method(req.method.clone())
        .uri(req.path.as_str())
        .body(())
        .map_err(|e| Error::BadRequest(format!("--path: {e}")))?
        .into_parts();
    let mut parts = parts;
    parts.headers = req.headers.clone();
    let mut out = Explanation {
        // As logs write them: a method or a path holding a card number is not shown.
        method: crate::net::trace::method_text(&req.method).to_owned(),
        path: shown_path(parts.uri.path()),
        routes: Vec::new(),
        route: None,
        findings: Vec::new(),
        forwarded: None,
        refusal: None,
        notes: Vec::new(),
    };
    let found = table.find(
        &parts.method,
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
    );
    let owner = match &found {
        Ok(Some((i, _))) => Some(*i),
        _ => None,
    };
    if let Ok(matching) = table.matching(parts.uri.path()) {
        out.routes = matching
            .into_iter()
            .map(|(i, r, owns)| candidate(i, r, owns, owner))
            .collect();
    }
    let route = match found {
        Ok(Some((i, r))) => {
            out.route = Some(i);
            r
        }
        Ok(None) => {
            out.refuse(&Error::NoRoute);
            return Ok(out);
        }
        Err(e) => {
            out.refuse(&e);
            return Ok(out);
        }
    };
    let limits = Limits::from(&config.limits);
    let result = every_route(&parts).and_then(|()| match &route.rules {
        Some(rules) => rules_route(&mut out, rules, route, &parts, &req.body, &limits),
        None => pass_through(&mut out, route, &parts, &req.body, &limits),
    });
    if let Err(e) = result {
        out.refuse(&e);
    }
    Ok(out)
}

fn candidate(i: usize, r: &Route, owns: bool, owner: Option<usize>) -> Candidate {
    let (role, why) = if owner == Some(i) {
        (
            "owner",
            "the first route whose path matches owns it".to_owned(),
        )
    } else if owns && owner.is_none() {
        (
            "owner",
            "the first route whose path matches owns it, and refuses the request".to_owned(),
        )
    } else if owns {
        (
            "same_pattern",
            "has the owner's path pattern, but the method or content type picks another".to_owned(),
        )
    } else {
        (
            "shadowed",
            "would also match the path but the first matching route owns it".to_owned(),
        )
    };
    Candidate {
        index: i,
        name: r.name.to_string(),
        method: r.method().map_or("*".to_owned(), ToString::to_string),
        kind: if r.rules.is_some() {
            "rules"
        } else {
            "pass_through"
        },
        role,
        why,
    }
}

/// A route with body rules: the header scan, the body limit, the codec, the plan.
fn rules_route(
    out: &mut Explanation,
    rules: &RouteRules,
    route: &Route,
    parts: &http::request::Parts,
    body: &[u8],
    limits: &Limits,
) -> Result<()> {
    if route.is_guarded() {
        let path = parts.uri.path();
        if !exposure::path_hits(path).is_empty() {
            out.notes.push(NOT_OURS.to_owned());
            return Err(Error::LeakRejected("the path".to_owned()));
        }
    }
    if route.scan_headers && !exposure::head_hits(parts).is_empty() {
        out.notes.push(NOT_OURS.to_owned());
        return Err(Error::LeakRejected("a header or a cookie".to_owned()));
    }
    if body.len() > limits.max_body {
        return Err(Error::BodyTooLarge {
            limit: limits.max_body,
        });
    }
    let extraction = sanitize::extract(rules, parts, body, limits)?;
    let findings = extraction.findings();
    let ours = vec![false; findings.len()];
    let planned = plan::plan(rules, findings, limits, &ours);
    let steps = planned.as_ref().ok().map(|p| &p.steps);
    let mut replacements: Vec<Option<String>> = Vec::with_capacity(findings.len());
    for (i, f) in findings.iter().enumerate() {
        let number = i + 1;
        let step = steps.and_then(|s| s.get(i));
        let (rule, rule_path, scope_path) = match f.kind {
            FindingKind::Rule { rule } => {
                let r = rules.fields.get(rule);
                (
                    Some(rule),
                    r.map(|r| r.path.as_str().to_owned()),
                    r.and_then(|r| r.scope.as_ref())
                        .map(|p| p.as_str().to_owned()),
                )
            }
            _ => (None, None, None),
        };
        if !matches!(f.kind, FindingKind::Rule { .. }) && !f.value.is_empty() {
            push_once(&mut out.notes, NOT_OURS);
        }
        let masked = mask::value(f.class, f.value.expose());
        let mut report = FindingReport {
            number,
            source: match f.kind {
                FindingKind::Rule { .. } => "rule",
                FindingKind::Leak => "leak_guard",
                FindingKind::Hidden => "leak_guard_hidden",
            },
            rule,
            rule_path,
            class: f.class.as_str(),
            location: f.location.clone(),
            masked: masked.clone(),
            action: "not_reached",
            token_format: None,
            deterministic: None,
            scope: None,
            scope_path,
            placeholder: None,
        };
        let replacement = match step {
            Some(Step::Tokenize(t)) => {
                let p = format!("<token:{}#{number}>", f.class.as_str());
                report.action = "tokenize";
                report.token_format = Some(t.format().as_str());
                report.deterministic = Some(t.is_deterministic());
                report.scope = t.scope.map(|j| j + 1);
                report.placeholder = Some(p.clone());
                Some(p)
            }
            Some(Step::Keep(Keep::Empty)) => {
                report.action = "keep_empty";
                None
            }
            Some(Step::Keep(Keep::Allowed | Keep::OurToken)) => {
                report.action = "keep_allowed";
                // Forwarded in clear; shown masked.
                Some(format!("<as-is:{masked}>"))
            }
            None => None,
        };
        replacements.push(replacement);
        out.findings.push(report);
    }
    planned?;
    let layers = extraction.body_layers();
    let rewritten = replacements.iter().any(Option::is_some);
    let preview = extraction.preview(&replacements)?;
    let shown_body: &[u8] = preview.body.as_deref().unwrap_or(body);
    out.forwarded = Some(Forwarded {
        rewritten,
        body: shown(shown_body),
        body_len: shown_body.len(),
        body_layers: if preview.body.is_some() {
            layers
        } else {
            Vec::new()
        },
        query: preview
            .query
            .as_deref()
            .or(parts.uri.query())
            .map(mask::cards_in),
    });
    Ok(())
}

/// What the proxy refuses on every route before it reads anything: a transfer coding
/// other than `chunked`, a method holding a card number.
fn every_route(parts: &http::request::Parts) -> Result<()> {
    crate::net::headers::check_transfer_coding(&parts.headers)?;
    if !crate::net::trace::method_is_sane(&parts.method) {
        return Err(Error::LeakRejected("the method".to_owned()));
    }
    Ok(())
}

/// A pass-through route: the body streams unread past the streaming leak guard, which
/// reads it as the proxy does ([`held`]), the whole body one chunk.
fn pass_through(
    out: &mut Explanation,
    route: &Route,
    parts: &http::request::Parts,
    body: &[u8],
    limits: &Limits,
) -> Result<()> {
    let mode = route.stream_guard;
    out.notes.push(format!(
        "pass-through route: the body streams unread; the streaming leak guard is `{}`",
        mode.as_str()
    ));
    if mode != GuardMode::Off {
        // The proxy reads the head first, and refuses a place before it reads on.
        for (place, hits) in held::head_hits(mode, parts)? {
            leak_findings(out, mode, place, &hits)?;
        }
        let name = &*route.name;
        let content_type = parts.headers.get(header::CONTENT_TYPE);
        let heads = held::part_heads(mode, name, content_type)?;
        let width = crate::codec::WidthWatch::for_header(content_type);
        let coding = held::coding(mode, name, &parts.headers)?;
        let hits = held::body_hits(mode, name, coding, (heads, width), body, limits.max_body)?;
        leak_findings(out, mode, "the request body", &hits)?;
    }
    out.forwarded = Some(Forwarded {
        rewritten: false,
        body: shown(body),
        body_len: body.len(),
        body_layers: Vec::new(),
        query: parts.uri.query().map(mask::cards_in),
    });
    Ok(())
}

/// Report the leak guard's hits in a place; in `block` mode they refuse the request
/// (explain has no vault to tell a token of its own).
fn leak_findings(
    out: &mut Explanation,
    mode: GuardMode,
    place: &str,
    hits: &[exposure::HitDigits],
) -> Result<()> {
    if hits.is_empty() {
        return Ok(());
    }
    for digits in hits {
        out.findings.push(FindingReport {
            number: out.findings.len() + 1,
            source: "leak_guard",
            rule: None,
            rule_path: None,
            class: "pan",
            location: place.to_owned(),
            masked: exposure::mask(digits),
            action: if mode == GuardMode::Block {
                "not_reached"
            } else {
                "keep_allowed"
            },
            token_format: None,
            deterministic: None,
            scope: None,
            scope_path: None,
            placeholder: None,
        });
    }
    push_once(&mut out.notes, NOT_OURS);
    if mode == GuardMode::Block {
        return Err(Error::LeakRejected(place.to_owned()));
    }
    Ok(())
}

/// A path as `explain` prints it: withheld when the proxy would find a card number
/// in it (read with its escapes decoded, so the hit has no range to mask).
fn shown_path(path: &str) -> String {
    if exposure::path_hits(path).is_empty() {
        path.to_owned()
    } else {
        "(not shown: it holds a card number)".to_owned()
    }
}

const NOT_OURS: &str = "explain has no vault: a card-shaped leak-guard hit that is a token \
                        this vault issued would pass as it is";

fn push_once(notes: &mut Vec<String>, note: &str) {
    if !notes.iter().any(|n| n == note) {
        notes.push(note.to_owned());
    }
}

/// A body as text, with card numbers masked; `None` when empty or not UTF-8.
fn shown(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    std::str::from_utf8(body).ok().map(mask::cards_in)
}
