//! The command line's shape: global options, commands and their arguments (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::sensitive::DataClass;

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
    /// The audit log that CLI commands (init, keys, tokenize, detokenize) are
    /// recorded in. Default: `<data>/audit.log`.
    #[arg(long, global = true)]
    pub audit_log: Option<PathBuf>,
    /// The token store: sled or fjall (in --data), or postgres (at --postgres-url).
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
    /// A Shamir share, in a file (repeat for a quorum). `serve` unseals with these at
    /// start; key commands open a Shamir-sealed keyring with them.
    #[arg(long, global = true)]
    pub share_file: Vec<PathBuf>,
    #[command(flatten)]
    pub hsm: HsmArgs,
}

/// Where the HSM of a PKCS#11 seal is (the CLI's `[vault.seal]`).
#[derive(Args, Debug, Clone, Default)]
pub struct HsmArgs {
    /// The PKCS#11 module (shared library).
    #[arg(long, global = true, env = "VAULTGATE_HSM_MODULE")]
    pub hsm_module: Option<PathBuf>,
    /// The token's label (default: the keyring's).
    #[arg(long, global = true)]
    pub hsm_token: Option<String>,
    /// The slot id, instead of a token label.
    #[arg(long, global = true)]
    pub hsm_slot: Option<u64>,
    /// A file holding the user PIN (else $VAULTGATE_HSM_PIN).
    #[arg(long, global = true)]
    pub hsm_pin_file: Option<PathBuf>,
    /// The wrapping key's label (default: the keyring's; at init `vaultgate-master`).
    #[arg(long, global = true)]
    pub hsm_key_label: Option<String>,
    /// Accept a wrapping key that is extractable or not sensitive.
    #[arg(long, global = true)]
    pub hsm_allow_extractable: bool,
}

