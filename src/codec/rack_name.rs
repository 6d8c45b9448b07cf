//! A multipart part's name as Rack reads it: with regular expressions over the part's
//! header block, not a parameter parser.
//!
//! Rack (2.x, under Rails 6 and 7.0; the `Content-ID` fallback since 1.x) names a part
//! by the first of:
//!
//! - `Content-Disposition:[^:]*;\s*name=(VALUE)`, case-insensitive, anywhere in the
//!   head (so inside `X-Content-Disposition:` too): the greedy `[^:]*` takes the
//!   **last** `;name=` before the next `:`, one inside another parameter's quoted
//!   value included (`name="note"; x="a;name=cvv"` is `cvv`); `VALUE` is a quoted
//!   string (its quotes and backslash escapes undone) or a token;
//! - `Content-ID:\s*(…)` to the end of its line, when that found nothing;
//! - when the name is still empty: the filename, else the Content-Type followed by
//!   `[]` (`text/plain[]`; a part typed `cvv` is `cvv[]`, the field `cvv`).
//!
//! [`other_name`] gives that name when it is not ours, so that the codec can refuse
//! a part that Rack binds as a field a rule names while we read it as another.

/// The name Rack gives a part whose header block (`name: value\r\n` per header) is
/// `head`, when it is not `ours` (the `name` parameter as the disposition parser
/// reads it; `None` when there is none).
pub(crate) fn other_name(head: &[u8], ours: Option<&str>) -> Option<String> {
    let rack = rack_name(head);
    (Some(rack.as_str()) != ours).then_some(rack)
}

fn rack_name(head: &[u8]) -> String {
    let named = after_label(head, b"content-disposition:")
        .find_map(|region| last_param(region, b"name"))
        .or_else(|| after_label(head, b"content-id:").next().map(content_id));
    if let Some(name) = named.filter(|n| !n.is_empty()) {
        return name;
    }
    let filename = after_label(head, b"content-disposition:")
        .find_map(|region| last_param(region, b"filename"))
        .filter(|f| !f.is_empty());
    filename.unwrap_or_else(|| {
        let ct = after_label(head, b"content-type:")
            .next()
            .map(content_id)
            .unwrap_or_else(|| "text/plain".to_owned());
        format!("{ct}[]")
    })
}

/// The bytes after each case-insensitive occurrence of `label` in `head`, up to the
/// next `:` (what `label[^:]*` can reach), in order.
fn after_label<'h>(head: &'h [u8], label: &'static [u8]) -> impl Iterator<Item = &'h [u8]> {
    (0..head.len()).filter_map(move |i| {
        let at = head.get(i..i + label.len())?;
        if !at.eq_ignore_ascii_case(label) {
            return None;
        }
        let rest = head.get(i + label.len()..)?;
        let end = rest.iter().position(|&b| b == b':').unwrap_or(rest.len());
        rest.get(..end)
    })
}

/// The value of the last `;\s*<param>=VALUE` in `region` whose value reads, as the
/// greedy expression finds it.
fn last_param(region: &[u8], param: &[u8]) -> Option<String> {
    let semicolons = region.iter().enumerate().filter(|(_, b)| **b == b';');
    let mut found = None;
    for (i, _) in semicolons {
        let rest = region.get(i + 1..).unwrap_or_default();
        let rest = rest.trim_ascii_start();
        let Some(label) = rest.get(..param.len()) else {
            continue;
        };
        if !label.eq_ignore_ascii_case(param) || rest.get(param.len()) != Some(&b'=') {
            continue;
        }
        if let Some(v) = value(rest.get(param.len() + 1..).unwrap_or_default()) {
            found = Some(v);
        }
    }
    found
}

/// Rack's `VALUE`: `"(?:\\"|[^"])*"` (dequoted: the quotes dropped, `\x` read as `x`)
/// or a token, `[^\s()<>,;:\\"/\[\]?=]+`.
fn value(bytes: &[u8]) -> Option<String> {
    if let Some(quoted) = bytes.strip_prefix(b"\"") {
        let mut out = Vec::new();
        let mut escaped = false;
        for &b in quoted {
            match (escaped, b) {
                (false, b'\\') => escaped = true,
                (false, b'"') => return Some(String::from_utf8_lossy(&out).into_owned()),
                (_, b) => {
                    escaped = false;
                    out.push(b);
                }
            }
        }
        return None;
    }
    let token: Vec<u8> = bytes
        .iter()
        .copied()
        .take_while(|b| !b.is_ascii_whitespace() && !b"()<>,;:\\\"/[]?=".contains(b))
        .collect();
    (!token.is_empty()).then(|| String::from_utf8_lossy(&token).into_owned())
}

/// `\s*([^\r\n]*)`: a header's value to the end of its line.
fn content_id(region: &[u8]) -> String {
    let v = region.trim_ascii_start();
    let end = v
        .iter()
        .position(|&b| matches!(b, b'\r' | b'\n'))
        .unwrap_or(v.len());
    String::from_utf8_lossy(v.get(..end).unwrap_or_default()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(head: &str) -> String {
        rack_name(head.as_bytes())
    }

    #[test]
    fn names_as_rack_does() {
        let cd = "content-disposition: form-data";
        assert_eq!(name(&format!("{cd}; name=\"cvv\"\r\n")), "cvv");
        assert_eq!(name(&format!("{cd}; name=cvv; filename=\"a\"\r\n")), "cvv");
        assert_eq!(
            name(&format!("{cd}; name=\"note\"; x=\"a;name=cvv\"\r\n")),
            "cvv"
        );
        assert_eq!(name(&format!("{cd}; name=\"n\\\"x\"\r\n")), "n\"x");
        assert_eq!(name(&format!("{cd}\r\ncontent-id: cvv\r\n")), "cvv");
        assert_eq!(name(&format!("content-id: cvv\r\n{cd}; name=a\r\n")), "a");
        assert_eq!(
            name(&format!(
                "x-content-disposition: a; name=cvv\r\n{cd}; name=a\r\n"
            )),
            "cvv"
        );
        assert_eq!(name(&format!("{cd}; filename=\"cvv\"\r\n")), "cvv");
        assert_eq!(name(&format!("{cd}\r\ncontent-type: cvv\r\n")), "cvv[]");
        assert_eq!(name(&format!("{cd}\r\n")), "text/plain[]");
        // A `:` ends what the expression reaches.
        assert_eq!(name(&format!("{cd}; name=a; f=\"C:x;name=cvv\"\r\n")), "a");
    }

    #[test]
    fn only_another_name_is_given() {
        let head = b"content-disposition: form-data; name=\"cvv\"\r\n";
        assert_eq!(other_name(head, Some("cvv")), None);
        assert_eq!(other_name(head, Some("note")).as_deref(), Some("cvv"));
    }
}
