//! `[[clients]]` in the config file: parsed by serde, then validated here.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

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
/// api_key_hash = "sha256:…"          # optional; or a list; legacy "$argon2id$…" too
/// cert_subject = "CN=checkout"                          # optional
/// reveal = ["pan", "cvv"]
/// reveal_masked = ["bank_account"]
/// tokenize = ["pan", "cvv", "bank_account", "secret"]
/// deterministic = ["pan"]
/// delete = false
/// seal = false                 # may seal the vault (POST /v1/sys/seal)
/// rate_limit_per_minute = 6000
/// ```
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// A unique name: `[A-Za-z0-9_.-]`, 1 to 64 characters (it goes into the audit log).
    pub name: String,
    /// Hashes of the client's API keys, `sha256:<hex>` (see `generate_api_key`) or
    /// legacy argon2id PHC strings: one
    /// string, or a list while a key is rolled over (every listed key authenticates).
    #[serde(default, deserialize_with = "one_or_many")]
    pub api_key_hash: Vec<String>,
    /// More key hashes, the same as listing them in `api_key_hash`.
    #[serde(default)]
    pub api_key_hashes: Vec<String>,
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
    /// Classes whose API tokens may be deterministic (the same value, the same token).
    /// For other classes the API hands this client a fresh random token every time.
    #[serde(default)]
    pub deterministic: Vec<DataClass>,
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
            .field("api_key_hashes", &self.key_hashes().count())
            .field("cert_subject", &self.cert_subject)
            .field("reveal", &self.reveal)
            .field("reveal_masked", &self.reveal_masked)
            .field("tokenize", &self.tokenize)
            .field("deterministic", &self.deterministic)
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
            api_key_hash: Vec::new(),
            api_key_hashes: Vec::new(),
            cert_subject: None,
            reveal: Vec::new(),
            reveal_masked: Vec::new(),
            tokenize: Vec::new(),
            deterministic: Vec::new(),
            delete: false,
            seal: false,
            rate_limit_per_minute: DEFAULT_RATE_LIMIT_PER_MINUTE,
        }
    }
}

impl ClientConfig {
    /// Every API key hash of this client (`api_key_hash` and `api_key_hashes`).
    pub fn key_hashes(&self) -> impl Iterator<Item = &str> {
        self.api_key_hash
            .iter()
            .chain(&self.api_key_hashes)
            .map(String::as_str)
    }
}

/// `api_key_hash = "…"` or `api_key_hash = ["…", "…"]`.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    struct OneOrMany;
    impl<'de> Visitor<'de> for OneOrMany {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an argon2id PHC string or a list of them")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
            Ok(vec![v.to_owned()])
        }
        fn visit_seq<A: SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                out.push(s);
            }
            Ok(out)
        }
    }
    d.deserialize_any(OneOrMany)
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
        if c.key_hashes().next().is_none() && c.cert_subject.is_none() {
            return Err(at("needs api_key_hash or cert_subject"));
        }
        for hash in c.key_hashes() {
            apikey::parse_key_hash(hash).map_err(|_| {
                at("api_key_hash is neither sha256:<64 hex digits> nor an argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash)")
            })?;
            if !hashes.insert(hash) {
                return Err(at(
                    "api_key_hash is listed twice or shared with another client",
                ));
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