/// A seal, on the command line.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
#[value(rename_all = "snake_case")]
pub enum SealArg {
    Passphrase,
    Shamir,
    Pkcs11,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
#[value(rename_all = "snake_case")]
pub enum StoreArg {
    Sled,
    Fjall,
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
    /// Show how the proxy would route, sanitize and forward (or refuse) one request,
    /// values masked, tokens as placeholders. Touches neither the store nor the
    /// keyring. Exit 0: forwarded; 1: refused; 2: a usage or config error.
    Explain(ExplainArgs),
    /// Check a config file and exit: parse and validate it, then open what `serve`
    /// would (TLS files, CA files, the keyring, writable data and audit paths).
    CheckConfig {
        #[arg(long, default_value = "vaultgate.toml")]
        config: PathBuf,
        /// Parse and validate only; open none of the files it names (for a config
        /// checked away from where it runs, such as a Kubernetes ConfigMap in CI).
        #[arg(long)]
        offline: bool,
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
        /// How the master key is sealed.
        #[arg(long, value_enum, default_value = "passphrase")]
        seal: SealArg,
        #[command(flatten)]
        split: SplitArgs,
    },
    /// Send one unseal share to a running server (from --share-file, stdin, or a
    /// prompt); with an HSM seal, ask the server to unseal from its HSM.
    Unseal {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Drop the keys of a running server from memory (a client with `seal = true`).
    Seal {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Print a running server's seal status.
    SealStatus {
        #[command(flatten)]
        api: ApiArgs,
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
        /// A TOML config whose `[vault]` table names the database.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the value of a token.
    Detokenize {
        #[arg(required_unless_present = "batch")]
        token: Option<String>,
        /// Read tokens from stdin, one per line; print one line per token: the value,
        /// or `!` and the error code (bulk reveals for scripts and migrations).
        #[arg(long, conflicts_with = "token")]
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
    Rewrap {
        /// Ask the running server to rewrap (`POST <URL>/v1/sys/rewrap`), for an embedded
        /// store it holds open; the API key of a client with `seal = true` is read from
        /// $VAULTGATE_API_KEY.
        #[arg(long, value_name = "URL")]
        api: Option<String>,
    },
    /// Re-seal the master key under a new passphrase.
    Passwd {
        /// Read the new passphrase from this file (else $VAULTGATE_NEW_PASSPHRASE, else a prompt).
        #[arg(long)]
        new_passphrase_file: Option<PathBuf>,
    },
    /// Split a Shamir-sealed master key anew with a quorum of the current shares
    /// (--share-file); the old shares stop working.
    Rekey {
        #[command(flatten)]
        split: SplitArgs,
    },
    /// Move the master key to another seal; no record changes.
    Reseal {
        /// The new seal.
        #[arg(long, value_enum)]
        to: SealArg,
        #[command(flatten)]
        split: SplitArgs,
        /// For --to passphrase: argon2id memory in KiB (default 262144).
        #[arg(long)]
        kdf_memory_kib: Option<u32>,
        /// For --to passphrase: argon2id passes (default 3).
        #[arg(long)]
        kdf_passes: Option<u32>,
        /// For --to passphrase: the new passphrase's file (else
        /// $VAULTGATE_NEW_PASSPHRASE, else a prompt).
        #[arg(long)]
        new_passphrase_file: Option<PathBuf>,
    },
    /// Print how the keyring is sealed; for an HSM seal, the wrapping key's attributes
    /// as the module reports them.
    SealInfo,
}

/// The split of a Shamir seal.
#[derive(Args, Debug, Clone, Copy)]
pub struct SplitArgs {
    /// Shares to make.
    #[arg(long, default_value_t = 5)]
    pub shares: u8,
    /// Shares needed to unseal.
    #[arg(long, default_value_t = 3)]
    pub threshold: u8,
}

/// A running server's API listener.
#[derive(Args, Debug, Clone)]
pub struct ApiArgs {
    /// The API listener's URL.
    #[arg(
        long,
        env = "VAULTGATE_API_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub api_url: String,
    /// A PEM CA file for the API's TLS certificate (else the webpki roots).
    #[arg(long)]
    pub api_ca: Option<PathBuf>,
    /// The API key, in a file (else $VAULTGATE_API_KEY); `seal` needs one.
    #[arg(long)]
    pub api_key_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum AuditAction {
    /// Check an audit log: every hash and MAC (with the keyring and passphrase), and
    /// the tail against the signed checkpoints; exits non-zero at the first bad entry
    /// or a missing tail.
    Verify {
        /// The audit log file.
        path: PathBuf,
        /// The checkpoint file (default: `<path>.checkpoints`; for a rotated log, the
        /// live log's).
        #[arg(long)]
        checkpoints: Option<PathBuf>,
        /// Check hashes only, without the keyring: a forger who recomputed every hash
        /// passes this check.
        #[arg(long)]
        no_key: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ClientsAction {
    /// Make a new API key for a client: prints the key once and a ready `[[clients]]`
    /// snippet with the grants below.
    Add {
        /// The client's name (`A-Z a-z 0-9 _ - .`, as written to the audit log).
        name: String,
        /// Classes it may reveal in full (comma-separated).
        #[arg(long, value_enum, value_delimiter = ',')]
        reveal: Vec<ClassArg>,
        /// Classes it may reveal masked, last four only.
        #[arg(long, value_enum, value_delimiter = ',')]
        reveal_masked: Vec<ClassArg>,
        /// Classes it may tokenize through the API.
        #[arg(long, value_enum, value_delimiter = ',')]
        tokenize: Vec<ClassArg>,
        /// Classes whose API tokens may be deterministic (same value, same token).
        #[arg(long, value_enum, value_delimiter = ',')]
        deterministic: Vec<ClassArg>,
        /// It may delete tokens.
        #[arg(long)]
        delete: bool,
        /// Tokens it may reveal per minute.
        #[arg(long, value_name = "N")]
        rate_limit: Option<u32>,
    },
    /// Show the configured clients: names, grants and key ids (never the hashes).
    List {
        /// The TOML config.
        #[arg(long, default_value = "vaultgate.toml")]
        config: PathBuf,
    },
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

/// `vaultgate explain`: the request to explain.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The TOML config.
    #[arg(long, default_value = "vaultgate.toml")]
    pub config: PathBuf,
    /// The request method.
    #[arg(long)]
    pub method: String,
    /// The request path, with a query string if any (`/v1/payment?x=1`).
    #[arg(long)]
    pub path: String,
    /// A request header, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    pub headers: Vec<String>,
    /// Read the body from this file.
    #[arg(long, conflicts_with = "body")]
    pub body_file: Option<PathBuf>,
    /// The body, as a string.
    #[arg(long)]
    pub body: Option<String>,
    /// Print the explanation as JSON.
    #[arg(long)]
    pub json: bool,
}
