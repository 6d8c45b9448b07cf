//! The binary layout of a stored record, read through checked slices.
//!
//! ```text
//! 0      format (1)
//! 1      data class tag
//! 2..6   key version (u32, big-endian)
//! 6..14  created (unix seconds, u64)
//! 14..22 expires (unix seconds, u64; 0 = never)
//! 22     flags (bit 0: deterministic)
//! 23..35 AES-GCM nonce
//! 35..   ciphertext and tag
//! ```
//!
//! The first 23 bytes and the record's key are the AES-GCM associated data, so the
//! ciphertext is bound to its token, class, key version, times and flags.

use crate::error::{Error, Result};
use crate::sensitive::DataClass;

use super::keys::crypto::NONCE_LEN;

const FORMAT: u8 = 1;
const HEADER_LEN: usize = 23;
const FLAG_DETERMINISTIC: u8 = 1;

/// A record's clear header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub class: DataClass,
    pub key_version: u32,
    pub created: u64,
    pub expires: Option<u64>,
    pub deterministic: bool,
}

/// A parsed record borrowing the stored bytes.
pub struct Record<'a> {
    pub header: Header,
    header_bytes: &'a [u8],
    pub nonce: &'a [u8],
    pub ciphertext: &'a [u8],
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        let mut w = Writer(&mut h, 0);
        w.put(&[FORMAT, self.class.tag()]);
        w.put(&self.key_version.to_be_bytes());
        w.put(&self.created.to_be_bytes());
        w.put(&self.expires.unwrap_or(0).to_be_bytes());
        w.put(&[if self.deterministic {
            FLAG_DETERMINISTIC
        } else {
            0
        }]);
        h
    }

    /// The associated data for a record under `key` with this header.
    pub fn aad(&self, key: &str) -> Vec<u8> {
        aad(key, &self.encode())
    }

    /// The stored bytes: header, nonce, ciphertext.
    pub fn encode_record(&self, nonce: &[u8; NONCE_LEN], ciphertext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&self.encode());
        out.extend_from_slice(nonce);
        out.extend_from_slice(ciphertext);
        out
    }
}

struct Writer<'a>(&'a mut [u8], usize);

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        for b in bytes {
            if let Some(slot) = self.0.get_mut(self.1) {
                *slot = *b;
            }
            self.1 += 1;
        }
    }
}

fn aad(key: &str, header: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(32 + key.len() + header.len());
    a.extend_from_slice(b"vaultgate-record/1");
    a.extend_from_slice(&(key.len() as u32).to_be_bytes());
    a.extend_from_slice(key.as_bytes());
    a.extend_from_slice(header);
    a
}

fn u64_at(b: &[u8], at: usize) -> Result<u64> {
    let s: [u8; 8] = b
        .get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .ok_or(Error::Integrity("record too short"))?;
    Ok(u64::from_be_bytes(s))
}

impl<'a> Record<'a> {
    /// Parse stored bytes. A short, unknown or malformed record is an integrity error.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let short = Error::Integrity("record too short");
        let header_bytes = bytes.get(..HEADER_LEN).ok_or(short)?;
        if header_bytes.first() != Some(&FORMAT) {
            return Err(Error::Integrity("unknown record format"));
        }
        let class = header_bytes
            .get(1)
            .and_then(|t| DataClass::from_tag(*t))
            .ok_or(Error::Integrity("unknown data class in record"))?;
        let version: [u8; 4] = header_bytes
            .get(2..6)
            .and_then(|s| s.try_into().ok())
            .ok_or(Error::Integrity("record too short"))?;
        let expires = u64_at(header_bytes, 14)?;
        let flags = header_bytes.get(22).copied().unwrap_or(0);
        let nonce = bytes
            .get(HEADER_LEN..HEADER_LEN + NONCE_LEN)
            .ok_or(Error::Integrity("record too short"))?;
        let ciphertext = bytes.get(HEADER_LEN + NONCE_LEN..).unwrap_or_default();
        if ciphertext.len() < 16 {
            return Err(Error::Integrity("record too short"));
        }
        Ok(Record {
            header: Header {
                class,
                key_version: u32::from_be_bytes(version),
                created: u64_at(header_bytes, 6)?,
                expires: (expires != 0).then_some(expires),
                deterministic: flags & FLAG_DETERMINISTIC != 0,
            },
            header_bytes,
            nonce,
            ciphertext,
        })
    }

    /// The associated data this record was sealed with, under `key`.
    pub fn aad(&self, key: &str) -> Vec<u8> {
        aad(key, self.header_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_short_input_is_an_error() {
        let h = Header {
            class: DataClass::Pan,
            key_version: 7,
            created: 1_700_000_000,
            expires: Some(1_700_003_600),
            deterministic: true,
        };
        let bytes = h.encode_record(&[9u8; NONCE_LEN], &[1u8; 20]);
        let r = Record::parse(&bytes).unwrap();
        assert_eq!(r.header, h);
        assert_eq!(r.aad("k"), h.aad("k"));
        for n in 0..bytes.len() - 20 + 15 {
            assert!(Record::parse(&bytes[..n]).is_err());
        }
    }
}
