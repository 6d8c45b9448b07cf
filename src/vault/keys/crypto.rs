//! AES-256-GCM sealing and HMAC fingerprints over zeroizing keys.
//!
//! Randomness comes from `rand::rng()`, a ChaCha12 CSPRNG seeded and reseeded from
//! the OS. Every sealed blob carries a fresh random 96-bit nonce. The associated data is
//! chosen by the caller and binds the ciphertext to where it belongs (a token, its
//! data class and key version), so a blob moved elsewhere fails to open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Length of an AES-256 key and of the HMAC key.
pub const KEY_LEN: usize = 32;
/// Length of an AES-GCM nonce.
pub const NONCE_LEN: usize = 12;

/// A 256-bit key in a zeroizing buffer. No `Debug`, no `Display`, no `Clone`.
pub struct SecretKey(Zeroizing<[u8; KEY_LEN]>);

impl SecretKey {
    /// A fresh random key from the OS generator.
    pub fn random() -> Self {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        rand::rng().fill_bytes(k.as_mut());
        SecretKey(k)
    }

    /// A key from exactly 32 bytes (as unwrapped from a keyring).
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| Error::Integrity("a key has the wrong length"))?;
        Ok(SecretKey(Zeroizing::new(arr)))
    }

    /// The key bytes, for wrapping under another key.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// An AES-256-GCM cipher ready for use, built once per key.
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl Sealer {
    /// A cipher for the key.
    pub fn new(key: &SecretKey) -> Result<Self> {
        let cipher = Aes256Gcm::new_from_slice(key.expose())
            .map_err(|_| Error::Internal("AES key length"))?;
        Ok(Sealer { cipher })
    }

    /// Encrypt `plaintext` bound to `aad`. Returns the nonce and ciphertext (tag last).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<([u8; NONCE_LEN], Vec<u8>)> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| Error::Internal("AES-GCM encryption failed"))?;
        Ok((nonce, ct))
    }

    /// Decrypt and authenticate. Any change to nonce, ciphertext or `aad` fails.
    pub fn open(&self, aad: &[u8], nonce: &[u8], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| Error::Integrity("a nonce has the wrong length"))?;
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| Error::Integrity("authentication tag mismatch"))
    }
}

/// HMAC-SHA256 under a key. Used for fingerprints and the keyring's MAC.
pub fn hmac_sha256(key: &SecretKey, parts: &[&[u8]]) -> Result<[u8; 32]> {
    // HMAC accepts keys of any length, so this does not fail for a 32-byte key; if it
    // ever did, an error (never a constant output that would make every fingerprint
    // collide).
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose())
        .map_err(|_| Error::Internal("HMAC key"))?;
    for p in parts {
        // Length-prefix each part so that ("ab","c") and ("a","bc") differ.
        mac.update(&(p.len() as u64).to_be_bytes());
        mac.update(p);
    }
    Ok(mac.finalize().into_bytes().into())
}

/// Fill a buffer with random bytes from the OS generator.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rng().fill_bytes(&mut b);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_aad_binding() {
        let k = SecretKey::random();
        let s = Sealer::new(&k).unwrap();
        let (n, ct) = s.seal(b"tok_a|pan|1", b"4242424242424242").unwrap();
        assert_eq!(
            &*s.open(b"tok_a|pan|1", &n, &ct).unwrap(),
            b"4242424242424242"
        );
        assert!(matches!(
            s.open(b"tok_b|pan|1", &n, &ct),
            Err(Error::Integrity(_))
        ));
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert!(s.open(b"tok_a|pan|1", &n, &bad).is_err());
        let other = Sealer::new(&SecretKey::random()).unwrap();
        assert!(other.open(b"tok_a|pan|1", &n, &ct).is_err());
    }

    #[test]
    fn hmac_is_keyed_and_framed() {
        let k = SecretKey::random();
        assert_ne!(
            hmac_sha256(&k, &[b"ab", b"c"]).unwrap(),
            hmac_sha256(&k, &[b"a", b"bc"]).unwrap()
        );
        assert_ne!(
            hmac_sha256(&k, &[b"x"]).unwrap(),
            hmac_sha256(&SecretKey::random(), &[b"x"]).unwrap()
        );
    }
}
