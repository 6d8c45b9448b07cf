//! One error type for the whole crate, with one mapping to an HTTP status.
//!
//! Messages are `&'static str` or built only from field names, config keys and
//! paths — never from request values — so an error can be logged or returned to a
//! client without leaking a card number.

use http::StatusCode;

/// What went wrong with an HSM (PKCS#11) seal; each has its own error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HsmFailure {
    /// The module (shared library) could not be loaded or initialised.
    ModuleLoad,
    /// No token in the named slot or with the named label.
    TokenMissing,
    /// No key (or more than one) with the named label in the token.
    KeyMissing,
    /// The token refused the PIN, or none was given.
    PinIncorrect,
    /// The wrapping key is extractable or not sensitive.
    KeyExtractable,
    /// Any other failure of the module.
    Failed,
}

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
    /// A record is sealed under a data key version this server does not hold, even
    /// after reloading the keyring (a rotation it has not seen yet).
    #[error("the record's data key version is not available on this server")]
    KeyUnavailable,
    /// A record or keyring failed its integrity check (AES-GCM tag, MAC, format).
    #[error("integrity check failed: {0}")]
    Integrity(&'static str),
    /// No free token is left in this token space.
    #[error("no free token is left in this token space ({0})")]
    TokenSpaceExhausted(&'static str),
    /// The vault is sealed: its keys are not in memory until it is unsealed.
    #[error("the vault is sealed")]
    Sealed,
    /// An unseal share that is malformed, mistyped, or not one of this keyring's.
    #[error("invalid share: {0}")]
    InvalidShare(&'static str),
    /// The HSM of a PKCS#11 seal failed; the message names the module, token or key
    /// label, never the PIN.
    #[error("hsm: {1}")]
    Hsm(HsmFailure, String),
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
    /// A request carries more sensitive values than `limits.max_sensitive_values`.
    #[error("the request carries more than {limit} sensitive values")]
    TooManySensitiveValues { limit: usize },
    /// The in-memory CVV store is full (`vault.cvv_max_entries` / `cvv_max_bytes`).
    #[error("the CVV store is full; try again later")]
    CvvStoreFull,
    /// Something that should not happen; reported instead of panicking.
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// A conditional field rule's field is present but none of its conditions holds
    /// (the condition field is missing or has an unknown value), or parsers read the
    /// field differently and no rewrite serves them all (a form pair after a `;`
    /// inside a value rewritten whole); the location names the field.
    #[error(
        "the sensitive field at {0} cannot be classified: no condition of its rule holds, or parsers read it differently"
    )]
    AmbiguousSensitiveField(String),
    /// A sensitive field appears more than once at the same place (duplicate JSON
    /// keys, repeated form keys, keys that differ only in case).
    #[error("the sensitive field at {0} appears more than once")]
    DuplicateSensitiveField(String),
    /// The request carries more than one Content-Type header.
    #[error("the request has more than one Content-Type header")]
    DuplicateContentType,
    /// The route that owns the path does not take this method. `allow` lists the
    /// methods it takes (from the config), for the `Allow` header.
    #[error("this path does not take this method; allowed: {allow}")]
    MethodNotAllowed { allow: String },
    /// A method-override header on a path a rules route owns.
    #[error("method-override headers are refused on this path")]
    MethodOverrideRefused,
    /// Every connection slot is taken by a busy connection.
    #[error("too many connections")]
    Overloaded,
    /// The request bodies held in memory whole have taken
    /// `limits.max_buffered_body_bytes` (see [`crate::net::budget`]). 503 `overloaded`
    /// with `Retry-After`.
    #[error("too many request bodies are held in memory; retry shortly")]
    BodyMemoryFull,
    /// Too many new card numbers sharing a first six and last four in one window
    /// (`vault.sweep_threshold` per `vault.sweep_window_secs`): an enumeration of
    /// candidates against a deterministic token. 429 with `Retry-After`.
    #[error("too many new card numbers with this first six and last four; try again later")]
    TokenizationSweepDetected { retry_after_secs: u64 },
    /// A CVV's `scope` that is not a token of this vault.
    #[error("scope: not a token of this vault")]
    InvalidScope,
    #[error("the request has a transfer coding other than chunked (applied once)")]
    UnsupportedTransferCoding,
    /// The destination's answer to an outbound request shows a value revealed into
    /// that request in a form that cannot be swapped back for its token in place
    /// (base64, escaped twice, a number literal, UTF-16): the answer is refused whole.
    #[error(
        "the destination's answer shows a revealed value that cannot be swapped back for its token"
    )]
    EchoUnswappable,
    /// The destination's answer to an outbound request that revealed values could not
    /// be checked for them (a content coding the proxy cannot undo, a body over
    /// `limits.max_body_bytes`, a broken body): refused rather than passed unread.
    #[error("the destination's answer could not be checked for revealed values: {0}")]
    EchoUnchecked(&'static str),
    /// The destination's answer to an outbound request shows a card number the request
    /// did not reveal in a form that cannot be tokenized in place (base64, escaped
    /// twice, a number literal, UTF-16, a header name): refused whole.
    #[error("the destination's answer shows a card number that cannot be tokenized in place")]
    AnswerUnswappable,
    /// The destination's answer shows a card number the request did not reveal, on a
    /// route whose `answer_guard` is `refuse`.
    #[error("the destination's answer shows a card number; this route refuses such answers")]
    AnswerCardRefused,
    /// The destination's answer could not be read for card numbers (a content coding
    /// the proxy cannot undo, a body over `limits.max_body_bytes`, a broken body, too
    /// many card numbers): refused rather than passed unread.
    #[error("the destination's answer could not be checked for card numbers: {0}")]
    AnswerUnchecked(&'static str),
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
            // 501: the client sent a transfer coding the proxy does not implement.
            400..=499 | 501 => Side::Client,
            502 | 504 => Side::Upstream,
            _ => Side::Internal,
        }
    }

    /// The one place an error becomes an HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::InvalidBody(_)
            | Error::BadRequest(_)
            | Error::LeakRejected(_)
            | Error::AmbiguousSensitiveField(_)
            | Error::DuplicateSensitiveField(_)
            | Error::DuplicateContentType
            | Error::TooManySensitiveValues { .. }
            | Error::MethodOverrideRefused => StatusCode::BAD_REQUEST,
            Error::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            // RFC 9112 §6.1: a transfer coding the server does not understand.
            Error::UnsupportedTransferCoding => StatusCode::NOT_IMPLEMENTED,
            Error::Overloaded | Error::BodyMemoryFull => StatusCode::SERVICE_UNAVAILABLE,
            Error::InvalidValue(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::NoRoute | Error::TokenNotFound => StatusCode::NOT_FOUND,
            Error::Unauthenticated => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::CvvExpired => StatusCode::GONE,
            Error::RateLimited { .. } | Error::TokenizationSweepDetected { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            // The scope names a token that does not exist here: a missing token is
            // 404 everywhere in the API (and schema-valid input is never a 400).
            Error::InvalidScope => StatusCode::NOT_FOUND,
            Error::UpstreamUnavailable
            | Error::EchoUnswappable
            | Error::EchoUnchecked(_)
            | Error::AnswerUnswappable
            | Error::AnswerCardRefused
            | Error::AnswerUnchecked(_) => StatusCode::BAD_GATEWAY,
            Error::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Error::StoreUnavailable
            | Error::AuditUnavailable
            | Error::KeyUnavailable
            | Error::CvvStoreFull
            | Error::Sealed => StatusCode::SERVICE_UNAVAILABLE,
            Error::InvalidShare(_) => StatusCode::BAD_REQUEST,
            Error::Integrity(_)
            | Error::TokenSpaceExhausted(_)
            | Error::Keyring(_)
            | Error::Hsm(..)
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
            Error::UpstreamUnavailable => "upstream_unavailable",
            Error::UpstreamTimeout => "upstream_timeout",
            Error::StoreUnavailable => "store_unavailable",
            Error::AuditUnavailable => "audit_unavailable",
            Error::KeyUnavailable => "key_unavailable",
            Error::Integrity(_) => "integrity_error",
            Error::TokenSpaceExhausted(_) => "token_space_exhausted",
            Error::Sealed => "sealed",
            Error::InvalidShare(_) => "invalid_share",
            Error::Hsm(kind, _) => match kind {
                HsmFailure::ModuleLoad => "hsm_module_load_failed",
                HsmFailure::TokenMissing => "hsm_token_missing",
                HsmFailure::KeyMissing => "hsm_key_missing",
                HsmFailure::PinIncorrect => "hsm_pin_incorrect",
                HsmFailure::KeyExtractable => "hsm_key_extractable",
                HsmFailure::Failed => "hsm_error",
            },
            Error::Keyring(_) => "keyring_error",
            Error::Config(_) => "config_error",
            Error::Store(_) | Error::Sled(_) => "store_error",
            Error::Io { .. } => "io_error",
            Error::Internal(_) => "internal_error",
            Error::AmbiguousSensitiveField(_) => "ambiguous_sensitive_field",
            Error::DuplicateSensitiveField(_) => "duplicate_sensitive_field",
            Error::DuplicateContentType => "duplicate_content_type",
            Error::TooManySensitiveValues { .. } => "too_many_sensitive_values",
            Error::CvvStoreFull => "cvv_store_full",
            Error::MethodNotAllowed { .. } => "method_not_allowed",
            Error::MethodOverrideRefused => "method_override_refused",
            Error::Overloaded | Error::BodyMemoryFull => "overloaded",
            Error::TokenizationSweepDetected { .. } => "tokenization_sweep_detected",
            Error::InvalidScope => "invalid_scope",
            Error::UnsupportedTransferCoding => "unsupported_transfer_coding",
            Error::EchoUnswappable => "echo_unswappable",
            Error::EchoUnchecked(_) => "echo_unchecked",
            Error::AnswerUnswappable => "answer_unswappable",
            Error::AnswerCardRefused => "answer_card_refused",
            Error::AnswerUnchecked(_) => "answer_unchecked",
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
        assert_eq!(Error::UnsupportedTransferCoding.status(), 501);
        assert_eq!(Error::UnsupportedTransferCoding.side(), Side::Client);
        assert_eq!(
            Error::Store("disk".into()).public_message(),
            "internal error"
        );
        assert!(Error::CvvExpired.to_json().contains("cvv_expired"));
    }
}
