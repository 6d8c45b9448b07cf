//! `vaultgate audit verify`, and the audit entries of `tokenize` and `detokenize`.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::args::Global;
use super::context::{cli_actor, runtime};
use crate::audit::{Action, AuditEvent, AuditKey, AuditLog};
use crate::error::{Error, Result};
use crate::sensitive::DataClass;
use crate::vault::keys::keyring;
use crate::vault::token::check_token_len;

/// How many tokens `detokenize --batch` reveals per audit write (one fsync each).
const BATCH_CHUNK: usize = 1000;

/// `vaultgate audit verify PATH [--checkpoints FILE] [--no-key]`.
pub(super) fn verify(
    global: &Global,
    path: &Path,
    checkpoints: Option<&PathBuf>,
    no_key: bool,
) -> Result<()> {
    let key = if no_key {
        None
    } else {
        let keys = keyring::open(&global.keyring, &global.passphrase()?)?;
        Some(AuditKey::new(keys.audit_key()?))
    };
    let checkpoints = checkpoints
        .cloned()
        .unwrap_or_else(|| crate::audit::checkpoints_path(path));
    let report = crate::audit::verify_with(path, &checkpoints, key.as_ref())?;
    println!("{report}");
    if report.is_intact() {
        Ok(())
    } else {
        Err(Error::Integrity("the audit log failed verification"))
    }
}

/// The audit entry of a CLI tokenize; written before the token is printed.
pub(super) fn audit_tokenize(
    global: &Global,
    key: crate::vault::keys::crypto::SecretKey,
    class: DataClass,
    result: &Result<String>,
) -> Result<()> {
    let log = global.open_audit(key)?;
    let mut event = AuditEvent::new(cli_actor(), Action::Tokenize)
        .class(class)
        .outcome_of(result);
    if let Ok(token) = result {
        event = event.token(token.as_str());
    }
    log.record_blocking(std::slice::from_ref(&event))?;
    log.checkpoint()
}

/// `vaultgate detokenize TOKEN` or `--batch`: every reveal is audited (as
/// `cli:<OS user>`) and durable before its value is printed.
pub(super) fn detokenize(
    global: &Global,
    token: Option<&str>,
    batch: bool,
    scope: Option<&str>,
) -> Result<()> {
    let rt = runtime()?;
    let vault = rt.block_on(global.open_vault())?;
    let log = global.open_audit(vault.audit_key()?)?;
    let mut out = std::io::stdout().lock();
    let actor = cli_actor();
    let reveal = |token: &str| -> (AuditEvent, Result<String>) {
        let result = check_token_len(token).and_then(|()| {
            rt.block_on(vault.detokenize(token, scope))
                .map(|r| (r.class, r.value.expose().to_owned()))
        });
        let mut event = AuditEvent::new(actor.clone(), Action::Reveal)
            .token(token)
            .outcome_of(&result);
        if let Ok((class, _)) = &result {
            event = event.class(*class);
        }
        (event, result.map(|(_, v)| v))
    };
    let Some(token) = token.filter(|_| !batch) else {
        let mut lines = std::io::stdin().lines();
        loop {
            let mut chunk = Vec::new();
            for line in lines.by_ref().take(BATCH_CHUNK) {
                let line = line.map_err(|e| Error::io("read tokens from stdin", e))?;
                chunk.push(reveal(line.trim()));
            }
            if chunk.is_empty() {
                break;
            }
            write_chunk(&log, &mut out, chunk)?;
        }
        return log.checkpoint();
    };
    let (event, result) = reveal(token);
    log.record_blocking(std::slice::from_ref(&event))?;
    log.checkpoint()?;
    let value = zeroize::Zeroizing::new(result?);
    writeln!(out, "{}", value.as_str()).map_err(|e| Error::io("write to stdout", e))
}

/// Audit a chunk of batch reveals (one write, one fsync), then print them.
fn write_chunk(
    log: &AuditLog,
    out: &mut impl Write,
    chunk: Vec<(AuditEvent, Result<String>)>,
) -> Result<()> {
    let (events, results): (Vec<_>, Vec<_>) = chunk.into_iter().unzip();
    log.record_blocking(&events)?;
    for result in results {
        match result {
            Ok(value) => {
                let value = zeroize::Zeroizing::new(value);
                writeln!(out, "{}", value.as_str())
            }
            Err(e) => writeln!(out, "!{}", e.code()),
        }
        .map_err(|e| Error::io("write to stdout", e))?;
    }
    Ok(())
}
