//! The Shamir seal: the master key under a random key-encryption key that is split
//! into n shares, any k of which rebuild it (`blahaj`, GF(256)).
//!
//! A share is printed once, as a self-describing string:
//!
//! ```text
//! vgshare1-<keyring id>-<generation>-<threshold>-<index>-<point, hex>-<checksum>
//! ```
//!
//! The checksum (the first 4 bytes of SHA-256 over the rest) names a mistyped share as
//! such; the keyring id and generation name a share from another keyring, or from a
//! split that `keys rekey` replaced. The keyring file keeps a SHA-256 of each share's
//! point, so a well-formed share that is not one of this split's is refused before it
//! is combined with anything.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use data_encoding::HEXLOWER_PERMISSIVE as HEX;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{Wrapped, unwrap_key, wrap};
use crate::error::{Error, Result};
use crate::vault::keys::crypto::{self, Sealer, SecretKey};

const PREFIX: &str = "vgshare1";
const CHECK_LABEL: &[u8] = b"vaultgate-share/1 check";
const POINT_LABEL: &[u8] = b"vaultgate-share/1 point";

/// A share as printed for its holder. No `Debug`, no `Display`.
pub struct ShareText(Zeroizing<String>);

impl ShareText {
    /// The text, to print once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A parsed share: the split it belongs to and its point. No `Debug`.
pub struct Share {
    id: String,
    generation: u32,
    threshold: u8,
    x: u8,
    y: Zeroizing<Vec<u8>>,
}

fn checksum(body: &str) -> String {
    let digest = Sha256::new()
        .chain_update(CHECK_LABEL)
        .chain_update(body.as_bytes())
        .finalize();
    HEX.encode(digest.get(..4).unwrap_or_default())
}

impl Share {
    /// Parse a share's text (surrounding whitespace and case are ignored).
    pub fn parse(text: &str) -> Result<Share> {
        let text: String = text
            .trim()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        let text = Zeroizing::new(text);
        let malformed = || {
            Error::InvalidShare(
                "this is not a vaultgate share, or it is cut short (expected vgshare1-…)",
            )
        };
        let (body, check) = text.rsplit_once('-').ok_or_else(malformed)?;
        let mut parts = body.split('-');
        let mut next = || parts.next().ok_or_else(malformed);
        if next()? != PREFIX {
            return Err(malformed());
        }
        let (id, generation, threshold, x, y) = (next()?, next()?, next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(malformed());
        }
        let ok: bool =
            subtle::ConstantTimeEq::ct_eq(checksum(body).as_bytes(), check.as_bytes()).into();
        if !ok {
            return Err(Error::InvalidShare(
                "the share's checksum does not match: it was mistyped or damaged",
            ));
        }
        let y = Zeroizing::new(HEX.decode(y.as_bytes()).map_err(|_| malformed())?);
        if y.len() != crypto::KEY_LEN || id.len() != 16 || HEX.decode(id.as_bytes()).is_err() {
            return Err(malformed());
        }
        Ok(Share {
            id: id.to_owned(),
            generation: generation.parse().map_err(|_| malformed())?,
            threshold: threshold.parse().map_err(|_| malformed())?,
            x: x.parse().map_err(|_| malformed())?,
            y,
        })
    }

    /// The share's index (1 to n): not secret, and the same for every split.
    pub fn index(&self) -> u8 {
        self.x
    }

    /// How many shares the split needs.
    pub fn threshold(&self) -> u8 {
        self.threshold
    }

    /// The keyring id and generation the share belongs to.
    pub fn split(&self) -> (&str, u32) {
        (&self.id, self.generation)
    }

    /// The share's canonical text (what the holder was given).
    pub fn text(&self) -> ShareText {
        let body = Zeroizing::new(format!(
            "{PREFIX}-{}-{}-{}-{}-{}",
            self.id,
            self.generation,
            self.threshold,
            self.x,
            HEX.encode(&self.y)
        ));
        let check = checksum(&body);
        ShareText(Zeroizing::new(format!("{}-{check}", body.as_str())))
    }

    /// The SHA-256 of the point, bound to the split (kept in the keyring file).
    fn point_hash(&self) -> String {
        let digest = Sha256::new()
            .chain_update(POINT_LABEL)
            .chain_update(self.id.as_bytes())
            .chain_update(self.generation.to_be_bytes())
            .chain_update([self.threshold, self.x])
            .chain_update(self.y.as_slice())
            .finalize();
        B64.encode(digest)
    }
}

/// `seal` with `kind = "shamir"`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShamirSeal {
    /// Random, per keyring: shares of another keyring carry another id.
    id: String,
    /// 1 at `init`, one more at each `keys rekey`.
    generation: u32,
    threshold: u8,
    shares: u8,
    /// Share index (decimal) → SHA-256 of its point (base64).
    checks: BTreeMap<String, String>,
    master: Wrapped,
}

fn master_aad(id: &str, generation: u32) -> Vec<u8> {
    format!("vaultgate-keyring/2 master shamir {id} {generation}").into_bytes()
}

impl ShamirSeal {
    /// A new split of a new keyring (generation 1).
    pub fn create(shares: u8, threshold: u8, master: &SecretKey) -> Result<(Self, Vec<ShareText>)> {
        let id = HEX.encode(&crypto::random_bytes::<8>());
        Self::split(id, 1, shares, threshold, master)
    }

