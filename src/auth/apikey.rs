//! API keys: `vg_live_` + 43 characters of base64url (32 random bytes), stored only as
//! `sha256:<64 hex digits>`, the SHA-256 of the whole key.
//!
//! A key carries 256 random bits, so a fast hash is as safe to store as a slow one:
//! nobody can search 2^256 candidates, whatever each costs. Checking one costs a
//! microsecond, so a flood of wrong keys costs nothing (argon2id made every unknown
//! key cost ~30 ms of CPU). Hashes made before (`$argon2id$…` PHC strings) keep
//! working, checked with argon2 behind the authenticator's cache; argon2id stays
//! for passphrases, which are guessable.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::config::ClientConfig;
use crate::error::{Error, Result};
use crate::sensitive::DataClass;

/// Every key starts with this, so that secret scanners can find leaked keys.
pub const KEY_PREFIX: &str = "vg_live_";
/// base64url of 32 bytes, unpadded.
const SECRET_LEN: usize = 43;

/// The prefix of a stored SHA-256 key hash.
pub const SHA256_PREFIX: &str = "sha256:";

/// A configured key hash: SHA-256 (what `clients add` writes) or a legacy argon2id
/// PHC string.
pub(crate) enum KeyHash {
    Sha256([u8; 32]),
    Argon2(Box<PasswordHash>),
}

/// Make a new API key and its stored form, `sha256:<hex>`.
///
/// The key is shown once to the operator; only the hash goes into the config.
pub fn generate_api_key() -> Result<(Zeroizing<String>, String)> {
    let mut secret = Zeroizing::new([0u8; 32]);
    OsRng
        .try_fill_bytes(secret.as_mut())
        .map_err(|_| Error::Internal("the system random number generator failed"))?;
    let mut key = Zeroizing::new(String::with_capacity(KEY_PREFIX.len() + SECRET_LEN));
    key.push_str(KEY_PREFIX);
    URL_SAFE_NO_PAD.encode_string(secret.as_ref(), &mut key);
    let hash = sha256_hash(&key);
    Ok((key, hash))
}

/// The stored form of a key: `sha256:` and the hex SHA-256 of the whole key string.
pub fn sha256_hash(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut out = String::with_capacity(SHA256_PREFIX.len() + 64);
    out.push_str(SHA256_PREFIX);
    data_encoding::HEXLOWER.encode_append(&digest, &mut out);
    out
}

/// The SHA-256 of a presented key, to compare (in constant time) with stored ones.
pub(crate) fn sha256_of(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

/// Parse and check a configured hash: `sha256:<64 lowercase hex>` or an argon2id PHC
/// string with valid parameters.
pub(crate) fn parse_key_hash(s: &str) -> Result<KeyHash> {
    let Some(hex) = s.strip_prefix(SHA256_PREFIX) else {
        return parse_phc(s).map(|h| KeyHash::Argon2(Box::new(h)));
    };
    let bad = || Error::Config("api_key_hash".to_owned());
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.as_bytes().chunks(2)) {
        let text = std::str::from_utf8(pair).map_err(|_| bad())?;
        *byte = u8::from_str_radix(text, 16).map_err(|_| bad())?;
    }
    Ok(KeyHash::Sha256(out))
}

/// Hash a key with the given argon2 instance and a fresh random salt (the legacy
/// form, still accepted; tests build such hashes).
#[allow(dead_code)] // used by tests only
pub(crate) fn hash_key(key: &str, argon2: &Argon2<'_>) -> Result<String> {
    let mut salt = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|_| Error::Internal("the system random number generator failed"))?;
    argon2
        .hash_password_with_salt(key.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| Error::Internal("argon2 hashing failed"))
}

/// The `[[clients]]` snippet that `vaultgate clients add NAME …` prints: every key
/// of the client, so the operator sees what was (and was not) granted.
pub fn client_toml_snippet(c: &ClientConfig) -> String {
    let list = |classes: &[DataClass]| {
        let items: Vec<String> = classes.iter().map(|k| toml_string(k.as_str())).collect();
        format!("[{}]", items.join(", "))
    };
    let hashes: Vec<String> = c.key_hashes().map(toml_string).collect();
    let hash = match hashes.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    let mut out = format!(
        "[[clients]]\nname = {}\napi_key_hash = {hash}\n",
        toml_string(&c.name)
    );
    if let Some(subject) = &c.cert_subject {
        out.push_str(&format!("cert_subject = {}\n", toml_string(subject)));
    }
    out.push_str(&format!(
        "reveal = {}\nreveal_masked = {}\ntokenize = {}\ndeterministic = {}\ndelete = {}\nrate_limit_per_minute = {}\n",
        list(&c.reveal),
        list(&c.reveal_masked),
        list(&c.tokenize),
        list(&c.deterministic),
        c.delete,
        c.rate_limit_per_minute,
    ));
    out
}

/// A short public name for a stored key hash: the first 8 hex digits of its SHA-256.
// Safe to show: a digest of the (already one-way) argon2 hash, 32 bits of it, enough
// to tell a client's keys apart and useless for checking a guessed key.
pub fn key_id(phc_hash: &str) -> String {
    let digest = Sha256::digest(phc_hash.as_bytes());
    data_encoding::HEXLOWER.encode(digest.get(..4).unwrap_or_default())
}

fn toml_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// Parse and check a configured hash: an argon2id PHC string with valid parameters.
pub(crate) fn parse_phc(s: &str) -> Result<PasswordHash> {
    let hash = PasswordHash::new(s).map_err(|_| Error::Config("api_key_hash".to_owned()))?;
    let argon2id = hash.algorithm.as_str() == Algorithm::Argon2id.ident().as_str();
    let params_ok = argon2::Params::try_from(&hash).is_ok();
    if !argon2id || !params_ok || hash.salt.is_none() || hash.hash.is_none() {
        return Err(Error::Config("api_key_hash".to_owned()));
    }
    Ok(hash)
}

/// Whether `key` has the shape of a key we issue. Checked before any argon2 work, so
/// that garbage costs nothing.
pub(crate) fn well_formed(key: &str) -> bool {
    key.strip_prefix(KEY_PREFIX).is_some_and(|secret| {
        secret.len() == SECRET_LEN
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// Run argon2 for `key` against one hash (about 30 ms at default cost).
pub(crate) fn matches(key: &[u8], hash: &PasswordHash) -> bool {
    Argon2::default().verify_password(key, hash).is_ok()
}
