//! The answer guard: card numbers in a destination's answer that its request did not
//! reveal (an account updater's new card, a network token's underlying PAN, a stored
//! payment method, an error quoting a card), made tokens before the caller gets them.
//!
//! The caller is a service kept out of PCI DSS scope by holding only tokens; a card
//! it never had, passed on raw, would bring it back in. So every card number the
//! answer shows is read as the inbound leak guard reads a free field
//! ([`crate::codec::shown::cards`] in the UTF-8 and UTF-16 views,
//! [`crate::codec::shown::every_card`] in the deeper readings) and, on a route whose
//! `answer_guard` is `tokenize`, stored in the vault as a new token exactly as the
//! inbound leak guard stores a free-field card (the class's default format,
//! deterministic: the same card gives the caller the same token), durable before the
//! answer goes on. The caller can then use the token through the outbound proxy like
//! any other.
//!
//! - **Passed as they are:** the tokens the echo swap wrote back (the request's own,
//!   by their digits), and numbers that are tokens of this vault (written as digits
//!   alone, or found only in a deeper reading, as the inbound guard lets its own
//!   tokens pass).
//! - **Replaced in place:** a card in ASCII digits, as written or behind one layer of
//!   `\u`, `%XX` or character-reference escapes, in groups or not, in a header value
//!   or the body. The token keeps the span's grouping ([`super::echo::write_token`]).
//! - **Refused** (502 `answer_unswappable`): a card that cannot be replaced in place
//!   (base64, escaped twice, a number literal, UTF-16, another script's digits, a
//!   header name). Checked before anything is stored, and again on the rewritten
//!   answer, so a card both in place and hidden is refused too (its new token stays
//!   in the vault, as a refused inbound request's never does: harmless, it is where
//!   the card belongs).
//! - More distinct card numbers than `limits.max_sensitive_values` in one answer
//!   refuse it (502 `answer_unchecked`): the work per answer is bounded.
//! - `answer_guard = "refuse"` refuses any answer with a card (502
//!   `answer_card_refused`), storing nothing.

use std::ops::Range;

use zeroize::Zeroizing;

use crate::codec::shown;
use crate::config::AnswerGuard;
use crate::sensitive::{DataClass, Sensitive};
use crate::vault::{TokenizeOptions, Vault};
use crate::{Error, Result};

/// A number's ASCII digits, zeroized on drop.
type Digits = Zeroizing<Vec<u8>>;

/// Why one text of the answer cannot pass; the caller counts and logs it.
pub enum Refusal {
    /// A card that cannot be replaced in place (`answer_unswappable`), or any card on
    /// a `refuse` route (`answer_card_refused`).
    Card,
    /// More distinct card numbers than the limit (`answer_unchecked`).
    TooMany,
    /// The vault failed (a store error, a sweep refusal): its own error.
    Vault(Error),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Refusal {
        Refusal::Vault(e)
    }
}

/// The places in one text (a header value, the body) where a card becomes a token.
#[derive(Default)]
pub struct Places {
    /// `(span, card)`: the card by its index in [`AnswerCards`]'s list.
    spans: Vec<(Range<usize>, usize)>,
}

impl Places {
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// The card numbers of one answer, across its header values and body, and the tokens
/// made for them.
pub struct AnswerCards<'a> {
    vault: &'a Vault,
    guard: AnswerGuard,
    /// The digits of the tokens the echo swap wrote: the request's own.
    exempt: Vec<Zeroizing<Vec<u8>>>,
    /// Numbers looked up: whether each is a token of this vault.
    ours: Vec<(Zeroizing<Vec<u8>>, bool)>,
    /// Cards to replace, each once, with its token once made.
    cards: Vec<(Digits, Option<Zeroizing<String>>)>,
    /// The most distinct numbers looked up or tokenized per answer.
    max: usize,
    decode_depth: usize,
}

