//! Header hygiene between client, proxy and upstream.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// The prefix of vaultgate's own headers; a client never gets to set them.
const OWN_PREFIX: &str = "x-vaultgate-";

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const HTTP: HeaderValue = HeaderValue::from_static("http");
const HTTPS: HeaderValue = HeaderValue::from_static("https");

/// Whether `name` describes one hop and is never forwarded (RFC 9110 §7.6.1):
/// `Connection`, `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`, `Transfer-Encoding`,
/// `Upgrade`. (Headers that `Connection` names are hop-by-hop too.)
fn hop_by_hop(name: &HeaderName) -> bool {
    hop_by_hop_name(name.as_str())
}

/// [`hop_by_hop`] of a name's text (lower case, as `HeaderName` holds it).
fn hop_by_hop_name(name: &str) -> bool {
    // Most names are decided by their first byte (every request and response has
    // several headers, and few of them go).
    matches!(
        name.as_bytes().first(),
        Some(b'c' | b'k' | b't' | b'u' | b'p')
    ) && (matches!(
        name,
        "connection" | "keep-alive" | "te" | "trailer" | "transfer-encoding" | "upgrade"
    ) || name.starts_with("proxy-"))
}

/// Whether a client may not send `name` on through the proxy: a hop-by-hop header,
/// one of vaultgate's own (`x-vaultgate-*`), or `Expect` (`100-continue` is answered
/// on the client's side, so the upstream gets the body without waiting).
fn not_forwarded(name: &HeaderName) -> bool {
    let name = name.as_str();
    hop_by_hop_name(name)
        || (matches!(name.as_bytes().first(), Some(b'e' | b'x'))
            && (name == "expect" || name.starts_with(OWN_PREFIX)))
}

/// Refuse a request whose `Transfer-Encoding` holds anything but `chunked`, once
/// (RFC 9112 §6.1: 501 for a coding the server does not understand). hyper takes
/// any list that ends in `chunked` (`gzip, chunked`) and undoes only the chunking,
/// and the header, hop-by-hop, is not forwarded: the upstream would get the coded
/// bytes as plain content, and the guard would have read them so too. The header
/// may come as several lines, which read as one list.
pub fn check_transfer_coding(headers: &HeaderMap) -> crate::Result<()> {
    let mut chunked = 0usize;
    for value in headers.get_all(header::TRANSFER_ENCODING) {
        let text = value
            .to_str()
            .map_err(|_| crate::Error::UnsupportedTransferCoding)?;
        // Empty list elements are allowed (RFC 9110 §5.6.1).
        for coding in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            if !coding.eq_ignore_ascii_case("chunked") {
                return Err(crate::Error::UnsupportedTransferCoding);
            }
            chunked += 1;
        }
    }
    if chunked > 1 {
        return Err(crate::Error::UnsupportedTransferCoding);
    }
    Ok(())
}

/// Remove hop-by-hop headers: `Connection` and every header it names, `Keep-Alive`,
/// `Proxy-*`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    strip(headers, hop_by_hop);
}

/// Remove what a request may not take to the upstream: the hop-by-hop headers
/// ([`strip_hop_by_hop`]), vaultgate's own `x-vaultgate-*` headers and `Expect`.
pub fn strip_request(headers: &mut HeaderMap) {
    strip(headers, not_forwarded);
}

/// Remove the headers `goes` picks, and with `Connection` the ones it names. One pass
/// over the names finds whether there is any (there usually is none on a request, and
/// on a response only `Connection` naming nothing else) before anything is allocated
/// or removed.
fn strip(headers: &mut HeaderMap, goes: fn(&HeaderName) -> bool) {
    let mut going = headers.keys().filter(|k| goes(k));
    let Some(first) = going.next() else {
        return;
    };
    let only_connection = first == header::CONNECTION && going.next().is_none();
    let named = names_in_connection(headers);
    if only_connection && named.is_empty() {
        headers.remove(header::CONNECTION);
        return;
    }
    let found: Vec<HeaderName> = headers
        .keys()
        .filter(|k| goes(k) || named.contains(k))
        .cloned()
        .collect();
    for name in found {
        headers.remove(name);
    }
}

/// The header names that `Connection` lists, but for `keep-alive` and `close`, the
/// usual tokens, which name nothing else to remove (so this is usually empty and
/// allocates nothing).
fn names_in_connection(headers: &HeaderMap) -> Vec<HeaderName> {
    let mut values = headers.get_all(header::CONNECTION).iter();
    // The usual case, an upstream's `Connection: keep-alive`, without splitting.
    if let (Some(one), None) = (values.next(), values.next()) {
        let v = one.as_bytes();
        if v.eq_ignore_ascii_case(b"keep-alive") || v.eq_ignore_ascii_case(b"close") {
            return Vec::new();
        }
    }
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|name| {
            !name.eq_ignore_ascii_case("keep-alive") && !name.eq_ignore_ascii_case("close")
        })
        .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
        .collect()
}

