//! Header hygiene between client, proxy and upstream.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that describe one hop and are never forwarded (RFC 9110 §7.6.1), besides
/// the ones named in `Connection`.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// The prefix of vaultgate's own headers; a client never gets to set them.
const OWN_PREFIX: &str = "x-vaultgate-";

/// Remove hop-by-hop headers: `Connection` and every header it names, `Keep-Alive`,
/// `Proxy-*`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // `keep-alive` and `close` are the usual `Connection` tokens and name nothing
    // else to remove: only other tokens are collected (rarely any).
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|name| {
            !name.eq_ignore_ascii_case("keep-alive") && !name.eq_ignore_ascii_case("close")
        })
        .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
    remove_prefixed(headers, "proxy-");
}

/// Remove every `x-vaultgate-*` header a client sent.
pub fn strip_own(headers: &mut HeaderMap) {
    remove_prefixed(headers, OWN_PREFIX);
}

/// Remove the headers whose (lower-case) names start with `prefix`; looks before it
/// allocates, since there usually are none.
fn remove_prefixed(headers: &mut HeaderMap, prefix: &str) {
    let matches = |k: &HeaderName| k.as_str().starts_with(prefix);
    if !headers.keys().any(matches) {
        return;
    }
    let found: Vec<HeaderName> = headers.keys().filter(|k| matches(k)).cloned().collect();
    for name in found {
        headers.remove(name);
    }
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
    let xff = HeaderName::from_static("x-forwarded-for");
    let value = if headers.contains_key(&xff) {
        let mut joined: Vec<u8> = Vec::new();
        for prior in headers.get_all(&xff) {
            joined.extend_from_slice(prior.as_bytes());
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(peer.as_bytes());
        HeaderValue::from_bytes(&joined).unwrap_or_else(|_| peer.clone())
    } else {
        peer.clone()
    };
    headers.insert(xff, value);
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static(if tls { "https" } else { "http" }),
    );
    let xfh = HeaderName::from_static("x-forwarded-host");
    match host {
        Some(v) => {
            headers.insert(xfh, v);
        }
        None => {
            headers.remove(xfh);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn forwarded_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        h.insert("x-vaultgate-client", HeaderValue::from_static("admin"));
        strip_own(&mut h);
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
}