impl<'a> AnswerCards<'a> {
    pub fn new(
        vault: &'a Vault,
        guard: AnswerGuard,
        exempt: impl Iterator<Item = &'a [u8]>,
        max: usize,
        decode_depth: usize,
    ) -> AnswerCards<'a> {
        AnswerCards {
            vault,
            guard,
            exempt: exempt.map(|t| Zeroizing::new(t.to_vec())).collect(),
            ours: Vec::new(),
            cards: Vec::new(),
            max,
            decode_depth,
        }
    }

    /// How many new tokens were made.
    pub fn tokenized(&self) -> usize {
        self.cards.iter().filter(|(_, t)| t.is_some()).count()
    }

    /// Find the cards in `text` that must become tokens, and check that every other
    /// number it shows, in any reading, may pass. Stores nothing.
    pub async fn find(&mut self, text: &[u8]) -> Result<Places, Refusal> {
        let mut places = Places::default();
        for card in shown::cards(text) {
            if self
                .passes(&card.digits, card.plain || !card.in_place)
                .await?
            {
                continue;
            }
            if !card.in_place || self.guard == AnswerGuard::Refuse {
                return Err(Refusal::Card);
            }
            let i = self.card(&card.digits)?;
            places.spans.push((card.range, i));
        }
        // What the inbound leak guard reads beyond the views: a card found only there
        // cannot be replaced, and one also found in place will be (checked again on
        // the rewritten text).
        for digits in self.every_card(text) {
            let replaced = self.cards.iter().any(|(c, _)| c.as_slice() == *digits);
            if !replaced && !self.passes(&digits, true).await? {
                return Err(Refusal::Card);
            }
        }
        Ok(places)
    }

    /// Store a token for every card found (durable before this returns).
    pub async fn tokenize(&mut self) -> Result<()> {
        let mut made = false;
        for (digits, token) in &mut self.cards {
            if token.is_some() {
                continue;
            }
            let text = Zeroizing::new(digits.iter().map(|b| char::from(*b)).collect::<String>());
            // Card-shaped digits are a valid PAN; anything else is no card to store.
            let value = Sensitive::parse(DataClass::Pan, &text)
                .map_err(|_| Error::Internal("a card-shaped number is not a valid PAN"))?;
            // As the inbound leak guard tokenizes a free-field card: the class's
            // default format and determinism, no scope.
            let made_token = self
                .vault
                .tokenize_unsynced(&value, &TokenizeOptions::default())
                .await?;
            *token = Some(Zeroizing::new(made_token));
            made = true;
        }
        if made {
            self.vault.flush().await?;
        }
        Ok(())
    }

    /// `text` with each place's card replaced by its token, read again: every number
    /// it shows in any reading must be one that may pass.
    pub async fn rewrite(
        &mut self,
        text: &[u8],
        places: &Places,
    ) -> Result<Zeroizing<Vec<u8>>, Refusal> {
        let mut out = Zeroizing::new(Vec::with_capacity(text.len()));
        let mut at = 0;
        for (range, i) in &places.spans {
            let token = self
                .cards
                .get(*i)
                .and_then(|(_, t)| t.as_deref())
                .ok_or(Error::Internal("an answer card without its token"))?;
            out.extend_from_slice(text.get(at..range.start).unwrap_or_default());
            let span = text.get(range.clone()).unwrap_or_default();
            super::echo::write_token(&mut out, span, token);
            at = range.end;
        }
        out.extend_from_slice(text.get(at..).unwrap_or_default());
        for digits in self.every_card(&out) {
            let made = self.cards.iter().any(|(_, t)| {
                t.as_ref()
                    .is_some_and(|t| t.as_bytes() == digits.as_slice())
            });
            if !made && !self.passes(&digits, true).await? {
                return Err(Refusal::Card);
            }
        }
        Ok(out)
    }

    /// [`shown::every_card`] at the route's decode depth.
    fn every_card(&self, text: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
        crate::rules::guard::with_decode_depth(self.decode_depth, || shown::every_card(text))
    }

    /// The index of a card to replace, added once.
    fn card(&mut self, digits: &[u8]) -> Result<usize, Refusal> {
        if let Some(i) = self.cards.iter().position(|(c, _)| c.as_slice() == digits) {
            return Ok(i);
        }
        if self.cards.len() + self.ours.len() >= self.max {
            return Err(Refusal::TooMany);
        }
        self.cards.push((Zeroizing::new(digits.to_vec()), None));
        Ok(self.cards.len() - 1)
    }

    /// Whether a number may pass as it is: a token the echo swap wrote, or (when
    /// `may_be_ours`: written as digits alone, or found only in a deeper reading) a
    /// token of this vault and not a card it holds.
    async fn passes(&mut self, digits: &[u8], may_be_ours: bool) -> Result<bool, Refusal> {
        if self.exempt.iter().any(|t| t.as_slice() == digits) {
            return Ok(true);
        }
        if !may_be_ours {
            return Ok(false);
        }
        if let Some((_, ours)) = self.ours.iter().find(|(d, _)| d.as_slice() == digits) {
            return Ok(*ours);
        }
        if self.cards.len() + self.ours.len() >= self.max {
            return Err(Refusal::TooMany);
        }
        let text = Zeroizing::new(digits.iter().map(|b| char::from(*b)).collect::<String>());
        // A store error counts as "not ours": the guard fails closed.
        let ours = self.vault.is_own_token(&text).await.unwrap_or(false);
        self.ours.push((Zeroizing::new(digits.to_vec()), ours));
        Ok(ours)
    }
}
