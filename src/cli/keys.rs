//! `vaultgate keys rotate | rewrap | passwd | rekey | reseal | seal-info`.

use super::args::{Global, KeysAction, SealArg, SplitArgs, StoreArg};
use super::context::{read_passphrase, runtime};
use crate::error::{Error, Result};
use crate::vault::keys::crypto::SecretKey;
use crate::vault::keys::keyring::{self, KdfParams, KeyringFile};
use crate::vault::keys::seal::{NewSeal, SealFile, ShareText, Unlock};

/// Run a key command. `audit_key` receives the audit key as soon as the keyring is
/// open, so that the caller can audit the outcome, failures included.
pub(super) fn run_keys(
    global: &Global,
    action: &KeysAction,
    audit_key: &mut Option<SecretKey>,
) -> Result<()> {
    match action {
        KeysAction::Rotate => {
            let (version, keys) =
                keyring::rotate_with(&global.keyring, &global.credential()?.unlock())?;
            *audit_key = keys.audit_key().ok();
            if global.store == StoreArg::Postgres {
                // Every instance on the database switches to the new version together.
                runtime()?.block_on(async {
                    let store = crate::vault::open_store(&global.settings()?).await?;
                    store.set_shared_key_version(version).await
                })?;
            }
            eprintln!(
                "data key version {version} is now active; run `vaultgate keys rewrap` to \
                 re-encrypt older records"
            );
            Ok(())
        }
        KeysAction::Rewrap { api: Some(url) } => {
            let body = runtime()?.block_on(rewrap_through(url))?;
            eprintln!("the server rewrapped: {body}");
            Ok(())
        }
        KeysAction::Rewrap { api: None } => {
            let report = runtime()?.block_on(async {
                let vault = global.open_vault().await.map_err(|e| match e {
                    Error::Store(m) if global.store != StoreArg::Postgres => Error::Store(format!(
                        "{m}; while a server holds the store, rewrap through it with \
                         `keys rewrap --api http://<api listen>`"
                    )),
                    other => other,
                })?;
                *audit_key = vault.audit_key().ok();
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
            // The master key (and so the audit key) is unchanged; one more unseal.
            *audit_key = keyring::open(&global.keyring, &new)
                .and_then(|k| k.audit_key())
                .ok();
            eprintln!("the master key is sealed under the new passphrase");
            Ok(())
        }
        KeysAction::Rekey { split } => {
            let SealFile::Shamir(current) = KeyringFile::load(&global.keyring)?.seal()? else {
                return Err(Error::Keyring(
                    "the keyring is not sealed by Shamir shares; use `keys reseal --to shamir`"
                        .into(),
                ));
            };
            let old = global.shares(current.threshold())?;
            *audit_key = keyring::open_with(&global.keyring, &Unlock::Shares(&old))
                .and_then(|k| k.audit_key())
                .ok();
            let shares = keyring::rekey(&global.keyring, &old, split.shares, split.threshold)?;
            print_shares(&shares, *split);
            eprintln!("the old shares no longer open this keyring");
            Ok(())
        }
        KeysAction::Reseal {
            to,
            split,
            kdf_memory_kib,
            kdf_passes,
            new_passphrase_file,
        } => {
            let old = global.credential()?;
            *audit_key = keyring::open_with(&global.keyring, &old.unlock())
                .and_then(|k| k.audit_key())
                .ok();
            let hsm = global.hsm_settings();
            let pass;
            let new = match to {
                SealArg::Passphrase => {
                    pass = read_passphrase(
                        new_passphrase_file.as_ref(),
                        "VAULTGATE_NEW_PASSPHRASE",
                        "new passphrase: ",
                    )?;
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
            let shares = keyring::reseal(&global.keyring, &old.unlock(), &new)?;
            print_shares(&shares, *split);
            eprintln!(
                "the master key is now sealed with `{}`",
                crate::vault::keys::seal::SealKind::from(*to).as_str()
            );
            Ok(())
        }
        KeysAction::SealInfo => {
            let seal = KeyringFile::load(&global.keyring)?.seal()?;
            println!("seal: {}", seal.kind().as_str());
            match &seal {
                SealFile::Passphrase(_) => {}
                SealFile::Shamir(s) => {
                    let (id, generation) = s.split_id();
                    println!("keyring id: {id}");
                    println!("generation: {generation}");
                    println!("threshold: {} of {}", s.threshold(), s.shares());
                }
                SealFile::Pkcs11(p) => {
                    let info = p.key_info(&global.hsm_settings())?;
                    println!("key label: {}", info.label);
                    println!("key length: {} bytes", info.value_len);
                    println!("sensitive: {}", info.sensitive);
                    println!("extractable: {}", info.extractable);
                    println!("never extractable: {}", info.never_extractable);
                }
            }
            Ok(())
        }
    }
}

/// `POST <url>/v1/sys/rewrap` with the API key in $VAULTGATE_API_KEY: the server's
/// answer on success.
async fn rewrap_through(url: &str) -> Result<String> {
    let key = std::env::var("VAULTGATE_API_KEY").map_err(|_| {
        Error::Config(
            "--api needs the API key of a client with seal = true in $VAULTGATE_API_KEY".into(),
        )
    })?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = http::Request::post(format!("{}/v1/sys/rewrap", url.trim_end_matches('/')))
        .header(http::header::AUTHORIZATION, format!("Bearer {key}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .map_err(|_| Error::Config("--api is not a valid URL".into()))?;
    let resp = client
        .request(req)
        .await
        .map_err(|_| Error::Config("cannot reach the server named by --api".into()))?;
    let status = resp.status();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .map_err(|_| Error::Config("the server's answer was cut".into()))?
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if !status.is_success() {
        return Err(Error::Keyring(format!(
            "the server refused the rewrap ({status}): {text}"
        )));
    }
    Ok(text)
}

/// argon2id parameters: the defaults, with the options given.
pub(super) fn kdf_params(memory_kib: Option<u32>, passes: Option<u32>) -> KdfParams {
    let mut params = KdfParams::default();
    if let Some(m) = memory_kib {
        params.m_cost_kib = m;
    }
    if let Some(t) = passes {
        params.t_cost = t;
    }
    params
}

/// Print new shares once, on stdout, one per line, for their holders.
pub(super) fn print_shares(shares: &[ShareText], split: SplitArgs) {
    if shares.is_empty() {
        return;
    }
    eprintln!(
        "{} shares follow, any {} of which unseal the vault. They are shown once and \
         stored nowhere: give each to a different holder now.",
        shares.len(),
        split.threshold
    );
    for share in shares {
        println!("{}", share.expose());
    }
}
