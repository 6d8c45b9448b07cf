//! Reveal, metadata and delete: the read side of the vault façade.

use super::*;

impl Vault {
    /// Reveal a token. A CVV is consumed. `authorize` sees the class before anything
    /// is consumed or decrypted and may refuse.
    pub async fn detokenize_with(
        &self,
        token: &str,
        scope: Option<&str>,
        authorize: &(dyn Fn(DataClass) -> Result<()> + Sync),
    ) -> Result<Revealed> {
        if is_cvv(token, scope) {
            authorize(DataClass::Cvv)?;
            return self.reveal_cvv(token, scope, true).await;
        }
        let (header, value) = self.open_token(token, authorize).await?;
        Ok(Revealed {
            class: header.class,
            value,
        })
    }

    /// Read, authorize and decrypt a long-lived token's record.
    async fn open_token(
        &self,
        token: &str,
        authorize: &(dyn Fn(DataClass) -> Result<()> + Sync),
    ) -> Result<(Header, Plaintext)> {
        let bytes = self
            .store
            .get(Space::Tokens, token)
            .await?
            .ok_or(Error::TokenNotFound)?;
        let record = Record::parse(&bytes)?;
        authorize(record.header.class)?;
        let keys = self.keys_for(record.header.key_version).await?;
        let sealer = keys.version(record.header.key_version)?;
        let plain = sealer.open(&record.aad(token), record.nonce, record.ciphertext)?;
        let value = record::open_value(&record.header, plain)?;
        Ok((record.header, value))
    }

    /// Reveal a token; a CVV is taken out of the store and handed back as a
    /// [`CvvHold`]: dropping the hold consumes the CVV, [`Vault::restore_cvv`] puts
    /// it back (the outbound proxy does when its request never reached the
    /// processor).
    pub async fn detokenize_held(
        &self,
        token: &str,
        scope: Option<&str>,
        authorize: &(dyn Fn(DataClass) -> Result<()> + Sync),
    ) -> Result<(Revealed, Option<CvvHold>)> {
        if !is_cvv(token, scope) {
            return self
                .detokenize_with(token, scope, authorize)
                .await
                .map(|r| (r, None));
        }
        authorize(DataClass::Cvv)?;
        let key = self.cvv_key(token, scope)?;
        let bytes = match &self.cvv {
            CvvMode::Memory(mem) => mem.take(&key)?,
            CvvMode::Durable(_) => self.store.take(Space::Volatile, &key).await?,
        }
        .ok_or(Error::CvvExpired)?;
        if matches!(self.cvv, CvvMode::Durable(_)) {
            self.store.durable().await?;
        }
        let expires = Record::parse(&bytes)?.header.expires.unwrap_or(0);
        let hold = CvvHold {
            key,
            expires,
            record: bytes,
        };
        match self.open_cvv(&hold.key, &hold.record).await {
            Ok(revealed) => Ok((revealed, Some(hold))),
            Err(e) => Err(e),
        }
    }

    /// Put back a CVV taken by [`Vault::detokenize_held`] (unless it has expired).
    pub async fn restore_cvv(&self, hold: CvvHold) -> Result<()> {
        if hold.expires <= now_secs() {
            return Ok(());
        }
        match &self.cvv {
            CvvMode::Memory(mem) => {
                mem.insert(hold.key, hold.expires, hold.record)?;
            }
            CvvMode::Durable(_) => {
                self.store
                    .insert(Space::Volatile, &hold.key, &hold.record, Some(hold.expires))
                    .await?;
                self.store.durable().await?;
            }
        }
        Ok(())
    }

    /// Reveal a token with no per-class check (the CLI and trusted in-process callers).
    pub async fn detokenize(&self, token: &str, scope: Option<&str>) -> Result<Revealed> {
        self.detokenize_with(token, scope, &|_| Ok(())).await
    }

    async fn reveal_cvv(
        &self,
        token: &str,
        scope: Option<&str>,
        consume: bool,
    ) -> Result<Revealed> {
        let key = self.cvv_key(token, scope)?;
        let bytes = match &self.cvv {
            CvvMode::Memory(mem) if consume => mem.take(&key)?,
            CvvMode::Memory(mem) => mem.peek(&key)?,
            CvvMode::Durable(_) if consume => self.store.take(Space::Volatile, &key).await?,
            CvvMode::Durable(_) => self.store.get(Space::Volatile, &key).await?,
        }
        .ok_or(Error::CvvExpired)?;
        if consume && matches!(self.cvv, CvvMode::Durable(_)) {
            self.store.durable().await?;
        }
        self.open_cvv(&key, &bytes).await
    }

