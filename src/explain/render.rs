//! The human-readable form of an [`Explanation`].

use std::fmt::Write as _;

use super::{Explanation, FindingReport};

/// The explanation as text for a terminal. Values appear only masked.
pub fn text(e: &Explanation) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "request: {} {}", e.method, e.path);
    let _ = writeln!(s, "\nroute:");
    if e.routes.is_empty() {
        let _ = writeln!(s, "  no route's path pattern matches");
    }
    for c in &e.routes {
        let head = format!(
            "routes[{}] `{}` ({} {})",
            c.index,
            c.name,
            c.method,
            c.kind.replace('_', "-")
        );
        let _ = match c.role {
            "owner" => writeln!(s, "  {head} owns the request: {}", c.why),
            _ => writeln!(s, "  {head} {}", c.why),
        };
    }
    let _ = writeln!(s, "\nfindings:");
    if e.findings.is_empty() {
        let _ = writeln!(s, "  none");
    }
    for f in &e.findings {
        let _ = writeln!(s, "  {}", finding(f));
    }
    if let Some(fw) = &e.forwarded {
        let _ = writeln!(
            s,
            "\nforwarded ({}):",
            if fw.rewritten {
                "rewritten, tokens shown as placeholders"
            } else {
                "unchanged"
            }
        );
        match &fw.body {
            Some(b) => {
                let _ = writeln!(s, "  body: {}", b.trim_end());
            }
            None if fw.body_len == 0 => {
                let _ = writeln!(s, "  body: (empty)");
            }
            None => {
                let _ = writeln!(s, "  body: {} bytes, not UTF-8", fw.body_len);
            }
        }
        if !fw.body_layers.is_empty() {
            let _ = writeln!(
                s,
                "  (shown decoded; sent re-encoded as {})",
                fw.body_layers.join(" over ")
            );
        }
        if let Some(q) = &fw.query {
            let _ = writeln!(s, "  query: {q}");
        }
    }
    if !e.notes.is_empty() {
        let _ = writeln!(s, "\nnotes:");
        for n in &e.notes {
            let _ = writeln!(s, "  {n}");
        }
    }
    let _ = match &e.refusal {
        None => writeln!(s, "\nverdict: forwarded"),
        Some(r) => {
            let _ = writeln!(
                s,
                "\nverdict: refused: {} {}: {}",
                r.status, r.code, r.message
            );
            match &r.allow {
                Some(a) => writeln!(s, "  Allow: {a}"),
                None => Ok(()),
            }
        }
    };
    s
}

fn finding(f: &FindingReport) -> String {
    let source = match (f.source, f.rule, &f.rule_path) {
        ("rule", Some(i), Some(p)) => format!("rule fields[{i}] `{p}`"),
        ("leak_guard_hidden", ..) => "leak guard (cannot be replaced in place)".to_owned(),
        _ => "leak guard".to_owned(),
    };
    let mut line = format!(
        "#{} {source}: {} at {} = {}",
        f.number, f.class, f.location, f.masked
    );
    match f.action {
        "tokenize" => {
            let _ = write!(
                line,
                " -> {} token, {}",
                f.token_format.unwrap_or("?"),
                if f.deterministic == Some(true) {
                    "deterministic"
                } else {
                    "not deterministic"
                }
            );
            if let Some(n) = f.scope {
                let _ = write!(line, ", scoped by #{n}");
            }
            if let Some(p) = &f.placeholder {
                let _ = write!(line, ", shown as {p}");
            }
        }
        "keep_empty" => line.push_str(" -> empty, forwarded as it is"),
        "keep_allowed" => line.push_str(" -> forwarded as it is (leak guard allows it)"),
        _ => line.push_str(" -> not reached: the request is refused"),
    }
    if f.scope.is_none()
        && let Some(p) = &f.scope_path
    {
        let _ = write!(line, " (scope `{p}`)");
    }
    line
}
