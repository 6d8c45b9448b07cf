//! The demo's reveal client. Filled in once clients live in the config.

use zeroize::Zeroizing;

use crate::config::Config;
use crate::error::Result;

/// Add a demo client to the config and return its API key, printed once.
pub fn add_demo_client(_config: &mut Config) -> Result<Option<Zeroizing<String>>> {
    Ok(None)
}