/// Set `X-Forwarded-For` (appending the peer, `peer` being its address as a header
/// value), `X-Forwarded-Proto` and `X-Forwarded-Host` (the host the client asked
/// for).
pub fn set_forwarded(
    headers: &mut HeaderMap,
    peer: &HeaderValue,
    tls: bool,
    host: Option<HeaderValue>,
) {
    let value = if headers.contains_key(&X_FORWARDED_FOR) {
        let mut joined: Vec<u8> = Vec::new();
        for prior in headers.get_all(&X_FORWARDED_FOR) {
            joined.extend_from_slice(prior.as_bytes());
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(peer.as_bytes());
        HeaderValue::from_bytes(&joined).unwrap_or_else(|_| peer.clone())
    } else {
        peer.clone()
    };
    headers.insert(X_FORWARDED_FOR, value);
    headers.insert(X_FORWARDED_PROTO, if tls { HTTPS } else { HTTP });
    match host {
        Some(v) => {
            headers.insert(X_FORWARDED_HOST, v);
        }
        None => {
            headers.remove(X_FORWARDED_HOST);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first-byte shortcut decides as the lists alone would, for every standard
    /// header name and names near the ones that go.
    #[test]
    fn the_first_byte_shortcut_agrees_with_the_lists() {
        let by_list = |n: &str| {
            let hop = matches!(
                n,
                "connection" | "keep-alive" | "te" | "trailer" | "transfer-encoding" | "upgrade"
            ) || n.starts_with("proxy-");
            (hop, hop || n == "expect" || n.starts_with(OWN_PREFIX))
        };
        let mut names: Vec<HeaderName> = vec![
            header::ACCEPT,
            header::ACCEPT_ENCODING,
            header::AUTHORIZATION,
            header::CACHE_CONTROL,
            header::CONNECTION,
            header::CONTENT_ENCODING,
            header::CONTENT_LENGTH,
            header::CONTENT_TYPE,
            header::COOKIE,
            header::DATE,
            header::EXPECT,
            header::HOST,
            header::ORIGIN,
            header::PROXY_AUTHENTICATE,
            header::PROXY_AUTHORIZATION,
            header::SERVER,
            header::TE,
            header::TRAILER,
            header::TRANSFER_ENCODING,
            header::UPGRADE,
            header::USER_AGENT,
            header::VIA,
        ];
        for custom in [
            "keep-alive",
            "proxy-connection",
            "proxy-",
            "x-vaultgate-route",
            "x-vaultgate",
            "x-request-id",
            "traceparent",
            "expected",
            "e",
            "x",
            "t",
            "teapot",
            "upgrade-insecure-requests",
        ] {
            names.push(HeaderName::from_static(custom));
        }
        for name in &names {
            let (hop, goes) = by_list(name.as_str());
            assert_eq!(hop_by_hop(name), hop, "{name}");
            assert_eq!(not_forwarded(name), goes, "{name}");
        }
    }

    #[test]
    fn strips_hop_by_hop_and_named() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("proxy-connection", HeaderValue::from_static("close"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(header::CONTENT_TYPE));

        // The usual response: `Connection` alone, naming nothing else (any case).
        for value in ["keep-alive", "Keep-Alive, close", "close"] {
            let mut h = HeaderMap::new();
            h.insert(header::CONNECTION, HeaderValue::from_static(value));
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            h.insert("keep", HeaderValue::from_static("1"));
            strip_hop_by_hop(&mut h);
            let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
            left.sort_unstable();
            assert_eq!(left, ["content-type", "keep"], "{value}");
        }
        // `Connection` alone but naming a header: that one goes too.
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, keep"),
        );
        h.insert("keep", HeaderValue::from_static("1"));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(header::CONTENT_TYPE));
    }

    #[test]
    fn a_request_leaves_without_hop_by_hop_own_or_expect_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("close, x-hop"));
        h.append(header::CONNECTION, HeaderValue::from_static("X-Other"));
        h.insert("x-hop", HeaderValue::from_static("1"));
        h.insert("x-other", HeaderValue::from_static("1"));
        h.insert("x-vaultgate-client", HeaderValue::from_static("admin"));
        h.insert("X-VaultGate-Route", HeaderValue::from_static("pass"));
        h.insert(header::EXPECT, HeaderValue::from_static("100-continue"));
        h.insert("proxy-authorization", HeaderValue::from_static("Basic x"));
        h.insert(header::TRAILER, HeaderValue::from_static("x-sum"));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_request(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "x-keep"]);

        // Nothing to strip: the map is left as it was.
        let before = h.clone();
        strip_request(&mut h);
        strip_hop_by_hop(&mut h);
        assert_eq!(h, before);
        // A response keeps `Expect`-like and own-prefixed names it may carry.
        h.insert("x-vaultgate-route", HeaderValue::from_static("pass"));
        strip_hop_by_hop(&mut h);
        assert!(h.contains_key("x-vaultgate-route"));
    }

    #[test]
    fn forwarded_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        h.insert("x-vaultgate-client", HeaderValue::from_static("admin"));
        strip_request(&mut h);
        set_forwarded(
            &mut h,
            &HeaderValue::from_static("127.0.0.1"),
            true,
            Some(HeaderValue::from_static("shop.example")),
        );
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "shop.example");
        assert!(!h.contains_key("x-vaultgate-client"));
    }

    #[test]
    fn only_chunked_once_is_a_transfer_coding_we_take() {
        let check = |lines: &[&str]| {
            let mut h = HeaderMap::new();
            for l in lines {
                h.append(header::TRANSFER_ENCODING, l.parse().unwrap());
            }
            check_transfer_coding(&h).is_ok()
        };
        assert!(check(&[]));
        assert!(check(&["chunked"]));
        assert!(check(&["Chunked"]));
        assert!(check(&[" , chunked"]));
        for refused in [
            &["gzip, chunked"][..],
            &["gzip", "chunked"],
            &["chunked, chunked"],
            &["chunked", "chunked"],
            &["identity, chunked"],
            &["chunked;x=1"],
        ] {
            assert!(!check(refused), "{refused:?}");
        }
    }
}
