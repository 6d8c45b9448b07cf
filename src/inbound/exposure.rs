//! Card numbers outside a body's fields: in the path of every guarded route, in the
//! query or the body of a pass-through route, and in the header names, header values
//! and cookies of a rules route that opts in (`scan_headers = true`). Finding them,
//! telling our own tokens apart, and the masked form that `detect` mode logs.

use std::borrow::Cow;

use http::{HeaderMap, header};
use zeroize::Zeroizing;

use crate::Result;
use crate::rules::guard;
use crate::vault::Vault;

/// The digits of one card-shaped hit (separators and leading zeros removed).
/// Zeroized on drop.
#[derive(Clone)]
pub struct HitDigits {
    digits: Zeroizing<String>,
    /// The hit's text is ASCII digits alone, as this vault writes its tokens.
    plain: bool,
}

impl std::ops::Deref for HitDigits {
    type Target = str;

    fn deref(&self) -> &str {
        &self.digits
    }
}

impl HitDigits {
    /// The card a number literal denotes (`4.242424242424242e15`): not its digits as
    /// written, so never taken for one of our tokens.
    pub fn denoted(digits: &[u8]) -> HitDigits {
        HitDigits {
            digits: Zeroizing::new(digits.iter().map(|b| char::from(*b)).collect()),
            plain: false,
        }
    }

    /// The same digits, found after decoding: never written as digits alone, so never
    /// taken for one of our tokens.
    pub fn decoded(self) -> HitDigits {
        HitDigits {
            digits: self.digits,
            plain: false,
        }
    }

    /// Whether the hit was written as digits alone (no separators, no other
    /// script's digits, no leading zero): only such a hit can be one of our tokens.
    pub fn is_plain(&self) -> bool {
        self.plain
    }
}

/// Push the digits of every hit in `text` onto `out`.
pub fn collect_hits(text: &[u8], out: &mut Vec<HitDigits>) {
    if !guard::may_contain(text) {
        return;
    }
    guard::scan_hits(text, |hit| out.push(digits(text, hit)));
}

/// The digits of one hit of `text`, as the guard read them (other scripts' digits
/// as ASCII, leading zeros left out).
pub fn digits(text: &[u8], hit: &guard::Hit) -> HitDigits {
    let span = text.get(hit.range.clone()).unwrap_or_default();
    HitDigits {
        digits: Zeroizing::new(hit.digits().iter().map(|b| char::from(*b)).collect()),
        plain: hit.ascii && span.iter().all(u8::is_ascii_digit),
    }
}

/// The hits in a text, as digits.
pub fn hits(text: &[u8]) -> Vec<HitDigits> {
    let mut out = Vec::new();
    collect_hits(text, &mut out);
    out
}

/// Whether every hit is a token this vault issued (and not itself a card number it
/// holds). A store error counts as "not ours": the guard fails closed.
///
/// A hit written with separators is never ours: tokens are written as digits alone,
/// and the guard takes the longest card-shaped run of digit groups, so a token-shaped
/// run such as `<14 digits>,0` can be a token while its first 14 digits are a card
/// that an upstream splitting at the comma would read (found by the pipeline fuzz
/// target).
pub async fn all_ours(vault: &Vault, hits: &[HitDigits]) -> bool {
    for digits in hits {
        if !digits.is_plain() || !is_our_token(vault, digits).await.unwrap_or(false) {
            return false;
        }
    }
    true
}

/// Whether `text` is a token this vault issued, and not itself a card number it
/// holds. Only text of ASCII digits alone can be: tokens are written so (see
/// [`all_ours`] for why a hit with separators never is).
pub async fn is_our_token(vault: &Vault, text: &str) -> Result<bool> {
    vault.is_own_token(text).await
}

/// A hit as `detect` mode logs it: the first six and the last four digits, the rest
/// masked. Safe to log: PCI DSS allows showing at most these ten digits.
pub fn mask(digits: &str) -> String {
    let n = digits.len();
    let head = digits.get(..6.min(n)).unwrap_or_default();
    let tail = digits
        .get(n.saturating_sub(4).max(6.min(n))..)
        .unwrap_or_default();
    format!(
        "{head}{}{tail}",
        "*".repeat(n.saturating_sub(head.len() + tail.len()))
    )
}

/// Bytes with the escapes a backend may decode written out: `\\uXXXX`, `%uXXXX`,
/// `\\xHH`, octal `\\NNN`, `%XX`, `&#N;` and `&#xH;` (a JSON string, a form or query
/// value, HTML), by the leak guard's own decoder ([`deep::unescape`]). `None` when
/// there is no escape to decode. Bytes that are not UTF-8 (a chunk may end inside a
/// character) read as U+FFFD.
///
/// [`deep::unescape`]: crate::rules::deep::unescape
pub fn decoded_escapes(bytes: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if !has_escape(bytes) {
        return None;
    }
    let text = Zeroizing::new(crate::rules::digits::text_of(bytes).into_owned());
    crate::rules::deep::unescape(&text).map(|d| Zeroizing::new(d.into_bytes()))
}

