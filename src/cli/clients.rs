//! `vaultgate clients add` and `vaultgate clients list`.
//!
//! There is no `clients revoke`: a client is revoked by removing its `[[clients]]`
//! entry and reloading (or restarting) the server.

use std::path::Path;

use super::args::{ClassArg, ClientsAction};
use crate::auth::{ClientConfig, client_toml_snippet, generate_api_key, key_id, validate_clients};
use crate::error::Result;
use crate::sensitive::DataClass;

/// Run a `clients` subcommand.
pub fn run_clients(action: &ClientsAction) -> Result<()> {
    match action {
        ClientsAction::Add {
            name,
            reveal,
            reveal_masked,
            tokenize,
            deterministic,
            delete,
            rate_limit,
        } => {
            let classes = |c: &[ClassArg]| -> Vec<DataClass> {
                let mut out: Vec<DataClass> = Vec::new();
                for class in c.iter().copied().map(DataClass::from) {
                    if !out.contains(&class) {
                        out.push(class);
                    }
                }
                out
            };
            let mut client = ClientConfig::named(name.clone());
            client.reveal = classes(reveal);
            client.reveal_masked = classes(reveal_masked);
            client.tokenize = classes(tokenize);
            client.deterministic = classes(deterministic);
            client.delete = *delete;
            if let Some(n) = rate_limit {
                client.rate_limit_per_minute = *n;
            }
            let (key, hash) = generate_api_key()?;
            client.api_key_hash = vec![hash];
            validate_clients(std::slice::from_ref(&client))?;
            println!("API key for {name} (shown once; store it in the client's secret store):");
            println!("{}", key.as_str());
            println!();
            println!("Add this to vaultgate.toml and reload (SIGHUP) or restart:");
            println!("{}", client_toml_snippet(&client));
            Ok(())
        }
        ClientsAction::List { config } => {
            print!("{}", list(config)?);
            Ok(())
        }
    }
}

/// The table `clients list` prints: one row per client, key ids instead of hashes.
fn list(path: &Path) -> Result<String> {
    let config = crate::config::Config::load(path)?;
    Ok(clients_table(&config.clients))
}

/// Render clients as an aligned table. Never shows a key hash, only its [`key_id`].
pub fn clients_table(clients: &[ClientConfig]) -> String {
    let classes = |c: &[DataClass]| -> String {
        if c.is_empty() {
            "-".to_owned()
        } else {
            c.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(",")
        }
    };
    let header = [
        "NAME",
        "KEY IDS",
        "CERT SUBJECT",
        "REVEAL",
        "REVEAL MASKED",
        "TOKENIZE",
        "DETERMINISTIC",
        "DELETE",
        "RATE/MIN",
    ]
    .map(str::to_owned);
    let mut rows = vec![header];
    for c in clients {
        let ids: Vec<String> = c.key_hashes().map(key_id).collect();
        rows.push([
            c.name.clone(),
            if ids.is_empty() {
                "-".to_owned()
            } else {
                ids.join(",")
            },
            c.cert_subject.clone().unwrap_or_else(|| "-".to_owned()),
            classes(&c.reveal),
            classes(&c.reveal_masked),
            classes(&c.tokenize),
            classes(&c.deterministic),
            if c.delete { "yes" } else { "no" }.to_owned(),
            c.rate_limit_per_minute.to_string(),
        ]);
    }
    let mut widths = [0usize; 9];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if clients.is_empty() {
        out.push_str("(no clients configured)\n");
    }
    out
}
