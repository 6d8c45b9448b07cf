//! One error type for the whole crate, with one mapping to an HTTP status.
//!
//! Messages are `&'static str` or built only from field names, config keys and
//! paths — never from request values — so an error can be logged or returned to a
//! client without leaking a card number.

use http::StatusCode;

/// Which side of the proxy caused a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The caller sent something we refuse (4xx).
    Client,
    /// The upstream or destination failed (5xx gateway errors).
    Upstream,
    /// vaultgate itself, its store, its keys or its audit log (5xx).
    Internal,
}

/// Every failure vaultgate reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The body on a route with sensitive fields could not be parsed.
    #[error("the request body could not be parsed: {0}")]
    InvalidBody(String),
    /// A request that is malformed in some other way (bad JSON to the API, say).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The body is larger than the route's limit.
    #[error("the request body is larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// A content type or content encoding that this route cannot read.
    #[error("unsupported media: {0}")]
    UnsupportedMedia(String),
    /// The leak guard found a card number and the route's policy is `reject`.
    #[error("a card number was found outside the configured fields at {0}")]
    LeakRejected(String),
    /// No route matches the request.
    #[error("no route matches this request")]
    NoRoute,
    /// No or a wrong credential.
    #[error("authentication required")]
    Unauthenticated,
    /// The caller is known but not allowed this.
    #[error("not allowed: {0}")]
    Forbidden(&'static str),
    /// The token does not exist (or the caller may not know it exists).
    #[error("token not found")]
    TokenNotFound,
    /// A CVV token that expired, was already revealed, or was dropped by a restart.
    #[error("the CVV token has expired or was already used")]
    CvvExpired,
    /// A value that does not fit the data class (a PAN with letters, say).
    #[error("the value is not a valid {0}")]
    InvalidValue(&'static str),
    /// The caller went over its reveal rate limit; it may try again after this many
    /// seconds (the `Retry-After` header).
    #[error("rate limit exceeded")]
    RateLimited { retry_after_secs: u64 },
    /// The upstream could not be reached or broke the connection.
    #[error("the upstream is unavailable")]
    UpstreamUnavailable,
    /// The upstream did not answer in time.
    #[error("the upstream did not answer in time")]
    UpstreamTimeout,
    /// The token store cannot be reached (a lost database connection, say).
    #[error("the token store is unavailable")]
    StoreUnavailable,
    /// The audit log cannot be written, so reveals are refused.
    #[error("the audit log cannot be written")]
    AuditUnavailable,
    /// A record or keyring failed its integrity check (AES-GCM tag, MAC, format).
    #[error("integrity check failed: {0}")]
    Integrity(&'static str),
    /// No free token is left in this token space.
    #[error("no free token is left in this token space ({0})")]
    TokenSpaceExhausted(&'static str),
    /// The keyring could not be opened or written.
    #[error("keyring: {0}")]
    Keyring(String),
    /// The configuration is invalid; the message names the key.
    #[error("config: {0}")]
    Config(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
    /// The embedded store (sled) failed; the cause is kept as the error's source.
    #[error("store: the embedded store failed")]
    Sled(#[from] sled::Error),
    /// An I/O error outside a request (files, sockets at start-up).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Something that should not happen; reported instead of panicking.
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// A known path with a method it does not answer; holds the `Allow` header value.
    #[error("this method is not allowed here")]
    MethodNotAllowed(&'static str),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wrap an I/O error with what we were doing.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Which side failed.
    pub fn side(&self) -> Side {
        match self.status().as_u16() {
            400..=499 => Side::Client,
            502 | 504 => Side::Upstream,
            _ => Side::Internal,
        }
    }

    /// The one place an error becomes an HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::InvalidBody(_) | Error::BadRequest(_) | Error::LeakRejected(_) => {
                StatusCode::BAD_REQUEST
            }
            Error::InvalidValue(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::NoRoute | Error::TokenNotFound => StatusCode::NOT_FOUND,
            Error::Unauthenticated => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::CvvExpired => StatusCode::GONE,
            Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            Error::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Error::StoreUnavailable | Error::AuditUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Error::Integrity(_)
            | Error::TokenSpaceExhausted(_)
            | Error::Keyring(_)
            | Error::Config(_)
            | Error::Store(_)
            | Error::Sled(_)
            | Error::Io { .. }
            | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable, machine-readable code for clients and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidBody(_) => "invalid_body",
            Error::BadRequest(_) => "bad_request",
            Error::BodyTooLarge { .. } => "body_too_large",
            Error::UnsupportedMedia(_) => "unsupported_media",
            Error::LeakRejected(_) => "card_number_detected",
            Error::NoRoute => "no_route",
            Error::Unauthenticated => "unauthenticated",
            Error::Forbidden(_) => "forbidden",
            Error::TokenNotFound => "token_not_found",
            Error::CvvExpired => "cvv_expired",
            Error::InvalidValue(_) => "invalid_value",
            Error::RateLimited { .. } => "rate_limited",
            Error::MethodNotAllowed(_) => "method_not_allowed",
            Error::UpstreamUnavailable => "upstream_unavailable",
            Error::UpstreamTimeout => "upstream_timeout",
            Error::StoreUnavailable => "store_unavailable",
            Error::AuditUnavailable => "audit_unavailable",
            Error::Integrity(_) => "integrity_error",
            Error::TokenSpaceExhausted(_) => "token_space_exhausted",
            Error::Keyring(_) => "keyring_error",
            Error::Config(_) => "config_error",
            Error::Store(_) | Error::Sled(_) => "store_error",
            Error::Io { .. } => "io_error",
            Error::Internal(_) => "internal_error",
        }
    }

    /// The message a client may see. Internal details stay in the logs.
    pub fn public_message(&self) -> String {
        match self.side() {
            Side::Internal if self.status() == StatusCode::INTERNAL_SERVER_ERROR => {
                "internal error".to_owned()
            }
            _ => self.to_string(),
        }
    }

    /// The JSON body of an error response: `{"error":{"code":…,"message":…}}`.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "error": { "code": self.code(), "message": self.public_message() }
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_side() {
        assert_eq!(Error::BodyTooLarge { limit: 1 }.status(), 413);
        assert_eq!(Error::UpstreamTimeout.side(), Side::Upstream);
        assert_eq!(Error::InvalidBody("x".into()).side(), Side::Client);
        assert_eq!(
            Error::Store("disk".into()).public_message(),
            "internal error"
        );
        assert!(Error::CvvExpired.to_json().contains("cvv_expired"));
    }
}