/// Whether `bytes` hold the first byte of an escape [`decoded_escapes`] decodes: a
/// vectorised search, as every pass-through chunk is checked.
pub fn has_escape(bytes: &[u8]) -> bool {
    memchr::memchr3(b'\\', b'%', b'&', bytes).is_some()
        || memchr::memchr2(b'<', b']', bytes).is_some()
}

/// How many times over [`escaped_hits`] decodes escapes: as many layers as a rules
/// route's field is read through by default (`limits.max_decode_depth`).
const ESCAPE_LEVELS: usize = 3;

/// The hits in `bytes` read with their escapes decoded ([`decoded_escapes`]), and
/// decoded again while that leaves escapes, up to [`ESCAPE_LEVELS`] times (`%2520`,
/// `&amp;#52;`: a value escaped twice, which a backend decoding a form and then the
/// field reads as `%20` and then a space; as [`query_hits`] reads a query), each
/// marked as found after decoding; none when there is no escape.
pub fn escaped_hits(bytes: &[u8]) -> Vec<HitDigits> {
    let mut out: Vec<HitDigits> = Vec::new();
    let mut level = decoded_escapes(bytes);
    for _ in 0..ESCAPE_LEVELS {
        let Some(text) = level else {
            break;
        };
        for hit in hits(&text) {
            let hit = hit.decoded();
            if !among(&hit, &out) {
                out.push(hit);
            }
        }
        level = decoded_escapes(&text);
    }
    out
}

/// Whether the same digits are among `list`.
pub fn among(hit: &HitDigits, list: &[HitDigits]) -> bool {
    list.iter().any(|h| **h == **hit)
}

/// The hits in a pass-through query string as a backend reads it ([`decoded_query`]),
/// and those escapes a backend may decode a second time spell (`%2534`, `%u0034`)
/// when their digits were not read already (a token of ours stays plain); and the
/// cards its number literals denote (an amount of sixteen digits and `.9` can be the
/// double a card number is), read as a pass-through body's are ([`literal_cards`]),
/// with `%XX` decoded and `+` read both as a space and as an exponent's sign.
pub fn query_hits(query: &str) -> Vec<HitDigits> {
    let decoded = decoded_query(query);
    let mut out = hits(&decoded);
    let mut denoted = Vec::new();
    literal_cards(&decoded, &mut denoted);
    if query.contains('+') {
        let signed: Vec<u8> = percent_encoding::percent_decode_str(query).collect();
        literal_cards(&signed, &mut denoted);
    }
    if let Some(twice) = decoded_escapes(&decoded) {
        for hit in hits(&twice) {
            let hit = hit.decoded();
            if !among(&hit, &out) {
                out.push(hit);
            }
        }
        literal_cards(&twice, &mut denoted);
    }
    out.append(&mut denoted);
    out
}

/// Push the card each number literal in `text` denotes ([`guard::literal_cards`])
/// onto `out`, once per card: never plain, so never taken for a token of ours.
fn literal_cards(text: &[u8], out: &mut Vec<HitDigits>) {
    guard::literal_cards(text, |_, digits| {
        let hit = HitDigits::denoted(digits);
        if !among(&hit, out) {
            out.push(hit);
        }
    });
}

/// A query string as a backend reads it: `+` as a space, `%XX` decoded. Borrowed when
/// there is nothing to decode.
pub fn decoded_query(query: &str) -> Cow<'_, [u8]> {
    if !query.contains(['%', '+']) {
        return Cow::Borrowed(query.as_bytes());
    }
    let spaced = query.replace('+', " ");
    Cow::Owned(percent_encoding::percent_decode(spaced.as_bytes()).collect())
}

/// The hits in a request's path as it is forwarded, read as a backend may: raw, with
/// `%XX` decoded once and twice, `;` parameters included (which the route matcher
/// reads past), number literals as the cards they denote (`/4242424242424241.9`).
/// As [`query_hits`] reads a query; a `+`, a space there, separates digits either
/// way.
pub fn path_hits(path: &str) -> Vec<HitDigits> {
    query_hits(path)
}

/// The hits in a request's head beyond its path and query: [`header_hits`], and the
/// authority of its target (HTTP/2's `:authority`, an absolute-form target), which
/// stands for `Host` when there is none and is forwarded as `X-Forwarded-Host`.
pub fn head_hits(parts: &http::request::Parts) -> Vec<HitDigits> {
    let mut out = header_hits(&parts.headers);
    if let Some(authority) = parts.uri.authority() {
        collect_header_hits(authority.as_str().as_bytes(), &mut out);
    }
    out
}

/// The hits in a request's header names, its header values (except
/// `Authorization`'s) and its cookies, each read raw and with `%XX` decoded.
pub fn header_hits(headers: &HeaderMap) -> Vec<HitDigits> {
    let mut out = Vec::new();
    // A name is sent on as it is, whatever its value: each is read once.
    for name in headers.keys() {
        collect_header_hits(name.as_str().as_bytes(), &mut out);
    }
    for (name, value) in headers {
        if name == header::AUTHORIZATION || name == header::PROXY_AUTHORIZATION {
            continue;
        }
        collect_header_hits(value.as_bytes(), &mut out);
    }
    out
}