    /// Check and decrypt a CVV record stored under `key`.
    async fn open_cvv(&self, key: &str, bytes: &[u8]) -> Result<Revealed> {
        let record = Record::parse(bytes)?;
        if record.header.class != DataClass::Cvv {
            return Err(Error::Integrity("a volatile record is not a CVV"));
        }
        if record.header.expires.is_none_or(|e| e <= now_secs()) {
            return Err(Error::CvvExpired);
        }
        let aad = record.aad(key);
        let plain = match &self.cvv {
            CvvMode::Memory(mem) => mem.sealer().open(&aad, record.nonce, record.ciphertext)?,
            CvvMode::Durable(epochs) => epochs
                .sealer(u64::from(record.header.key_version), false)
                .await?
                .open(&aad, record.nonce, record.ciphertext)?,
        };
        Ok(Revealed {
            class: DataClass::Cvv,
            value: record::open_value(&record.header, plain)?,
        })
    }

    /// Whether this vault issued a token (the leak guard lets issued tokens through).
    pub async fn is_issued(&self, token: &str) -> Result<bool> {
        Ok(self.store.get(Space::Tokens, token).await?.is_some())
    }

    /// Whether `text` is a token this vault issued, and not itself a card number it
    /// holds (a six-four token is a valid card number, and a real card may equal
    /// one): what the leak guards, inbound and on outbound answers, let pass. Only
    /// text of ASCII digits alone can be, as tokens are written.
    pub async fn is_own_token(&self, text: &str) -> Result<bool> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(false);
        }
        Ok(self.is_issued(text).await? && !self.holds_value(DataClass::Pan, text).await?)
    }

    /// Whether this vault holds `raw` as a value of `class` (by its fingerprint, in any
    /// format): a card number that was tokenized before.
    pub async fn holds_value(&self, class: DataClass, raw: &str) -> Result<bool> {
        let Ok(value) = Sensitive::parse(class, raw) else {
            return Ok(false);
        };
        for f in [
            TokenFormat::PanSixFour,
            TokenFormat::PanNonLuhn,
            TokenFormat::Opaque,
            TokenFormat::Digits,
        ] {
            if f.fits(class)
                && self
                    .find_fingerprint(&self.fingerprint(class, f, &value)?)
                    .await?
                    .is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Metadata of a token: class, last four, created, expires. A CVV is not consumed.
    pub async fn metadata(&self, token: &str, scope: Option<&str>) -> Result<TokenMeta> {
        if is_cvv(token, scope) {
            let bytes = self
                .cvv_bytes(token, scope)
                .await?
                .ok_or(Error::CvvExpired)?;
            let header = Record::parse(&bytes)?.header;
            if header.expires.is_none_or(|e| e <= now_secs()) {
                return Err(Error::CvvExpired);
            }
            return Ok(TokenMeta {
                class: DataClass::Cvv,
                last4: None,
                created: header.created,
                expires: header.expires,
            });
        }
        let (header, value) = self.open_token(token, &|_| Ok(())).await?;
        Ok(TokenMeta {
            class: header.class,
            last4: Some(value.last4()),
            created: header.created,
            expires: header.expires,
        })
    }

    async fn cvv_bytes(&self, token: &str, scope: Option<&str>) -> Result<Option<Vec<u8>>> {
        let key = self.cvv_key(token, scope)?;
        match &self.cvv {
            CvvMode::Memory(mem) => mem.peek(&key),
            CvvMode::Durable(_) => self.store.get(Space::Volatile, &key).await,
        }
    }

    /// Delete a token (and its fingerprint mapping). True if it existed.
    pub async fn delete(&self, token: &str, scope: Option<&str>) -> Result<bool> {
        if is_cvv(token, scope) {
            let key = self.cvv_key(token, scope)?;
            let existed = match &self.cvv {
                CvvMode::Memory(mem) => mem.take(&key)?.is_some(),
                CvvMode::Durable(_) => self.store.take(Space::Volatile, &key).await?.is_some(),
            };
            self.store.durable().await?;
            return Ok(existed);
        }
        let Some(bytes) = self.store.get(Space::Tokens, token).await? else {
            return Ok(false);
        };
        let rec = Record::parse(&bytes)?;
        let fingerprint = if rec.header.deterministic {
            let revealed = self.detokenize(token, None).await?;
            let value = Sensitive::parse(revealed.class, revealed.value.expose())?;
            // The format is recovered by trying each one that fits the class.
            let mut found = None;
            for f in [
                TokenFormat::PanSixFour,
                TokenFormat::PanNonLuhn,
                TokenFormat::Opaque,
                TokenFormat::Digits,
            ] {
                if !f.fits(revealed.class) {
                    continue;
                }
                let fp = self.fingerprint(revealed.class, f, &value)?;
                for form in self.fingerprint_forms(&fp) {
                    if self.store.fingerprint(form).await?.as_deref() == Some(token) {
                        found = Some(form.to_vec());
                        break;
                    }
                }
                if found.is_some() {
                    break;
                }
            }
            found
        } else {
            None
        };
        let existed = self
            .store
            .remove(Space::Tokens, token, fingerprint.as_deref())
            .await?;
        self.store.durable().await?;
        Ok(existed)
    }
}
