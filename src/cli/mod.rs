//! The `vaultgate` command line: parsing and the vault commands.
//!
//! `main.rs` only calls [`run`]. Every command reports failures through
//! [`crate::Error`], printed on stderr with a non-zero exit.

mod args;
mod clients;
mod context;
mod keys;
mod serve;

use std::io::{Read, Write};

use clap::Parser;
use zeroize::Zeroizing;

pub use args::{AuditAction, ClassArg, Cli, ClientsAction, Command, Global, KeysAction, StoreArg};
pub use clients::clients_table;
pub use context::read_passphrase;
pub use serve::spawn_sweeper;

use context::{multi_thread_runtime, runtime};
use keys::run_keys;
use serve::serve;

use crate::error::{Error, Result};
use crate::sensitive::{DataClass, Sensitive};
use crate::vault::keys::keyring::{self, KdfParams};
use crate::vault::{StoreKind, TokenFormat, TokenizeOptions};

/// Run a command.
pub fn run_vault_command(global: &Global, command: &Command) -> Result<()> {
    match command {
        Command::Demo { listen, api_listen } => {
            // One line per request on the console: the proxy's and the API's request
            // lines (method, route, status, latency; never a body or query string).
            crate::logging::init(
                crate::config::LogFormat::Text,
                "warn,vaultgate::inbound=debug,vaultgate::api=debug",
            )?;
            multi_thread_runtime()?.block_on(crate::demo::run::run(crate::demo::run::DemoOptions {
                proxy_listen: listen.clone(),
                api_listen: api_listen.clone(),
            }))
        }
        Command::Serve { config } => serve(global, config),
        Command::CheckConfig { config } => {
            crate::config::Config::load(config)?;
            eprintln!("{} is valid", config.display());
            Ok(())
        }
        Command::Audit {
            action: AuditAction::Verify { path },
        } => {
            let report = crate::audit::verify(path)?;
            println!("{report}");
            if report.is_intact() {
                Ok(())
            } else {
                Err(Error::Integrity("the audit log failed verification"))
            }
        }
        Command::Clients { action } => clients::run_clients(action),
        Command::Init {
            kdf_memory_kib,
            kdf_passes,
        } => {
            let mut params = KdfParams::default();
            if let Some(m) = kdf_memory_kib {
                params.m_cost_kib = *m;
            }
            if let Some(t) = kdf_passes {
                params.t_cost = *t;
            }
            let pass = global.passphrase()?;
            let result = keyring::init(&global.keyring, &pass, params).map(|_| ());
            global.audit_key_op(crate::audit::Action::KeyringInit, &result)?;
            result?;
            eprintln!("created keyring {}", global.keyring.display());
            Ok(())
        }
        Command::Keys { action } => {
            let result = run_keys(global, action);
            let op = match action {
                KeysAction::Rotate => crate::audit::Action::KeyRotate,
                KeysAction::Rewrap => crate::audit::Action::KeyRewrap,
                KeysAction::Passwd { .. } => crate::audit::Action::KeyPasswd,
            };
            global.audit_key_op(op, &result)?;
            result
        }
        Command::Tokenize {
            class,
            format,
            no_deterministic,
            scope,
        } => {
            let class = DataClass::from(*class);
            let format = match format {
                Some(f) => Some(TokenFormat::parse(f).ok_or_else(|| {
                    Error::Config(format!("--format: unknown token format `{f}`"))
                })?),
                None => None,
            };
            let mut raw = Zeroizing::new(String::new());
            std::io::stdin()
                .read_to_string(&mut raw)
                .map_err(|e| Error::io("read the value from stdin", e))?;
            let value = Sensitive::parse(class, raw.trim_end_matches(['\r', '\n']))?;
            if class == DataClass::Cvv && global.store == StoreArg::Sled {
                eprintln!(
                    "note: CVV tokens live in memory only unless cvv_durable is set; \
                     this one ends with this process"
                );
            }
            let opts = TokenizeOptions {
                format,
                deterministic: no_deterministic.then_some(false),
                scope: scope.clone(),
            };
            let token = runtime()?.block_on(async {
                let vault = global.open_vault().await?;
                vault.tokenize(&value, &opts).await
            })?;
            println!("{token}");
            Ok(())
        }
        Command::Migrate { config } => {
            let mut settings = match config {
                Some(path) => crate::config::Config::load(path)?.vault,
                None => global.settings()?,
            };
            if settings.store != StoreKind::Postgres {
                return Err(Error::Config(
                    "migrate: the store is sled, which has no schema; use a config with \
                     vault.store = \"postgres\" or --store postgres"
                        .into(),
                ));
            }
            settings.postgres_migrate_on_start = false;
            let applied = runtime()?.block_on(async {
                let store = crate::vault::PgStore::connect(&settings).await?;
                store.migrate().await?;
                store.applied_migrations().await
            })?;
            eprintln!("the schema is at migrations {applied:?}");
            Ok(())
        }
        Command::Detokenize {
            token,
            batch,
            scope,
        } => {
            let rt = runtime()?;
            let vault = rt.block_on(global.open_vault())?;
            let mut out = std::io::stdout().lock();
            let Some(token) = token.as_deref().filter(|_| !*batch) else {
                for line in std::io::stdin().lines() {
                    let line = line.map_err(|e| Error::io("read tokens from stdin", e))?;
                    match rt.block_on(vault.detokenize(line.trim(), scope.as_deref())) {
                        Ok(r) => writeln!(out, "{}", r.value.expose()),
                        Err(e) => writeln!(out, "!{}", e.code()),
                    }
                    .map_err(|e| Error::io("write to stdout", e))?;
                }
                return Ok(());
            };
            let revealed = rt.block_on(vault.detokenize(token, scope.as_deref()))?;
            writeln!(out, "{}", revealed.value.expose())
                .map_err(|e| Error::io("write to stdout", e))?;
            Ok(())
        }
    }
}

/// Parse the command line and run it. Returns the process exit code.
pub fn run() -> i32 {
    let cli = Cli::parse();
    match run_vault_command(&cli.global, &cli.command) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("vaultgate: {e}");
            1
        }
    }
}
