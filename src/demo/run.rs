//! `vaultgate demo`: the proxy with all five profiles in front of an embedded echo
//! upstream, on a throwaway keyring and store in a temp dir.

use std::sync::Arc;

use base64::Engine;

use super::echo::EchoUpstream;
use crate::app;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::vault::keys::keyring::{self, KdfParams, Passphrase};
use crate::vault::{Vault, keys::crypto};

/// Where the demo listens.
pub struct DemoOptions {
    pub proxy_listen: String,
    pub api_listen: String,
}

/// The documented example requests, as (name, path, content type, body). The bodies
/// are the APIs' own examples, kept in `examples/requests/` (well-known test card
/// numbers only), so they can also be sent with `curl -d @examples/requests/…`.
pub fn examples() -> Vec<(&'static str, &'static str, &'static str, String)> {
    let body = |text: &str| text.trim_end().to_owned();
    vec![
        (
            "q2open card",
            "/v1/payment",
            "application/json",
            body(include_str!("../../examples/requests/q2open-card.json")),
        ),
        (
            "q2open bank",
            "/v1/payment",
            "application/json",
            body(include_str!("../../examples/requests/q2open-bank.json")),
        ),
        (
            "Oracle BRM",
            "/brm/paymentMethods/v1/paymentMethod",
            "application/json",
            body(include_str!("../../examples/requests/oracle-brm.json")),
        ),
        (
            "Hostway credit card",
            "/accounts/1042/paymentInfo",
            "application/json",
            body(include_str!("../../examples/requests/hostway-card.json")),
        ),
        (
            "stripe-backed payment method (no card: passes through untouched)",
            "/payment-method",
            "application/json",
            body(include_str!("../../examples/requests/stripe-backed.json")),
        ),
        (
            "Plano (base64 sensitive params)",
            "/payment-methods",
            "text/plain",
            base64::engine::general_purpose::STANDARD
                .encode(include_str!("../../examples/requests/plano-params.json").trim_end()),
        ),
    ]
}

/// Run the demo until SIGINT or SIGTERM.
pub async fn run(opts: DemoOptions) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("vaultgate-demo-")
        .tempdir()
        .map_err(|e| Error::io("create the demo's temp dir", e))?;
    let (upstream, echo) = EchoUpstream::start().await?;
    let mut config = Config::demo(
        &opts.proxy_listen,
        &opts.api_listen,
        &format!("http://{upstream}"),
        dir.path(),
    )?;
    let api_key = crate::demo::clients::add_demo_client(&mut config)?;
    config.validate()?;

    // A throwaway passphrase that nobody needs to know: the keyring dies with the demo.
    let pass = Passphrase::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crypto::random_bytes::<24>()),
    )?;
    let keys = keyring::init(&config.vault.keyring, &pass, KdfParams::MINIMUM)?;
    let vault = Arc::new(Vault::open_async(&config.vault, keys).await?);
    let handle = app::start(&config, Arc::clone(&vault)).await?;
    let proxy = handle.proxy_addr();
    let api = handle.api_addr();

    println!("vaultgate demo");
    println!();
    println!("Proxy:    http://{proxy}   (all five profiles, in front of an echo upstream)");
    println!("Upstream: http://{upstream}   (answers with exactly what it received)");
    println!("API:      http://{api}   (/healthz, /readyz, /metrics, /v1/...)");
    println!(
        "Data:     {}   (throwaway; removed on exit)",
        dir.path().display()
    );
    if let Some(key) = &api_key {
        println!("API key: {}", key.as_str());
    }
    println!();
    println!("Try the documented example requests (the echo shows what the backend got):");
    for (name, path, ctype, body) in examples() {
        println!();
        println!("# {name}");
        println!(
            "curl -s http://{proxy}{path} -H 'Content-Type: {ctype}' -d '{}'",
            body.replace('\'', "'\\''")
        );
    }
    if let Some(key) = &api_key {
        println!();
        println!("# Reveal a token from the echoed body (put it in place of TOKEN):");
        println!(
            "curl -s http://{api}/v1/detokenize -H 'Authorization: Bearer {}' \
             -H 'Content-Type: application/json' -d '{{\"tokens\":[\"TOKEN\"]}}'",
            key.as_str()
        );
        println!();
        println!("# Its metadata only (class, last four, created):");
        println!(
            "curl -s http://{api}/v1/tokens/TOKEN -H 'Authorization: Bearer {}'",
            key.as_str()
        );
    }
    println!();
    println!("Press Ctrl-C to stop.");

    handle.run_until_signal().await?;
    vault.flush().await?;
    echo.stop().await;
    drop(dir);
    Ok(())
}