    /// A new split of the same keyring (`keys rekey`): the old shares stop working.
    pub fn resplit(
        &self,
        shares: u8,
        threshold: u8,
        master: &SecretKey,
    ) -> Result<(Self, Vec<ShareText>)> {
        let generation = self
            .generation
            .checked_add(1)
            .ok_or(Error::Keyring("no generation left for a rekey".into()))?;
        Self::split(self.id.clone(), generation, shares, threshold, master)
    }

    fn split(
        id: String,
        generation: u32,
        shares: u8,
        threshold: u8,
        master: &SecretKey,
    ) -> Result<(Self, Vec<ShareText>)> {
        if threshold < 2 || shares < threshold {
            return Err(Error::Config(
                "--threshold must be at least 2 and --shares at least the threshold".into(),
            ));
        }
        let kek = SecretKey::random();
        let mut texts = Vec::with_capacity(usize::from(shares));
        let mut checks = BTreeMap::new();
        for point in blahaj::Sharks(threshold)
            .dealer(kek.expose())
            .take(usize::from(shares))
        {
            let bytes = Zeroizing::new(Vec::from(&point));
            let (x, y) = bytes
                .split_first()
                .ok_or(Error::Internal("an empty Shamir share"))?;
            let share = Share {
                id: id.clone(),
                generation,
                threshold,
                x: *x,
                y: Zeroizing::new(y.to_vec()),
            };
            checks.insert(share.x.to_string(), share.point_hash());
            texts.push(share.text());
        }
        if texts.len() != usize::from(shares) {
            return Err(Error::Internal("the Shamir dealer gave too few shares"));
        }
        let seal = ShamirSeal {
            master: wrap(&Sealer::new(&kek)?, &master_aad(&id, generation), master)?,
            id,
            generation,
            threshold,
            shares,
            checks,
        };
        Ok((seal, texts))
    }

    /// How many shares open the seal.
    pub fn threshold(&self) -> u8 {
        self.threshold
    }

    /// How many shares were made.
    pub fn shares(&self) -> u8 {
        self.shares
    }

    /// The current split: the keyring id and generation.
    pub fn split_id(&self) -> (&str, u32) {
        (&self.id, self.generation)
    }

    /// Whether `share` is one of this split's; a refusal names why.
    pub fn check(&self, share: &Share) -> Result<()> {
        if share.id != self.id {
            return Err(Error::InvalidShare("the share belongs to another keyring"));
        }
        if share.generation < self.generation {
            return Err(Error::InvalidShare(
                "the share is from an older split of this keyring, replaced by `keys rekey`",
            ));
        }
        if share.generation != self.generation || share.threshold != self.threshold {
            return Err(Error::InvalidShare(
                "the share is not from this keyring's current split",
            ));
        }
        let ok = self
            .checks
            .get(&share.x.to_string())
            .is_some_and(|expected| {
                subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), share.point_hash().as_bytes())
                    .into()
            });
        if !ok {
            return Err(Error::InvalidShare(
                "the share is not one of this keyring's shares",
            ));
        }
        Ok(())
    }

    /// Combine a quorum of checked shares and open the master key.
    pub fn open(&self, shares: &[Share]) -> Result<SecretKey> {
        let mut points: BTreeMap<u8, blahaj::Share> = BTreeMap::new();
        for share in shares {
            self.check(share)?;
            if points.len() < usize::from(self.threshold) {
                let mut bytes = Zeroizing::new(Vec::with_capacity(share.y.len() + 1));
                bytes.push(share.x);
                bytes.extend_from_slice(&share.y);
                let point = blahaj::Share::try_from(bytes.as_slice())
                    .map_err(|_| Error::Internal("a Shamir share"))?;
                points.insert(share.x, point);
            }
        }
        if points.len() < usize::from(self.threshold) {
            return Err(Error::InvalidShare(
                "not enough different shares to reach the threshold",
            ));
        }
        let kek = Zeroizing::new(
            blahaj::Sharks(self.threshold)
                .recover(points.values())
                .map_err(|_| Error::InvalidShare("the shares could not be combined"))?,
        );
        let kek = SecretKey::from_slice(&kek)?;
        unwrap_key(
            &Sealer::new(&kek)?,
            &master_aad(&self.id, self.generation),
            &self.master,
        )
        .map_err(|_| {
            Error::Keyring("the shares do not open this keyring, or the file was edited".into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_check_and_open() {
        let master = SecretKey::random();
        let (seal, texts) = ShamirSeal::create(5, 3, &master).unwrap();
        let shares: Vec<Share> = texts
            .iter()
            .map(|t| Share::parse(t.expose()).unwrap())
            .collect();
        let opened = seal.open(&shares[1..4]).unwrap();
        assert_eq!(opened.expose(), master.expose());
        assert!(seal.open(&shares[..2]).is_err());

        // A mistyped character is named as such.
        let mut typo = texts[0].expose().to_owned();
        let i = typo.len() - 12;
        let c = if &typo[i..=i] == "a" { "b" } else { "a" };
        typo.replace_range(i..=i, c);
        let err = Share::parse(&typo).err().unwrap().to_string();
        assert!(err.contains("mistyped"), "{err}");

        // Another keyring's share, and an older split's, are named.
        let (_, other) = ShamirSeal::create(5, 3, &master).unwrap();
        let foreign = Share::parse(other[0].expose()).unwrap();
        assert!(
            seal.check(&foreign)
                .unwrap_err()
                .to_string()
                .contains("another keyring")
        );
        let (newer, _) = seal.resplit(3, 2, &master).unwrap();
        assert!(
            newer
                .check(&shares[0])
                .unwrap_err()
                .to_string()
                .contains("older split")
        );
    }
}
