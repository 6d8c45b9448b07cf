//! `[[clients]]` in the config file: parsed by serde, then validated here.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;

use super::apikey;
use crate::error::{Error, Result};
use crate::sensitive::DataClass;

/// The default reveal rate: tokens per minute per client.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 60_000;

/// One `[[clients]]` table.
///
/// ```toml
/// [[clients]]
/// name = "checkout"
/// api_key_hash = "$argon2id$v=19$m=19456,t=2,p=1$…"   # optional
/// cert_subject = "CN=checkout"                          # optional
/// reveal = ["pan", "cvv"]
/// reveal_masked = ["bank_account"]
/// tokenize = ["pan", "cvv", "bank_account", "secret"]
/// delete = false
/// seal = false                 # may seal the vault (POST /v1/sys/seal)
/// rate_limit_per_minute = 6000
/// ```
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// A unique name: `[A-Za-z0-9_.-]`, 1 to 64 characters (it goes into the audit log).
    pub name: String,
    /// An argon2id PHC string for the client's API key (see `generate_api_key`).
    #[serde(default)]
    pub api_key_hash: Option<String>,
    /// The identity in a verified client certificate: `CN=name`, `DNS=name`, or a bare
    /// name; matched against the certificate's common name or a DNS SAN.
    #[serde(default)]
    pub cert_subject: Option<String>,
    /// Classes the client may reveal in full.
    #[serde(default)]
    pub reveal: Vec<DataClass>,
    /// Classes the client may reveal masked (last four only).
    #[serde(default)]
    pub reveal_masked: Vec<DataClass>,
    /// Classes the client may tokenize through the API.
    #[serde(default)]
    pub tokenize: Vec<DataClass>,
    /// Whether the client may delete tokens.
    #[serde(default)]
    pub delete: bool,
    /// Whether the client may seal the vault (drop its keys from memory).
    #[serde(default)]
    pub seal: bool,
    /// Tokens revealed per minute (a token bucket holding one minute's worth).
    #[serde(default = "default_rate")]
    pub rate_limit_per_minute: u32,
}

fn default_rate() -> u32 {
    DEFAULT_RATE_LIMIT_PER_MINUTE
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("name", &self.name)
            .field("api_key_hash", &self.api_key_hash.as_ref().map(|_| "<set>"))
            .field("cert_subject", &self.cert_subject)
            .field("reveal", &self.reveal)
            .field("reveal_masked", &self.reveal_masked)
            .field("tokenize", &self.tokenize)
            .field("delete", &self.delete)
            .field("seal", &self.seal)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .finish()
    }
}

impl ClientConfig {
    /// A client with a name and nothing else (for tests and the CLI).
    pub fn named(name: impl Into<String>) -> Self {
        ClientConfig {
            name: name.into(),
            api_key_hash: None,
            cert_subject: None,
            reveal: Vec::new(),
            reveal_masked: Vec::new(),
            tokenize: Vec::new(),
            delete: false,
            seal: false,
            rate_limit_per_minute: DEFAULT_RATE_LIMIT_PER_MINUTE,
        }
    }
}

/// The name a certificate must present for `cert_subject`: `CN=x`, `DNS=x` or `x`.
pub(crate) fn cert_name(subject: &str) -> &str {
    let s = subject.trim();
    for prefix in ["CN=", "cn=", "DNS=", "dns="] {
        if let Some(rest) = s.strip_prefix(prefix) {
            return rest.trim();
        }
    }
    s
}

/// Check every client and the set as a whole. Messages name clients and keys only.
pub fn validate_clients(clients: &[ClientConfig]) -> Result<()> {
    let mut names = HashSet::new();
    let mut hashes = HashSet::new();
    let mut subjects = HashSet::new();
    for c in clients {
        let at = |what: &str| Error::Config(format!("clients.{}: {what}", c.name));
        let name_ok = !c.name.is_empty()
            && c.name.len() <= 64
            && c.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !name_ok {
            return Err(Error::Config(
                "clients: a name must be 1 to 64 characters of A-Z a-z 0-9 _ - .".to_owned(),
            ));
        }
        if !names.insert(c.name.as_str()) {
            return Err(at("the name is used by more than one client"));
        }
        if c.api_key_hash.is_none() && c.cert_subject.is_none() {
            return Err(at("needs api_key_hash or cert_subject"));
        }
        if let Some(hash) = &c.api_key_hash {
            apikey::parse_phc(hash).map_err(|_| {
                at("api_key_hash is not an argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash)")
            })?;
            if !hashes.insert(hash.as_str()) {
                return Err(at("api_key_hash is shared with another client"));
            }
        }
        if let Some(subject) = &c.cert_subject {
            let name = cert_name(subject);
            if name.is_empty() {
                return Err(at("cert_subject is empty"));
            }
            if !subjects.insert(name.to_ascii_lowercase()) {
                return Err(at("cert_subject is shared with another client"));
            }
        }
        if let Some(class) = c.reveal.iter().find(|k| c.reveal_masked.contains(k)) {
            return Err(at(&format!(
                "class {} is in both reveal and reveal_masked",
                class.as_str()
            )));
        }
        if c.rate_limit_per_minute == 0 {
            return Err(at("rate_limit_per_minute must be at least 1"));
        }
    }
    Ok(())
}
