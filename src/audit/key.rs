//! The audit key: the MAC key of the chain and of checkpoints, and the key of the
//! hashes that stand in for strings that are not tokens.

use super::line::Digest32;
use crate::error::Result;
use crate::vault::keys::crypto::{SecretKey, hmac_sha256};
use crate::vault::token::{is_opaque_token, looks_like_token};

/// Domain labels, so that a MAC of one kind is never valid as another.
pub(crate) const ENTRY_LABEL: &[u8] = b"vaultgate-audit/2 entry";
pub(crate) const CHECKPOINT_LABEL: &[u8] = b"vaultgate-audit/2 checkpoint";
const TOKEN_LABEL: &[u8] = b"vaultgate-audit/2 token";

/// The audit MAC key, derived from the keyring's master key
/// (`Keys::audit_key`). No `Debug`, no `Clone`; zeroized on drop.
pub struct AuditKey(SecretKey);

impl AuditKey {
    /// Wrap a derived key.
    pub fn new(key: SecretKey) -> Self {
        AuditKey(key)
    }

    /// HMAC-SHA256 of `bytes` under the key, for the domain `label`.
    pub(crate) fn mac(&self, label: &[u8], bytes: &[u8]) -> Result<Digest32> {
        hmac_sha256(&self.0, &[label, bytes])
    }

    /// What the log may say about a submitted token string: the string itself when
    /// it can only be a token, else `h:` and 16 hex digits of a keyed hash.
    ///
    /// An opaque token (`tok_…`, `cvv_…`) cannot be a card or account number, so it
    /// is named as given, unless a card-shaped number is in it: `tok_` and 22
    /// base64url characters can hold a card's 16 digits. Digit and IBAN-shaped tokens
    /// have the shape of the values they stand for (a six-four token is a Luhn-valid 16-digit number, like a card),
    /// so such a string is named only when the vault found it (`outcome` is `ok`):
    /// a card number sent as a "token" is never written. The hash lets an auditor
    /// who holds the keyring find every entry for a given string, and tells an
    /// outsider nothing.
    pub(crate) fn token_ref(&self, token: &str, outcome: &str) -> Result<String> {
        let named = (is_opaque_token(token) && !crate::rules::guard::shows_card(token.as_bytes()))
            || (outcome == "ok" && looks_like_token(token));
        if named {
            return Ok(token.to_owned());
        }
        let digest = self.mac(TOKEN_LABEL, token.as_bytes())?;
        let mut out = String::with_capacity(18);
        out.push_str("h:");
        data_encoding::HEXLOWER.encode_append(digest.get(..8).unwrap_or_default(), &mut out);
        Ok(out)
    }
}
