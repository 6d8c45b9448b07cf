//! The `vaultgate` command line: parsing and the vault commands.
//!
//! `main.rs` only calls [`run`]. Every command reports failures through
//! [`crate::Error`], printed on stderr with a non-zero exit.

mod args;
mod audit;
mod check;
mod clients;
mod context;
pub mod explain;
mod keys;
mod seal;
mod serve;

use std::io::Read;

use clap::Parser;
use zeroize::Zeroizing;

pub use crate::custody::spawn_sweeper;
pub use args::{
    ApiArgs, AuditAction, ClassArg, Cli, ClientsAction, Command, ExplainArgs, Global, HsmArgs,
    KeysAction, SealArg, SplitArgs, StoreArg,
};
pub use clients::clients_table;
pub use context::{read_passphrase, read_share};

use context::{multi_thread_runtime, runtime};
use keys::{kdf_params, print_shares, run_keys};
use serve::serve;

use crate::error::{Error, Result};
use crate::sensitive::{DataClass, Sensitive};
use crate::vault::keys::keyring;
use crate::vault::keys::seal::NewSeal;
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
        Command::Explain(args) => explain::run(args).map(|_| ()),
        Command::CheckConfig { config, offline } => {
            let loaded = if *offline {
                crate::config::Config::load(config)?
            } else {
                check::check_config(config)?
            };
            // Warnings do not fail the check: the config is valid, only risky.
            for warning in crate::config::route_warnings(&loaded.routes) {
                eprintln!("warning: {warning}");
            }
            eprintln!("{} is valid", config.display());
            Ok(())
        }
        Command::Audit {
            action:
                AuditAction::Verify {
                    path,
                    checkpoints,
                    no_key,
                },
        } => audit::verify(global, path, checkpoints.as_ref(), *no_key),
        Command::Clients { action } => clients::run_clients(action),
        Command::Init {
            kdf_memory_kib,
            kdf_passes,
            seal,
            split,
        } => {
            let pass;
            let hsm = global.hsm_settings();
            let new = match seal {
                SealArg::Passphrase => {
                    pass = global.passphrase()?;
                    NewSeal::Passphrase {
                        pass: &pass,
                        params: kdf_params(*kdf_memory_kib, *kdf_passes),
                    }
                }
                SealArg::Shamir => NewSeal::Shamir {
                    shares: split.shares,
                    threshold: split.threshold,
                },
                SealArg::Pkcs11 => NewSeal::Pkcs11(&hsm),
            };
            let result = keyring::init_sealed(&global.keyring, &new);
            let key = result.as_ref().ok().and_then(|(k, _)| k.audit_key().ok());
            global.audit_key_op(crate::audit::Action::KeyringInit, &result, key)?;
            let (_, shares) = result?;
            eprintln!(
                "created keyring {} (seal: {})",
                global.keyring.display(),
                crate::vault::keys::seal::SealKind::from(*seal).as_str()
            );
            print_shares(&shares, *split);
            Ok(())
        }
        Command::Unseal { api } => seal::unseal(global, api),
        Command::Seal { api } => seal::seal(api),
        Command::SealStatus { api } => seal::status(api),
        Command::Keys { action } => {
            let mut key = None;
            let result = run_keys(global, action, &mut key);
            let op = match action {
                KeysAction::Rotate => crate::audit::Action::KeyRotate,
                KeysAction::Rewrap { .. } => crate::audit::Action::KeyRewrap,
                KeysAction::Passwd { .. } => crate::audit::Action::KeyPasswd,
                KeysAction::Rekey { .. } => crate::audit::Action::KeyRekey,
                KeysAction::Reseal { .. } => crate::audit::Action::KeyReseal,
                KeysAction::SealInfo => return result,
            };
            global.audit_key_op(op, &result, key)?;
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
            if class == DataClass::Cvv && global.store != StoreArg::Postgres {
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
            let (key, token) = runtime()?.block_on(async {
                let vault = global.open_vault().await?;
                Ok::<_, Error>((vault.audit_key()?, vault.tokenize(&value, &opts).await))
            })?;
            audit::audit_tokenize(global, key, class, &token)?;
            println!("{}", token?);
            Ok(())
        }
        Command::Migrate { config } => {
            let mut settings = match config {
                Some(path) => crate::config::Config::load(path)?.vault,
                None => global.settings()?,
            };
            if settings.store != StoreKind::Postgres {
                return Err(Error::Config(
                    "migrate: the store is embedded, which has no schema; use a config with \
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
        } => audit::detokenize(global, token.as_deref(), *batch, scope.as_deref()),
    }
}

/// Parse the command line and run it. Returns the process exit code.
pub fn run() -> i32 {
    let cli = Cli::parse();
    if let Command::Explain(args) = &cli.command {
        return match explain::run(args) {
            Ok(true) => 0,
            Ok(false) => explain::EXIT_REFUSED,
            Err(e) => {
                eprintln!("vaultgate: {e}");
                explain::EXIT_USAGE
            }
        };
    }
    match run_vault_command(&cli.global, &cli.command) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("vaultgate: {e}");
            1
        }
    }
}
