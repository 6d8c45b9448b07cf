//! Maintenance: rewrap records under the active key, sweep expired CVVs.

use super::*;

impl Vault {
    /// Re-encrypt every record sealed under an older data key version. Each record
    /// is replaced atomically, so an interrupted pass can simply be run again.
    pub async fn rewrap(&self) -> Result<RewrapReport> {
        let (active, sealer) = self.keys.active()?;
        let mut report = RewrapReport::default();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .scan(Space::Tokens, after.as_deref(), 512)
                .await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (token, bytes) in &page {
                let rec = Record::parse(bytes)?;
                if rec.header.key_version == active {
                    report.current += 1;
                    continue;
                }
                let old = self.keys.version(rec.header.key_version)?;
                let plain = old.open(&rec.aad(token), rec.nonce, rec.ciphertext)?;
                let header = Header {
                    key_version: active,
                    ..rec.header
                };
                let (nonce, ct) = sealer.seal(&header.aad(token), &plain)?;
                let new = header.encode_record(&nonce, &ct);
                if self
                    .store
                    .replace(Space::Tokens, token, bytes, &new)
                    .await?
                {
                    report.rewrapped += 1;
                }
            }
        }
        self.store.durable().await?;
        Ok(report)
    }

    /// Drop expired CVV records and destroy the keys of passed windows.
    pub async fn sweep(&self) -> Result<usize> {
        let now = now_secs();
        match &self.cvv {
            CvvMode::Memory(mem) => mem.sweep(now),
            CvvMode::Durable(epochs) => {
                let mut n = 0;
                loop {
                    let keys = self.store.scan_expired(now, 1024).await?;
                    if keys.is_empty() {
                        break;
                    }
                    for k in &keys {
                        if self.store.take(Space::Volatile, k).await?.is_some() {
                            n += 1;
                        }
                    }
                }
                epochs.destroy_expired(now).await?;
                self.store.durable().await?;
                Ok(n)
            }
        }
    }
}
