//! The `vaultgate` command line: parsing and the vault commands.
//!
//! `main.rs` only calls [`run`]. Every command reports failures through
//! [`crate::Error`], printed on stderr with a non-zero exit.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::sensitive::{DataClass, Sensitive};
use crate::vault::keys::keyring::{self, KdfParams, Passphrase};
use crate::vault::settings::SecretUrl;
use crate::vault::{StoreKind, TokenFormat, TokenizeOptions, Vault, VaultSettings};

/// A tokenizing vault proxy.
#[derive(Parser, Debug)]
#[command(name = "vaultgate", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command understands.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// The keyring file.
    #[arg(long, global = true, default_value = "keys/keyring.json")]
    pub keyring: PathBuf,
    /// The store directory.
    #[arg(long, global = true, default_value = "data")]
    pub data: PathBuf,
    /// Read the passphrase from this file (else $VAULTGATE_PASSPHRASE, else a prompt).
    #[arg(long, global = true)]
    pub passphrase_file: Option<PathBuf>,
    /// The audit log that key operations (init, keys rotate/rewrap/passwd) are
    /// recorded in. Default: `<data>/audit.log`.
    #[arg(long, global = true)]
    pub audit_log: Option<PathBuf>,
    /// The token store: sled (in --data) or postgres (at --postgres-url).
    #[arg(long, global = true, value_enum, default_value = "sled")]
    pub store: StoreArg,
    /// The PostgreSQL URL for --store postgres.
    #[arg(
        long,
        global = true,
        env = "VAULTGATE_POSTGRES_URL",
        hide_env_values = true
    )]
    pub postgres_url: Option<String>,
    /// A PEM CA file for the database's TLS certificate.
    #[arg(long, global = true)]
    pub postgres_ca: Option<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
#[value(rename_all = "snake_case")]
pub enum StoreArg {
    Sled,
    Postgres,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the proxy with all five profiles in front of an echo upstream, on a
    /// throwaway keyring and store.
    Demo {
        /// The proxy listener.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// The API listener.
        #[arg(long, default_value = "127.0.0.1:8081")]
        api_listen: String,
    },
    /// Run the proxy and the API from a config file.
    Serve {
        /// The TOML config.
        #[arg(long, default_value = "vaultgate.toml")]
        config: PathBuf,
    },
    /// Check a config file and exit.
    CheckConfig {
        #[arg(long, default_value = "vaultgate.toml")]
        config: PathBuf,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// API clients.
    Clients {
        #[command(subcommand)]
        action: ClientsAction,
    },
    /// Create a new keyring (refuses to overwrite one).
    Init {
        /// argon2id memory in KiB (default 262144; at least 19456).
        #[arg(long)]
        kdf_memory_kib: Option<u32>,
        /// argon2id passes (default 3; at least 2).
        #[arg(long)]
        kdf_passes: Option<u32>,
    },
    /// Key management.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Read a value from stdin and print its token.
    Tokenize {
        #[arg(long, value_enum)]
        class: ClassArg,
        /// pan_six_four, pan_non_luhn, opaque or digits.
        #[arg(long)]
        format: Option<String>,
        /// Give a fresh token even if the value was tokenized before.
        #[arg(long)]
        no_deterministic: bool,
        /// For a CVV: the card token it travels with.
        #[arg(long)]
        scope: Option<String>,
    },
    /// Apply pending PostgreSQL schema migrations (the store of --config, else of
    /// --store postgres --postgres-url) and exit.
    Migrate {
        /// A TOML config whose [vault] names the database.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the value of a token.
    Detokenize {
        #[arg(required_unless_present = "batch")]
        token: Option<String>,
        /// Read tokens from stdin, one per line; print one line per token: the value,
        /// or `!` and the error code (for tests and scripts).
        #[arg(long, hide = true, conflicts_with = "token")]
        batch: bool,
        /// For a same-length CVV token: its scope.
        #[arg(long)]
        scope: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysAction {
    /// Make a new data key version active.
    Rotate,
    /// Re-encrypt every record sealed under an older key version.
    Rewrap,
    /// Re-seal the master key under a new passphrase.
    Passwd {
        /// Read the new passphrase from this file (else $VAULTGATE_NEW_PASSPHRASE, else a prompt).
        #[arg(long)]
        new_passphrase_file: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditAction {
    /// Check the hash chain of an audit log; exits non-zero at the first bad entry.
    Verify {
        /// The audit log file.
        path: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum ClientsAction {
    /// Make a new API key for a client: prints the key once and the config snippet.
    Add { name: String },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
#[value(rename_all = "snake_case")]
pub enum ClassArg {
    Pan,
    Cvv,
    BankAccount,
    Secret,
}

impl From<ClassArg> for DataClass {
    fn from(c: ClassArg) -> Self {
        match c {
            ClassArg::Pan => DataClass::Pan,
            ClassArg::Cvv => DataClass::Cvv,
            ClassArg::BankAccount => DataClass::BankAccount,
            ClassArg::Secret => DataClass::Secret,
        }
    }
}

/// Read a passphrase: a file, an environment variable, or a prompt on a terminal.
pub fn read_passphrase(file: Option<&PathBuf>, env: &str, prompt: &str) -> Result<Passphrase> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("read the passphrase file {}", path.display()), e))?;
        return Passphrase::new(text);
    }
    if let Ok(v) = std::env::var(env) {
        return Passphrase::new(v);
    }
    if std::io::stdin().is_terminal() || std::io::stderr().is_terminal() {
        let p = rpassword::prompt_password(prompt)
            .map_err(|e| Error::io("read the passphrase from the terminal", e))?;
        return Passphrase::new(p);
    }
    Err(Error::Keyring(format!(
        "no passphrase: use --passphrase-file, set {env}, or run on a terminal"
    )))
}

impl Global {
    /// The passphrase for this invocation.
    pub fn passphrase(&self) -> Result<Passphrase> {
        read_passphrase(
            self.passphrase_file.as_ref(),
            "VAULTGATE_PASSPHRASE",
            "vaultgate passphrase: ",
        )
    }

    fn settings(&self) -> Result<VaultSettings> {
        let settings = VaultSettings {
            keyring: self.keyring.clone(),
            data: self.data.clone(),
            store: match self.store {
                StoreArg::Sled => StoreKind::Sled,
                StoreArg::Postgres => StoreKind::Postgres,
            },
            postgres_url: self.postgres_url.clone().map(SecretUrl::new),
            postgres_ca: self.postgres_ca.clone(),
            ..VaultSettings::default()
        };
        settings.validate().map_err(|_| {
            Error::Config(
                "--postgres-url (or VAULTGATE_POSTGRES_URL) is required with --store postgres"
                    .into(),
            )
        })?;
        Ok(settings)
    }

    /// Record a key operation in the audit log (fsynced before returning).
    fn audit_key_op(&self, action: crate::audit::Action, result: &Result<()>) -> Result<()> {
        let path = self
            .audit_log
            .clone()
            .unwrap_or_else(|| self.data.join("audit.log"));
        let log = crate::audit::AuditLog::open(&path)?;
        let event = crate::audit::AuditEvent::new("cli", action).outcome_of(result);
        log.record_blocking(std::slice::from_ref(&event))
    }

    async fn open_vault(&self) -> Result<Vault> {
        let settings = self.settings()?;
        let keys = keyring::open(&self.keyring, &self.passphrase()?)?;
        Vault::open_async(&settings, keys).await
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("start the async runtime", e))
}

fn multi_thread_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("start the async runtime", e))
}

/// `vaultgate serve`: open the keyring and store named in the config and serve
/// until SIGTERM or SIGINT, then drain and flush.
fn serve(global: &Global, path: &std::path::Path) -> Result<()> {
    let config = crate::config::Config::load(path)?;
    crate::logging::init(config.log.format, &config.log.level)?;
    let pass = global.passphrase()?;
    let keys = keyring::open(&config.vault.keyring, &pass)?;
    drop(pass);
    multi_thread_runtime()?.block_on(async {
        let vault = std::sync::Arc::new(Vault::open_async(&config.vault, keys).await?);
        let handle = crate::app::start(&config, std::sync::Arc::clone(&vault)).await?;
        tracing::info!(
            proxy = %handle.proxy_addr(),
            api = %handle.api_addr(),
            "vaultgate is serving"
        );
        let sweeper = spawn_sweeper(std::sync::Arc::clone(&vault));
        handle.run_until_signal().await?;
        sweeper.abort();
        vault.flush().await?;
        tracing::info!("stopped; the store is flushed");
        Ok(())
    })
}

/// Drop expired CVVs once a minute (and once at start, for records left by a restart).
pub fn spawn_sweeper(vault: std::sync::Arc<Vault>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            match vault.sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(swept = n, "expired CVV records removed"),
                Err(e) => tracing::warn!(error = %e, "CVV sweep failed"),
            }
        }
    })
}

