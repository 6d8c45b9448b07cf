//! Maintenance: sweep expired CVVs (rewrap is in `rotation`).

use super::*;

impl Vault {
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
