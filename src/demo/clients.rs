//! The demo's reveal client: one API key that may do everything, printed once.

use zeroize::Zeroizing;

use crate::auth::{ClientConfig, generate_api_key};
use crate::config::Config;
use crate::error::Result;
use crate::sensitive::DataClass;

/// Add a demo client that may reveal, tokenize and delete every class, and return
/// its API key (the config holds only the argon2 hash).
pub fn add_demo_client(config: &mut Config) -> Result<Zeroizing<String>> {
    let (key, hash) = generate_api_key()?;
    let mut client = ClientConfig::named("demo");
    client.api_key_hash = vec![hash];
    client.reveal = DataClass::ALL.to_vec();
    client.tokenize = DataClass::ALL.to_vec();
    client.deterministic = DataClass::ALL.to_vec();
    client.delete = true;
    config.clients.push(client);
    config.audit.path = Some(config.vault.data.join("audit.log"));
    Ok(key)
}