/// Run a command.
pub fn run_vault_command(global: &Global, command: &Command) -> Result<()> {
    match command {
        Command::Demo { listen, api_listen } => {
            crate::logging::init(crate::config::LogFormat::Text, "warn")?;
            multi_thread_runtime()?.block_on(crate::demo::run::run(crate::demo::run::DemoOptions {
                proxy_listen: listen.clone(),
                api_listen: api_listen.clone(),
            }))
        }
        Command::Serve { config } => serve(global, config),
        Command::CheckConfig { config } => {
            let loaded = crate::config::Config::load(config)?;
            // Warnings do not fail the check: the config is valid, only risky.
            for warning in crate::config::route_warnings(&loaded.routes) {
                eprintln!("warning: {warning}");
            }
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
        Command::Clients {
            action: ClientsAction::Add { name },
        } => {
            let (key, hash) = crate::auth::generate_api_key()?;
            println!("API key for {name} (shown once; store it in the client's secret store):");
            println!("{}", key.as_str());
            println!();
            println!("Add this to vaultgate.toml:");
            println!("{}", crate::auth::client_toml_snippet(name, &hash));
            Ok(())
        }
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

fn run_keys(global: &Global, action: &KeysAction) -> Result<()> {
    match action {
        KeysAction::Rotate => {
            let (version, _) = keyring::rotate(&global.keyring, &global.passphrase()?)?;
            eprintln!(
                "data key version {version} is now active; run `vaultgate keys rewrap` to \
                 re-encrypt older records"
            );
            Ok(())
        }
        KeysAction::Rewrap => {
            let report = runtime()?.block_on(async {
                let vault = global.open_vault().await?;
                vault.rewrap().await
            })?;
            eprintln!(
                "rewrapped {} records; {} were already under the active key",
                report.rewrapped, report.current
            );
            Ok(())
        }
        KeysAction::Passwd {
            new_passphrase_file,
        } => {
            let old = global.passphrase()?;
            let new = read_passphrase(
                new_passphrase_file.as_ref(),
                "VAULTGATE_NEW_PASSPHRASE",
                "new passphrase: ",
            )?;
            keyring::passwd(&global.keyring, &old, &new)?;
            eprintln!("the master key is sealed under the new passphrase");
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
