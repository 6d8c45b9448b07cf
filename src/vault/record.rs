//! The binary layout of a stored record, read through checked slices.
//!
//! Format 2, written since the store-size work (issue #14):
//!
//! ```text
//! 0      format (2)
//! 1      bits 0-3: data class tag; bit 4: deterministic; bit 5: has an expiry;
//!        bit 6: the value is sealed as packed decimal digits (`digits`)
//! ..     key version (u32, LEB128)
//! ..     created (unix seconds, u64, LEB128)
//! ..     expires (unix seconds, u64, LEB128), only if bit 5 is set
//! ..     AES-GCM nonce (12)
//! ..     ciphertext and tag
//! ```
//!
//! A card token's header is 8 bytes this way, and its 16 digits are sealed in 8 bytes
//! (bit 6, written since issue #14's store-size work; records without it hold the
//! value's UTF-8 bytes, and are read as before). Format 1, the fixed 23-byte header
//! below, is read forever, so that every token issued before stays revealable. Which
//! format the vault writes is its choice (`Vault::record_format`):
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
//! The header bytes and the record's key are the AES-GCM associated data, so the
//! ciphertext is bound to its token, format, class, key version, times and flags
//! (the packing among them).
//! Every encoding is canonical (minimal LEB128, no unknown bits), so a record parses
//! back to exactly the bytes it was encoded from.

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::sensitive::{DataClass, Plaintext};

use super::keys::crypto::NONCE_LEN;

/// The AES-GCM tag at the end of the ciphertext.
const TAG_LEN: usize = 16;

const V1_HEADER_LEN: usize = 23;
const V1_DETERMINISTIC: u8 = 1;

const V2_CLASS_MASK: u8 = 0x0f;
const V2_DETERMINISTIC: u8 = 1 << 4;
const V2_EXPIRES: u8 = 1 << 5;
const V2_PACKED: u8 = 1 << 6;

/// A record's layout version: its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The fixed 23-byte header.
    V1 = 1,
    /// The packed header.
    V2 = 2,
}

/// A record's clear header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub class: DataClass,
    pub key_version: u32,
    pub created: u64,
    pub expires: Option<u64>,
    pub deterministic: bool,
    /// The value is sealed as packed decimal digits ([`SealedValue`]). Format 2 only:
    /// the vault never writes a packed value in format 1, which has no room for it.
    pub packed: bool,
}

/// A parsed record borrowing the stored bytes.
pub struct Record<'a> {
    pub format: Format,
    pub header: Header,
    header_bytes: &'a [u8],
    pub nonce: &'a [u8],
    pub ciphertext: &'a [u8],
}

impl Header {
    fn encode(&self, format: Format) -> Vec<u8> {
        match format {
            Format::V1 => {
                // Format 1 has no room for the flag: `SealedValue` never packs for it.
                debug_assert!(!self.packed, "a packed value in a format-1 record");
                let mut h = Vec::with_capacity(V1_HEADER_LEN);
                h.extend_from_slice(&[Format::V1 as u8, self.class.tag()]);
                h.extend_from_slice(&self.key_version.to_be_bytes());
                h.extend_from_slice(&self.created.to_be_bytes());
                h.extend_from_slice(&self.expires.unwrap_or(0).to_be_bytes());
                h.push(if self.deterministic {
                    V1_DETERMINISTIC
                } else {
                    0
                });
                h
            }
            Format::V2 => {
                let mut bits = self.class.tag() & V2_CLASS_MASK;
                if self.deterministic {
                    bits |= V2_DETERMINISTIC;
                }
                if self.expires.is_some() {
                    bits |= V2_EXPIRES;
                }
                if self.packed {
                    bits |= V2_PACKED;
                }
                let mut h = Vec::with_capacity(2 + 5 + 10 + 10);
                h.extend_from_slice(&[Format::V2 as u8, bits]);
                put_varint(&mut h, u64::from(self.key_version));
                put_varint(&mut h, self.created);
                if let Some(e) = self.expires {
                    put_varint(&mut h, e);
                }
                h
            }
        }
    }

    /// The associated data for a record under `key` with this header, in `format`.
    pub fn aad(&self, format: Format, key: &str) -> Vec<u8> {
        aad(key, &self.encode(format))
    }

    /// The stored bytes in `format`: header, nonce, ciphertext.
    pub fn encode_record(&self, format: Format, nonce: &[u8], ciphertext: &[u8]) -> Vec<u8> {
        let mut out = self.encode(format);
        out.reserve(nonce.len() + ciphertext.len());
        out.extend_from_slice(nonce);
        out.extend_from_slice(ciphertext);
        out
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

/// Unsigned LEB128.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v & 0x7f) as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A cursor over untrusted bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .ok_or(Error::Integrity("record too short"))?;
        let s = self
            .bytes
            .get(self.at..end)
            .ok_or(Error::Integrity("record too short"))?;
        self.at = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.take(N)?
            .try_into()
            .map_err(|_| Error::Integrity("record too short"))
    }