/// Push the hits of a header's name or value onto `out`: as it is, and with `%XX`
/// decoded (cookie values and other header values are often percent-encoded, and
/// `%` is a token character a name may hold); and as a free string field of the
/// body is read (`scan_leaf`: escapes, `%XX` twice, character references, base64,
/// nested JSON, number literals as the cards they denote), since a backend may
/// parse a header value as JSON (`X-Metadata: {"n":"\u0034…"}`), a number
/// (`41111111111111.115e2`) or base64 as readily as a field. A hit found only so is
/// never plain, so never taken for one of our tokens.
fn collect_header_hits(bytes: &[u8], out: &mut Vec<HitDigits>) {
    collect_hits(bytes, out);
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if bytes.contains(&b'%') {
        collect_hits(&decoded_query(text), out);
    }
    let mut in_place = Vec::new();
    let mut hidden = Vec::new();
    guard::scan_leaf(text, guard::Leaf::Text, &mut in_place, &mut hidden);
    for digits in &hidden {
        let hit = HitDigits::denoted(digits.expose().as_bytes());
        if !among(&hit, out) {
            out.push(hit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_six_and_four() {
        assert_eq!(mask("4242424242424242"), "424242******4242");
        assert_eq!(mask("378282246310005"), "378282*****0005");
        assert_eq!(mask("123"), "123");
    }

    #[test]
    fn a_zero_padded_card_is_read_as_the_card_and_is_not_plain() {
        let found = hits(b"id=0004242424242424242&x=1");
        assert_eq!(found.len(), 1);
        assert_eq!(&*found[0], "4242424242424242");
        assert!(!found[0].is_plain());
        let found = hits("\u{ff14}242424242424242".as_bytes());
        assert_eq!(&*found[0], "4242424242424242");
        assert!(!found[0].is_plain());
        assert!(hits(b"4242424242424242")[0].is_plain());
    }

    #[test]
    fn escapes_escaped_twice_are_read() {
        // Found by the leak differential (`tests/proxy/leak_differential`): `%2520` in
        // a pass-through body is `%20`, then a space, to a backend decoding the form
        // and then its field.
        for body in [
            br#"{"note":"42424242424%252024242"}"#.as_slice(),
            b"note=4242%2520%2B4242%25204242%252D4242",
            b"<p>4242&amp;#32;4242&amp;ndash;4242 4242</p>",
            // A form value HTML-escaped twice: `%26` is `&`, then `&amp;` is `&`.
            b"note=424%26amp%3B%2332%3B2424242424242",
        ] {
            let found = escaped_hits(body);
            assert!(
                found.iter().any(|h| &**h == "4242424242424242"),
                "{}",
                body.escape_ascii()
            );
        }
    }

    #[test]
    fn finds_cards_in_queries_and_headers() {
        assert_eq!(hits(&decoded_query("a=4242+4242+4242+4242")).len(), 1);
        assert_eq!(hits(&decoded_query("a=%34242424242424242")).len(), 1);
        assert!(hits(&decoded_query("id=1234567890")).is_empty());
        let mut h = HeaderMap::new();
        h.insert("cookie", "c=4111111111111111".parse().unwrap());
        h.insert("authorization", "Bearer 4242424242424242".parse().unwrap());
        assert_eq!(header_hits(&h).len(), 1);
        let mut named = HeaderMap::new();
        named.insert("x-4242424242424242", "1".parse().unwrap());
        named.insert("x-%34111111111111111", "1".parse().unwrap());
        named.insert("x-order-1234567890123", "1".parse().unwrap());
        assert_eq!(header_hits(&named).len(), 2);
        for path in [
            "/c/378282246310005",
            "/c;n=378282246310005",
            "/c/3782%2082246310005",
            "/c/%2533%37%38282246310005",
        ] {
            assert_eq!(path_hits(path).len(), 1, "{path}");
        }
        assert!(path_hits("/accounts/1234567890/paymentInfo").is_empty());
    }

    #[test]
    fn number_literals_in_queries_and_paths_are_the_cards_they_denote() {
        for text in [
            "amount=4242424242424241.9",
            "x=4.2424242424242419e+15",
            "x=4.2424242424242419e%2B15",
            "x=%34242424242424241.9",
            "x=%2534242424242424241.9",
            "/pt/42424242424242420e-1",
        ] {
            let found = query_hits(text);
            assert!(
                found
                    .iter()
                    .any(|h| &**h == "4242424242424242" && !h.is_plain()),
                "{text}"
            );
        }
        for text in [
            "amount=12.50",
            "id=1234567890123",
            "ts=1700000000.125&r=0.25",
        ] {
            assert!(query_hits(text).is_empty(), "{text}");
        }
    }
}