    fn u64_be(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn u32_be(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Minimal LEB128 of at most 64 bits: an overlong or overflowing encoding is an
    /// error, so that each value has exactly one encoding.
    fn varint(&mut self) -> Result<u64> {
        let bad = Error::Integrity("malformed number in record");
        let mut v = 0u64;
        for i in 0..10u32 {
            let b = self.byte()?;
            let part = u64::from(b & 0x7f);
            let shift = 7 * i;
            if i == 9 && part > 1 {
                return Err(bad);
            }
            v |= part << shift;
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err(bad);
                }
                return Ok(v);
            }
        }
        Err(bad)
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.at..).unwrap_or_default()
    }
}

fn class_of(tag: u8) -> Result<DataClass> {
    DataClass::from_tag(tag).ok_or(Error::Integrity("unknown data class in record"))
}

impl<'a> Record<'a> {
    /// Parse stored bytes. A short, unknown or malformed record is an integrity error.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader { bytes, at: 0 };
        let (format, header) = match r.byte()? {
            1 => (Format::V1, Self::header_v1(&mut r)?),
            2 => (Format::V2, Self::header_v2(&mut r)?),
            _ => return Err(Error::Integrity("unknown record format")),
        };
        let header_bytes = bytes.get(..r.at).unwrap_or_default();
        let nonce = r.take(NONCE_LEN)?;
        let ciphertext = r.rest();
        if ciphertext.len() < TAG_LEN {
            return Err(Error::Integrity("record too short"));
        }
        Ok(Record {
            format,
            header,
            header_bytes,
            nonce,
            ciphertext,
        })
    }

    fn header_v1(r: &mut Reader<'_>) -> Result<Header> {
        let class = class_of(r.byte()?)?;
        let key_version = r.u32_be()?;
        let created = r.u64_be()?;
        let expires = r.u64_be()?;
        let flags = r.byte()?;
        // Format 1 only ever wrote bit 0.
        if flags & !V1_DETERMINISTIC != 0 {
            return Err(Error::Integrity("unknown flags in record"));
        }
        Ok(Header {
            class,
            key_version,
            created,
            expires: (expires != 0).then_some(expires),
            deterministic: flags & V1_DETERMINISTIC != 0,
            packed: false,
        })
    }

    fn header_v2(r: &mut Reader<'_>) -> Result<Header> {
        let bits = r.byte()?;
        if bits & !(V2_CLASS_MASK | V2_DETERMINISTIC | V2_EXPIRES | V2_PACKED) != 0 {
            return Err(Error::Integrity("unknown flags in record"));
        }
        let class = class_of(bits & V2_CLASS_MASK)?;
        let key_version = u32::try_from(r.varint()?)
            .map_err(|_| Error::Integrity("malformed number in record"))?;
        let created = r.varint()?;
        let expires = if bits & V2_EXPIRES != 0 {
            Some(r.varint()?)
        } else {
            None
        };
        Ok(Header {
            class,
            key_version,
            created,
            expires,
            deterministic: bits & V2_DETERMINISTIC != 0,
            packed: bits & V2_PACKED != 0,
        })
    }

    /// The associated data this record was sealed with, under `key`.
    pub fn aad(&self, key: &str) -> Vec<u8> {
        aad(key, self.header_bytes)
    }
}

/// The bytes a value is sealed as: packed decimal digits where the format has room
/// for the flag and the value is all digits, else the value's UTF-8 bytes.
pub enum SealedValue<'a> {
    Packed(Zeroizing<Vec<u8>>),
    Plain(&'a [u8]),
}

impl<'a> SealedValue<'a> {
    /// How `value` is sealed in a record of `format`.
    pub fn of(format: Format, value: &'a str) -> Self {
        match format {
            Format::V2 => digits::pack(value)
                .map_or(SealedValue::Plain(value.as_bytes()), SealedValue::Packed),
            Format::V1 => SealedValue::Plain(value.as_bytes()),
        }
    }

    /// Whether the header's packed flag is to be set.
    pub fn packed(&self) -> bool {
        matches!(self, SealedValue::Packed(_))
    }

    /// The bytes to seal.
    pub fn bytes(&self) -> &[u8] {
        match self {
            SealedValue::Packed(p) => p,
            SealedValue::Plain(b) => b,
        }
    }
}

/// The value a record under `header` holds, from its decrypted bytes.
pub fn open_value(header: &Header, opened: Zeroizing<Vec<u8>>) -> Result<Plaintext> {
    if header.packed {
        Ok(Plaintext::from_zeroizing(digits::unpack(&opened)?))
    } else {
        Plaintext::from_utf8(opened)
    }
}

pub mod digits;
#[cfg(test)]
mod tests;
