//! Fuzz targets, one function per target, each taking the fuzzer's bytes.
//!
//! The `fuzz/` workspace calls these from one-line `fuzz_target!`s; they live here so
//! they can reach crate-internal codec pieces and so `cargo test` keeps them
//! compiling. Nothing here panics except the `assert!`s that report a finding.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use crate::codec::{self, FindingKind, RequestParts};
use crate::config::Config;
use crate::rules::path::{
    FormKeyReadings, KeyMatch, LastKeyStarts, TrailingKeys, may_read_differently,
};
use crate::rules::{
    BodyKind, Condition, FieldPath, FieldRule, LeakPolicy, Location, PathElem, RouteRules, profiles,
};
use crate::sensitive::{DataClass, Sensitive, luhn};
use crate::vault::keys::keyring::KeyringFile;
use crate::vault::record::Record;
use crate::vault::token::{self, Template};
use crate::vault::{Keys, TokenFormat, Vault, VaultSettings};

const MAX: usize = 1 << 20;

fn rule(path: &str, class: DataClass, location: Location) -> Option<FieldRule> {
    Some(FieldRule {
        path: FieldPath::parse(path).ok()?,
        class,
        format: None,
        deterministic: None,
        when: None,
        scope: None,
        location,
    })
}

fn compile(body: BodyKind, fields: Vec<FieldRule>) -> Option<RouteRules> {
    Some(RouteRules {
        body,
        fields,
        leak_guard: LeakPolicy::Tokenize,
        ..RouteRules::default()
    })
}

/// Rules at a few paths of every shape: a conditional one, a scoped one, an array
/// wildcard, a deep wildcard, a nested key.
fn body_rules(body: BodyKind, location: Location) -> Option<RouteRules> {
    let mut card = rule("cardNumber", DataClass::Pan, location)?;
    card.when = Some(Condition {
        field: FieldPath::keys("paymentType"),
        equals: Some("card".into()),
        any_of: vec!["credit_card".into()],
    });
    let mut code = rule("cardCode", DataClass::Cvv, location)?;
    code.scope = Some(FieldPath::keys("cardNumber"));
    compile(
        body,
        vec![
            card,
            code,
            rule("payment_method.card_number", DataClass::Pan, location)?,
            rule("items[*].pan", DataClass::Pan, location)?,
            rule("**.cvc", DataClass::Cvv, location)?,
            rule("details.accountNumber", DataClass::BankAccount, location)?,
        ],
    )
}

/// Whether a body may hold a form pair with a `;` in it (see the rule-token checks):
/// a `;` on a line that is not a part's `Content-*` header, as sent or in the body
/// read as base64.
fn rewrote_semicolon(body: &[u8]) -> bool {
    let in_content = |text: &[u8]| {
        text.split(|b| *b == b'\n').any(|line| {
            let header = line
                .get(..8)
                .is_some_and(|h| h.eq_ignore_ascii_case(b"content-"));
            !header && line.contains(&b';')
        })
    };
    in_content(body) || crate::codec::base64::decode(body, MAX).is_ok_and(|(d, _)| in_content(&d))
}

/// A token with no digits (so it can neither be nor make a card number).
fn fake_token(i: usize) -> String {
    let mut s = String::from("tok");
    let mut n = i;
    loop {
        s.push(char::from(b'A' + (n % 26) as u8));
        n /= 26;
        if n == 0 {
            return s;
        }
    }
}

/// Tokens for every finding, in the shapes the request pipeline gives them, or `None`
/// when the pipeline would refuse the request:
/// - a rule's value gets a token with no digits, so it can neither be nor make a
///   card number and the checks can find it again in place;
/// - a card the guard found gets a card-shaped token of the default format, as the
///   vault writes one: digits of the card's length, so the run it sat in keeps its
///   shape (a letter token would end the run, and what is left of it could read as a
///   new card). One the vault could not tokenize is refused;
/// - a hidden hit (digits no token can replace in place) is never rewritten: the
///   route refuses the request (`None`: our tokens, which it would let through, are
///   not in these inputs) or, with `leak_guard = "allow"`, keeps it.
struct OracleTokens {
    tokens: Vec<Option<String>>,
    /// The card-shaped tokens written for the guard's findings: a read of the
    /// rewritten request may find them again, as the proxy's own check does (it asks
    /// the store and keeps them).
    guard: BTreeSet<String>,
    /// The digits of the hidden hits, which stay as they are.
    hidden: BTreeSet<String>,
}

fn oracle_tokens(x: &codec::Extraction, policy: LeakPolicy, variant: u64) -> Option<OracleTokens> {
    let mut guard = BTreeSet::new();
    let mut hidden = BTreeSet::new();
    let mut tokens = Vec::with_capacity(x.findings().len());
    for (i, f) in x.findings().iter().enumerate() {
        let t = match f.kind {
            FindingKind::Hidden if policy != LeakPolicy::Allow => return None,
            FindingKind::Hidden => {
                hidden.insert(compact(f.value.expose()));
                None
            }
            FindingKind::Rule { .. } => Some(fake_token(i)),
            FindingKind::Leak => {
                let t = guard_token(f.value.expose(), i, variant)?;
                guard.insert(t.clone());
                Some(t)
            }
        };
        tokens.push(t);
    }
    Some(OracleTokens {
        tokens,
        guard,
        hidden,
    })
}

/// A hit's digits, its separators dropped.
fn compact(hit: &str) -> String {
    hit.chars().filter(char::is_ascii_digit).collect()
}

/// A card-shaped token for the guard's `i`-th hit (its digits), one of several
/// (`variant`), or `None` when the vault would refuse the value.
fn guard_token(hit: &str, i: usize, variant: u64) -> Option<String> {
    let value = Sensitive::parse(DataClass::Pan, &compact(hit)).ok()?;
    let template = Template::new(
        DataClass::Pan,
        TokenFormat::default_for(DataClass::Pan),
        value.expose(),
    )
    .ok()?;
    let space = template.space()?;
    let n = u64::try_from(i)
        .ok()?
        .wrapping_mul(7919)
        .wrapping_add(variant.wrapping_mul(104_729))
        .wrapping_add(1)
        % space.max(1);
    template.nth(n)
}

/// How many sets of guard tokens a rewrite tries before what its read finds is the
/// request's doing.
const GUARD_TOKEN_TRIES: u64 = 8;

/// Extract (with `extract`), rewrite with the oracle's tokens and read the rewrite
/// again (with `read`). A guard's token is random digits where its card was, so it may
/// make a new card-shaped number with the digits beside it (`<token> 123`). A read
/// that finds one is fine ([`only_tokens_left`]); one that refuses it, or finds what
/// holds no token, may still be the token's doing rather than the request's. Then
/// other tokens are tried, up to [`GUARD_TOKEN_TRIES`]; the last try is returned
/// either way. `None` when the request does not extract or the pipeline would refuse
/// it.
fn rewrite_with_oracle(
    policy: LeakPolicy,
    extract: impl Fn() -> Option<codec::Extraction>,
    read: impl Fn(&codec::Rewritten) -> Option<codec::Extraction>,
) -> Option<(OracleTokens, crate::error::Result<codec::Rewritten>)> {
    let mut variant = 0;
    loop {
        let x = extract()?;
        let oracle = oracle_tokens(&x, policy, variant)?;
        let out = x.apply(&oracle.tokens);
        variant += 1;
        let done = match &out {
            Ok(out) => read(out).is_some_and(|again| only_tokens_left(&again, &oracle)),
            Err(_) => true,
        };
        if done || oracle.guard.is_empty() || variant == GUARD_TOKEN_TRIES {
            return Some((oracle, out));
        }
    }
}

/// Whether every guard finding of a read of the rewritten request is one of the
/// tokens written for the guard (the proxy's own check asks the store and keeps
/// those) or made with one, or a hidden hit that was there before (never
/// rewritten). A token written for a card is one group of digits, so a number read
/// with digits beside it holds the whole token (`<token> 442`): the token's random
/// digits made it, with no card of the request's.
fn only_tokens_left(again: &codec::Extraction, oracle: &OracleTokens) -> bool {
    let with_token = |digits: &str| oracle.guard.iter().any(|t| digits.contains(t.as_str()));
    again.findings().iter().all(|f| match f.kind {
        FindingKind::Rule { .. } => true,
        FindingKind::Leak => with_token(&compact(f.value.expose())),
        FindingKind::Hidden => {
            let digits = compact(f.value.expose());
            with_token(&digits) || oracle.hidden.contains(&digits)
        }
    })
}

/// Extract, apply nothing (must be unchanged), apply tokens (must re-extract with
/// the tokens in place and no leak left).
fn codec_roundtrip(rules: &RouteRules, content_type: &str, body: &[u8], query: Option<&str>) {
    let req = |body, query| RequestParts {
        content_type: Some(content_type),
        content_encoding: None,
        query,
        body,
        max_body: MAX,
    };
    let Ok(x) = codec::extract(rules, req(body, query)) else {
        return;
    };
    let n = x.findings().len();
    let same = x.apply(&vec![None; n]);
    assert!(
        same.as_ref()
            .is_ok_and(|r| r.body.is_none() && r.query.is_none()),
        "apply with no replacements must leave the request unchanged"
    );
    let x = codec::extract(rules, req(body, query));
    assert!(x.is_ok(), "extract is deterministic");
    let rewritten = rewrite_with_oracle(
        rules.leak_guard,
        || codec::extract(rules, req(body, query)).ok(),
        |out| {
            let again = RequestParts {
                content_type: Some(content_type),
                content_encoding: None,
                query: out.query.as_deref().or(query),
                body: out.body.as_deref().unwrap_or(body),
                max_body: MAX,
            };
            codec::extract(rules, again).ok()
        },
    );
    let Some((oracle, out)) = rewritten else {
        return;
    };
    let rule_tokens: Vec<String> = x
        .iter()
        .flat_map(|x| x.findings())
        .zip(&oracle.tokens)
        .filter(|(f, _)| matches!(f.kind, FindingKind::Rule { .. }))
        .filter_map(|(_, t)| t.clone())
        .collect();
    assert!(out.is_ok(), "apply with tokens must succeed");
    let Ok(out) = out else { return };
    let body2 = out.body.as_deref().unwrap_or(body);
    let query2 = out.query.as_deref().or(query);
    let again = codec::extract(rules, req(body2, query2));
    assert!(again.is_ok(), "the rewritten request must extract again");
    let Ok(again) = again else { return };
    assert!(
        only_tokens_left(&again, &oracle),
        "a leak finding survived the rewrite"
    );
    let found: BTreeSet<&str> = again
        .findings()
        .iter()
        .filter(|f| matches!(f.kind, FindingKind::Rule { .. }))
        .map(|f| f.value.expose())
        .collect();
    // A form pair holding `;` is also read as its `;` pieces, for the rules. A rewrite
    // re-encodes a replaced key or value, a `;` in it as `%3B`, so that reading may
    // see fewer pairs afterwards: never a raw value (each one it matched was
    // replaced), but its tokens may no longer be at a rule's path. Then only the leak
    // check above holds (found by the multipart target).
    if rewrote_semicolon(body) {
        return;
    }
    for t in &rule_tokens {
        assert!(found.contains(t.as_str()), "a rule token is not in place");
    }
}

/// JSON bodies.
pub fn json(data: &[u8]) {
    if let Some(rules) = body_rules(BodyKind::Json, Location::Body) {
        codec_roundtrip(&rules, "application/json", data, None);
    }
}

/// Form bodies.
pub fn form(data: &[u8]) {
    if let Some(rules) = body_rules(BodyKind::Form, Location::Body) {
        codec_roundtrip(&rules, "application/x-www-form-urlencoded", data, None);
    }
}

/// Query strings (no body).
pub fn query(data: &[u8]) {
    let q = String::from_utf8_lossy(data);
    if let Some(rules) = body_rules(BodyKind::Auto, Location::Query) {
        codec_roundtrip(&rules, "application/json", b"", Some(&q));
    }
}

/// Base64 "sensitive params" bodies (Plano).
pub fn base64(data: &[u8]) {
    if let Some(rules) = body_rules(BodyKind::Base64, Location::Body) {
        codec_roundtrip(&rules, "text/plain", data, None);
    }
}

/// The field-path parser, form-key splitting and matching.
pub fn field_path(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    // First line: a rule path; second line: a concrete form key to match it against.
    let (path, key) = text.split_once('\n').unwrap_or((&text, ""));
    let mut elems = Vec::new();
    FieldPath::split_form_key(key, &mut elems);
    let concrete: Vec<PathElem<'_>> = elems.iter().filter_map(|e| e.as_path_elem(key)).collect();
    // A key none of whose bytes parsers read differently has no other reading.
    let mut readings = FormKeyReadings::default();
    readings.read(key, &elems);
    assert!(
        may_read_differently(key) || readings.others(key).next().is_none(),
        "a plain key must read one way"
    );
    // A comparison against a rule key's fold agrees with the plain one.
    let folded = KeyMatch::Loose.fold(path);
    for keys in [KeyMatch::Loose, KeyMatch::Insensitive, KeyMatch::Exact] {
        assert_eq!(
            keys.same_as_rule(path, &folded, key),
            keys.same(path, key),
            "a folded comparison must agree"
        );
    }
    if let Ok(p) = FieldPath::parse(path) {
        let _ = p.matches(&concrete);
        let _ = p.last_key();
        // The other readings only add matches: what the strict reading names, the
        // form key names.
        let keys_only: Vec<PathElem<'_>> = concrete
            .iter()
            .filter(|e| matches!(e, PathElem::Key(_)))
            .copied()
            .collect();
        for keys in [KeyMatch::Loose, KeyMatch::Insensitive, KeyMatch::Exact] {
            let matched = p.matches_shape(keys, &concrete, &keys_only);
            assert!(
                !matched || p.matches_form_key(keys, key),
                "a strict match must be a form-key match"
            );
            // The trailing-key gate never turns a match away.
            let trail = TrailingKeys::of(&concrete);
            assert!(
                !matched || p.may_end_in(&trail),
                "a match must pass the trailing-key gate"
            );
            assert!(
                !matched || LastKeyStarts::of(std::iter::once(&p)).may_name(&trail),
                "a match must pass the first-byte gate"
            );
        }
        // A parsed path re-parses to the same segments.
        let again = FieldPath::parse(p.as_str());
        assert!(
            again.is_ok_and(|q| q.segments() == p.segments()),
            "a parsed path must re-parse the same"
        );
    }
}

/// The TOML config parser.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::from_toml_str(text);
    }
}

/// The keyring file parser (parse only: unsealing runs argon2).
pub fn keyring(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(file) = KeyringFile::parse(text)
    {
        let _ = file.kdf_params();
        let _ = file.active_version();
    }
}

/// The stored-record parser: whatever parses re-encodes, in its own format, to
/// exactly the bytes it came from, with the associated data it was sealed with. And
/// packed digits: whatever unpacks packs back to exactly the bytes it came from.
pub fn record(data: &[u8]) {
    if let Ok(digits) = crate::vault::record::digits::unpack(data) {
        let again = crate::vault::record::digits::pack(&digits);
        assert!(
            again.as_deref().map(Vec::as_slice) == Some(data),
            "packed digits do not re-pack to their bytes"
        );
    }
    if let Ok(r) = Record::parse(data) {
        let again = r.header.encode_record(r.format, r.nonce, r.ciphertext);
        assert!(again == data, "a record does not re-encode to its bytes");
        assert!(
            r.aad("tok_fuzz") == r.header.aad(r.format, "tok_fuzz"),
            "a record's associated data differs from its header's"
        );
    }
}

/// Token templates for an arbitrary class, format and value.
pub fn token(data: &[u8]) {
    let (Some(&c), Some(&f)) = (data.first(), data.get(1)) else {
        return;
    };
    let class = DataClass::ALL
        .get(usize::from(c) % DataClass::ALL.len())
        .copied()
        .unwrap_or(DataClass::Pan);
    let formats = [
        TokenFormat::PanSixFour,
        TokenFormat::PanNonLuhn,
        TokenFormat::Opaque,
        TokenFormat::Digits,
    ];
    let format = formats
        .get(usize::from(f) % formats.len())
        .copied()
        .unwrap_or(TokenFormat::Opaque);
    let raw = String::from_utf8_lossy(data.get(2..).unwrap_or_default());
    // Any value: no panic, never the value itself.
    if let Ok(t) = Template::new(class, format, &raw) {
        let _ = t.space();
        if let Some(tok) = t.draw() {
            assert!(tok != raw, "a token equals its value");
        }
        if let Some(tok) = t.nth(0) {
            assert!(tok != raw, "a token equals its value");
        }
    }
    // A valid value: the format's invariants.
    let Ok(value) = Sensitive::parse(class, &raw) else {
        return;
    };
    let v = value.expose();
    let Ok(t) = Template::new(class, format, v) else {
        return;
    };
    let Some(tok) = t.draw() else { return };
    assert!(tok != v, "a token equals its value");
    // Opaque by request, or for an account number that is neither digits nor an IBAN.
    let opaque = format == TokenFormat::Opaque
        || (class == DataClass::BankAccount
            && !token::is_iban(v)
            && !v.bytes().all(|b| b.is_ascii_digit()));
    if opaque {
        assert!(
            tok.starts_with(token::OPAQUE_PREFIX) || tok.starts_with(token::OPAQUE_CVV_PREFIX),
            "an opaque token has its prefix"
        );
        return;
    }
    assert!(tok.len() == v.len(), "a token keeps the value's length");
    // The 0th token has every random digit zero: only kept characters (and the check
    // digits) differ from zero.
    let zero = t.nth(0);
    let n = v.len();
    match class {
        DataClass::Pan => {
            let ok = luhn::is_valid(&tok);
            assert!(
                ok == (format == TokenFormat::PanSixFour),
                "pan token Luhn validity"
            );
            if let Some(z) = zero {
                // Positions 6..n-4, but for the check digit (the last random one),
                // are random.
                let mid = z.get(6..n.saturating_sub(5)).unwrap_or_default();
                assert!(mid.bytes().all(|b| b == b'0'), "pan token keeps too much");
            }
        }
        DataClass::BankAccount if token::is_iban(v) => {
            assert!(token::is_iban(&tok), "iban token is an IBAN");
            assert!(tok.get(..2) == v.get(..2), "iban token keeps the country");
        }
        DataClass::BankAccount => {
            if let Some(z) = zero {
                let head = z.get(..n.saturating_sub(4)).unwrap_or_default();
                assert!(
                    head.bytes().all(|b| b == b'0'),
                    "account token keeps too much"
                );
            }
        }
        DataClass::Cvv => {
            assert!(tok.bytes().all(|b| b.is_ascii_digit()), "cvv token digits");
        }
        DataClass::Secret => {}
    }
}

// === the whole pipeline ===

struct PipelineState {
    rt: tokio::runtime::Runtime,
    vault: Vault,
    routes: Vec<(RouteRules, &'static str, Decode)>,
    _dir: tempfile::TempDir,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Decode {
    Json,
    Form,
    Base64,
}

const STORE_PREFIX: &str = "vaultgate-fuzz-";

fn remove_stale_stores(base: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(STORE_PREFIX))
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
        if !alive && std::path::Path::new("/proc/self").exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn pipeline_state() -> Option<PipelineState> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    // tmpfs when there is one: every sanitize flushes. libFuzzer exits without
    // dropping statics, so each run leaves its store behind: remove those of runs
    // that are gone (named by process id) before making ours.
    let shm = std::path::Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    remove_stale_stores(&base);
    let dir = tempfile::Builder::new()
        .prefix(&format!("{STORE_PREFIX}{}-", std::process::id()))
        .tempdir_in(&base)
        .ok()?;
    let settings = VaultSettings {
        data: dir.path().join("data"),
        cache_capacity_mb: 8,
        ..VaultSettings::default()
    };
    let vault = Vault::open(&settings, Keys::ephemeral().ok()?).ok()?;
    let profile = profiles::get;
    let mut q2_form = profiles::get("q2open")?;
    q2_form.body = BodyKind::Auto;
    let routes = vec![
        (profile("q2open")?, "application/json", Decode::Json),
        (profile("hostway")?, "application/json", Decode::Json),
        (profile("plano")?, "text/plain", Decode::Base64),
        (q2_form, "application/x-www-form-urlencoded", Decode::Form),
    ];
    Some(PipelineState {
        rt,
        vault,
        routes,
        _dir: dir,
    })
}

/// The request pipeline on a real vault: no card number in the input may reach the
/// upstream unless it is one of the vault's own tokens.
pub fn pipeline(data: &[u8]) {
    static STATE: OnceLock<Option<PipelineState>> = OnceLock::new();
    let state = STATE.get_or_init(pipeline_state);
    assert!(state.is_some(), "the fuzz vault could not be set up");
    let Some(state) = state else { return };
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let Some((rules, content_type, decode)) =
        state.routes.get(usize::from(sel) % state.routes.len())
    else {
        return;
    };
    let Ok(req) = http::Request::post("/v1/payment")
        .header(http::header::CONTENT_TYPE, *content_type)
        .body(())
    else {
        return;
    };
    let (parts, ()) = req.into_parts();
    let vault = &state.vault;
    state.rt.block_on(async {
        let limits = crate::inbound::sanitize::Limits::with_max_body(MAX);
        let Ok(out) = crate::inbound::sanitize::sanitize(vault, rules, &parts, body, &limits).await
        else {
            return; // fail closed
        };
        let sent = out.body.as_deref().unwrap_or(body);
        let before = cards(&decoded(*decode, body));
        for card in cards(&decoded(*decode, sent)) {
            if before.contains(&card) {
                let issued = vault.is_issued(&card).await;
                assert!(
                    matches!(issued, Ok(true)),
                    "a card number from the request reached the upstream"
                );
            }
        }
    });
}

/// The request body's text as the upstream would read it: JSON strings unescaped,
/// form components percent-decoded, base64 decoded. Values are kept apart by NULs.
fn decoded(how: Decode, body: &[u8]) -> Vec<u8> {
    match how {
        Decode::Json => decode_json(body),
        Decode::Form => decode_form(body),
        Decode::Base64 => match codec::base64::decode(body, MAX) {
            Ok((d, _)) => {
                let json = d
                    .iter()
                    .find(|b| !b.is_ascii_whitespace())
                    .is_some_and(|b| *b == b'{' || *b == b'[');
                if json {
                    decode_json(&d)
                } else {
                    decode_form(&d)
                }
            }
            Err(_) => body.to_vec(),
        },
    }
}

fn decode_json(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        if b != b'"' {
            out.push(b);
            i += 1;
            continue;
        }
        // A string literal: up to the next unescaped quote.
        let mut j = i + 1;
        while let Some(&c) = text.get(j) {
            match c {
                b'\\' => j += 2,
                b'"' => break,
                _ => j += 1,
            }
        }
        let end = (j + 1).min(text.len());
        let lit = text.get(i..end).unwrap_or_default();
        out.push(0);
        match serde_json::from_slice::<String>(lit) {
            Ok(s) => out.extend_from_slice(s.as_bytes()),
            Err(_) => out.extend_from_slice(lit),
        }
        out.push(0);
        i = end;
    }
    out
}

fn decode_form(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for pair in text.split(|b| *b == b'&') {
        for part in pair.splitn(2, |b| *b == b'=') {
            out.push(0);
            let mut k = 0;
            while let Some(&b) = part.get(k) {
                let hex = |at: usize| {
                    part.get(at)
                        .and_then(|h| char::from(*h).to_digit(16))
                        .and_then(|d| u8::try_from(d).ok())
                };
                match (b, hex(k + 1), hex(k + 2)) {
                    (b'%', Some(h), Some(l)) => {
                        out.push(h * 16 + l);
                        k += 3;
                    }
                    (b'+', _, _) => {
                        out.push(b' ');
                        k += 1;
                    }
                    _ => {
                        out.push(b);
                        k += 1;
                    }
                }
            }
        }
    }
    out
}

/// Every card-shaped number (`guard::is_card_shaped`) made of whole digit groups (groups
/// joined by single spaces or dashes), as plain digits.
fn cards(text: &[u8]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut groups: Vec<&[u8]> = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if !text.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
            continue;
        }
        groups.clear();
        let mut start = i;
        loop {
            let mut end = start;
            while text.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
            groups.push(text.get(start..end).unwrap_or_default());
            let sep = text.get(end).is_some_and(|b| *b == b' ' || *b == b'-');
            if sep && text.get(end + 1).is_some_and(u8::is_ascii_digit) {
                start = end + 1;
            } else {
                i = end;
                break;
            }
        }
        for first in 0..groups.len() {
            let mut digits = String::new();
            for g in groups.iter().skip(first) {
                digits.extend(g.iter().map(|b| char::from(*b)));
                if digits.len() > 19 {
                    break;
                }
                // A card number as the guard defines one: Luhn-valid, with the
                // prefix and length of a network's cards (a 14-digit "4242…" is not).
                if crate::rules::guard::is_card_shaped(digits.as_bytes()) {
                    out.insert(digits.clone());
                }
            }
        }
    }
    out
}

/// The leak guard's normalizing scanner, on any bytes: every hit lies within the
/// text, in order and without overlap, on character boundaries, with card-shaped
/// digits, the same hits as reading the whole buffer as one run; once the in-place
/// hits are replaced, a rescan finds none. The field scanner (`scan_leaf`) runs on
/// the text as a string and as a number, at every decode depth up to the default,
/// without panicking.
pub fn guard(data: &[u8]) {
    use crate::rules::guard;
    let mut end = 0;
    let mut ranges = Vec::new();
    let mut found = Vec::new();
    guard::scan_hits(data, |hit| {
        // Replaceable hits come in order without overlap; a refused one of another
        // reading may overlap.
        assert!(hit.range.start < hit.range.end);
        if hit.ascii {
            assert!(hit.range.start >= end, "replaceable hits overlap");
            end = hit.range.end;
        }
        assert!(hit.range.end <= data.len());
        assert!(
            guard::is_card_shaped(hit.digits()),
            "a hit that is not card-shaped"
        );
        if hit.ascii {
            let bytes = data.get(hit.range.clone()).unwrap_or_default();
            let digits = bytes.iter().filter(|b| b.is_ascii_digit()).count();
            assert_eq!(digits, hit.digits().len(), "an ASCII hit with other digits");
        }
        ranges.push(hit.range.clone());
        found.push((hit.range.clone(), hit.ascii, hit.digits().to_vec()));
    });
    // The candidate runs and the lone-group path lose nothing: reading the whole
    // buffer as one run finds the same hits.
    let mut slowly = Vec::new();
    guard::scan_hits_slowly(data, |hit| {
        slowly.push((hit.range.clone(), hit.ascii, hit.digits().to_vec()));
    });
    assert_eq!(found, slowly, "the candidate runs lost or changed a hit");
    // The pass-through guard's one-classification reading finds the same hits, and
    // the same literals as reading them on their own.
    let mut both = Vec::new();
    let mut literals = Vec::new();
    guard::scan_hits_and_literals(
        data,
        |hit| both.push((hit.range.clone(), hit.ascii, hit.digits().to_vec())),
        |range, digits| literals.push((range, digits.to_vec())),
    );
    assert_eq!(found, both, "scan_hits_and_literals changed a hit");
    let mut alone = Vec::new();
    guard::literal_cards(data, |range, digits| alone.push((range, digits.to_vec())));
    assert_eq!(literals, alone, "scan_hits_and_literals changed a literal");
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for r in &ranges {
        assert!(text.is_char_boundary(r.start) && text.is_char_boundary(r.end));
    }
    let mut in_place = Vec::new();
    let mut hidden = Vec::new();
    for depth in 0..=crate::rules::deep::DEFAULT_DECODE_DEPTH {
        for leaf in [guard::Leaf::Text, guard::Leaf::Number] {
            in_place.clear();
            hidden.clear();
            guard::with_decode_depth(depth, || {
                guard::scan_leaf(text, leaf, &mut in_place, &mut hidden);
            });
            for h in &hidden {
                assert!(guard::is_card_shaped(h.expose().as_bytes()));
            }
        }
    }
    // Replace the in-place hits of the text leaf (as the proxy does) and rescan.
    in_place.clear();
    guard::scan_leaf(text, guard::Leaf::Text, &mut in_place, &mut hidden);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for r in &in_place {
        out.push_str(text.get(at..r.start).unwrap_or_default());
        out.push_str("TOKEN");
        at = r.end;
    }
    out.push_str(text.get(at..).unwrap_or_default());
    let mut again = Vec::new();
    guard::scan_leaf(&out, guard::Leaf::Text, &mut again, &mut hidden);
    assert!(again.is_empty(), "a card survived its replacement");
}

/// The streaming leak guard's scanner: chunk boundaries taken from the first byte.
/// Every byte comes out once and in order, at most `MAX_TAIL` bytes are held back,
/// and a card the whole-body scan finds, as written or with its escapes decoded, is
/// found while streaming (when no run of digits, separators and escapes is longer
/// than the seam the scanner looks across).
pub fn stream_guard(data: &[u8]) {
    use crate::inbound::stream_guard::{MAX_TAIL, TailScanner, tail_start};
    let Some((&step, body)) = data.split_first() else {
        return;
    };
    let step = usize::from(step % 64) + 1;
    let mut scanner = TailScanner::default();
    let mut out = Vec::with_capacity(body.len());
    let mut found = Vec::new();
    for chunk in body.chunks(step) {
        scanner.hits(chunk, &mut found);
        let (a, b) = scanner.pass(bytes::Bytes::copy_from_slice(chunk));
        for part in a.iter().chain(b.iter()) {
            out.extend_from_slice(part);
        }
        assert!(scanner.held() <= MAX_TAIL, "held back too much");
    }
    out.extend_from_slice(&scanner.finish().unwrap_or_default());
    assert_eq!(out, body, "the stream changed");
    let mut whole = crate::inbound::exposure::hits(body);
    whole.extend(crate::inbound::exposure::escaped_hits(body));
    crate::rules::guard::literal_cards(body, |_, d| {
        whole.push(crate::inbound::exposure::HitDigits::denoted(d));
    });
    let longest_run = (0..=body.len())
        .map(|end| end - tail_start(body.get(..end).unwrap_or_default()).min(end))
        .max()
        .unwrap_or(0);
    if !whole.is_empty() && longest_run < MAX_TAIL / 2 {
        assert!(!found.is_empty(), "a card the whole scan finds was missed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_finds_grouped_numbers_only() {
        let c = cards(b"x 4242 4242 4242 4242 y 12345678901234567890 4111-1111-1111-1111");
        assert!(c.contains("4242424242424242"));
        assert!(c.contains("4111111111111111"));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn decoders() {
        assert_eq!(
            decode_json(br#"{"a":"\u0034242"}"#),
            b"{\0a\0:\x004242\0}".to_vec()
        );
        assert_eq!(decode_form(b"a+b=%34%32"), b"\x00a b\x0042".to_vec());
    }

    #[test]
    fn targets_run_on_seeds() {
        json(br#"{"paymentType":"card","cardNumber":"4242424242424242","cardCode":"123","note":"4111 1111 1111 1111"}"#);
        form(b"payment_method[card_number]=4242424242424242&x=4111-1111-1111-1111");
        query(b"payment_method.card_number=4242424242424242&cvc=123");
        base64(b"eyJwYXltZW50X21ldGhvZCI6eyJjYXJkX251bWJlciI6IjQyNDI0MjQyNDI0MjQyNDIifX0=");
        field_path(b"items[*].pan\nitems[0][pan]");
        // Keys other parsers read as the rule's, and a pair after a `;`.
        form(b"[payment_method][card_number]=4242424242424242&x=1;payment.method[cvc]=1234");
        form(b"payment_method[card_number]=4242424242424242;payment_method[cvc]=1234");
        field_path(b"payment_method.cvc\n[payment_method][cvc");
        field_path(b"payment_method.cvc\npayment method[cvc]");
        token(b"\x00\x004242424242424242");
        // Found by the fuzzer (a checker bug): a non-IBAN alphanumeric account
        // number gets an opaque token even in the `digits` format.
        token(b"\x02\x03DE89370400442013000");
        let body =
            br#"{"paymentType":"card","cardNumber":"4242424242424242","note":"4111111111111111"}"#;
        pipeline(&[b"\x00".as_slice(), body].concat());
        pipeline(b"\x03paymentType=card&cardNumber=4242424242424242&x=4111+1111+1111+1111");
        // Found by the fuzzer: a form feed between digit groups ended the streaming
        // guard's held run (its separators had drifted from the guard's).
        stream_guard(b"\x05{\"note\":\"card 42 424242  4\x0c224242  4\x0c22");
        // Found by the fuzzer: a form value holding '=' and a card number.
        pipeline(b"\x03mentTypE=car=378282246310005&ser");
        // Found by the fuzzer (a checker bug): 14 Luhn-valid digits after a 4 are
        // no network's card, so the guard rightly leaves them.
        pipeline(b"\x03items[0][pan]=7555555555554444&note=4111+1111+1111+1111&x=%34%32%34%324242424242h2");
        // Found by the fuzzer (a checker bug): the checker's letter token for the
        // guard's 13-digit hit ended the run, and the rest read as a new card. The
        // vault's token is digits, so the run keeps its shape.
        json(br#"{"424244242 4242&#4242 442424424242422":""}"#);
    }
}

// === multipart ===

/// The boundary of every fuzzed multipart body.
const MULTIPART_CT: &str = "multipart/form-data; boundary=fuzzb";

/// Multipart bodies (boundary `fuzzb`), on a rules route reading any body type when
/// the first byte is even and on a leak-guard-only route when it is odd: extract,
/// apply tokens; the rewritten body must extract again, with no leak left and every
/// rule token in place.
pub fn multipart(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let rules = if sel % 2 == 0 {
        body_rules(BodyKind::Auto, Location::Body)
    } else {
        profiles::get("payment_method")
    };
    let Some(rules) = rules else { return };
    // The pass-through guard's streaming read of the header blocks decides as the
    // whole-body check does, however the body arrives.
    assert!(
        codec::watch_agrees(MULTIPART_CT, body, usize::from(sel / 2) + 1),
        "the streamed header check disagrees with the whole-body check"
    );
    let req = |body| RequestParts {
        content_type: Some(MULTIPART_CT),
        content_encoding: None,
        query: None,
        body,
        max_body: MAX,
    };
    let Ok(x) = codec::extract(&rules, req(body)) else {
        return;
    };
    let rewritten = rewrite_with_oracle(
        rules.leak_guard,
        || codec::extract(&rules, req(body)).ok(),
        |out| {
            let again = RequestParts {
                content_type: Some(MULTIPART_CT),
                content_encoding: None,
                query: None,
                body: out.body.as_deref().unwrap_or(body),
                max_body: MAX,
            };
            codec::extract(&rules, again).ok()
        },
    );
    let Some((oracle, out)) = rewritten else {
        return;
    };
    let rule_tokens: Vec<String> = x
        .findings()
        .iter()
        .zip(&oracle.tokens)
        .filter(|(f, _)| matches!(f.kind, FindingKind::Rule { .. }))
        .filter_map(|(_, t)| t.clone())
        .collect();
    // A rewrite whose parts would not read back as written is refused (fails closed).
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            assert_eq!(e.code(), "invalid_body", "apply with tokens failed: {e}");
            return;
        }
    };
    let body2 = out.body.as_deref().unwrap_or(body);
    let again = codec::extract(&rules, req(body2));
    if let Err(e) = &again {
        panic!("the rewritten body must extract again: {}", e.code());
    }
    let Ok(again) = again else { return };
    assert!(
        only_tokens_left(&again, &oracle),
        "a leak finding survived the rewrite"
    );
    let found: BTreeSet<&str> = again
        .findings()
        .iter()
        .filter(|f| matches!(f.kind, FindingKind::Rule { .. }))
        .map(|f| f.value.expose())
        .collect();
    // A form pair holding `;` is also read as its `;` pieces, for the rules. A rewrite
    // re-encodes a replaced key or value, a `;` in it as `%3B`, so that reading may
    // see fewer pairs afterwards: never a raw value (each one it matched was
    // replaced), but its tokens may no longer be at a rule's path. Then only the leak
    // check above holds (found by the multipart target).
    if rewrote_semicolon(body) {
        return;
    }
    for t in &rule_tokens {
        assert!(found.contains(t.as_str()), "a rule token is not in place");
    }
}

/// The outbound echo's finder (`codec::shown`), on a destination's answer: the places
/// it reports are non-empty, in bounds, in order and apart, and name one of the
/// values; the answer with every place replaced by a token is read again as the echo
/// swap reads it (`still_shows`), without a panic.
pub fn echo(data: &[u8]) {
    const VALUES: [&[u8]; 3] = [b"4242424242424242", b"218", b"DE89370400440532013000"];
    let places = codec::shown::shown(data, &VALUES);
    let mut at = 0;
    let mut out = Vec::with_capacity(data.len());
    for place in &places {
        assert!(
            place.range.start >= at && place.range.end <= data.len(),
            "places out of order or bounds: {:?} after {at} in {} bytes",
            place.range,
            data.len()
        );
        assert!(place.range.start < place.range.end, "an empty place");
        assert!(place.value < VALUES.len(), "a place names no value");
        out.extend_from_slice(data.get(at..place.range.start).unwrap_or_default());
        out.extend_from_slice(b"tok_echo");
        at = place.range.end;
    }
    out.extend_from_slice(data.get(at..).unwrap_or_default());
    let _ = codec::shown::still_shows(&out, &VALUES);
}

#[cfg(test)]
mod seed_tests {
    /// Run a target over its seed corpus (`fuzz/corpus/NAME`); how many seeds ran.
    fn run_seeds(name: &str, target: fn(&[u8])) -> usize {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(name);
        let mut n = 0;
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if let Ok(data) = std::fs::read(entry.path()) {
                target(&data);
                n += 1;
            }
        }
        n
    }

    /// The seed corpus runs clean, the packed-digit seeds among it.
    #[test]
    fn record_seeds() {
        let n = run_seeds("record", super::record);
        assert!(n >= 7, "{n} seeds");
        // A seed the digit check accepts, and one it refuses.
        super::record(&[0x42; 8]);
        super::record(&[0x4a]);
    }

    /// The seed corpus runs clean, and the finder finds what the seeds echo.
    #[test]
    fn echo_seeds() {
        let n = run_seeds("echo", super::echo);
        assert!(n >= 3, "{n} seeds");
        let json = br#"{"error":"card 4242424242424242 declined","cvc":"218"}"#;
        let values: [&[u8]; 2] = [b"4242424242424242", b"218"];
        assert_eq!(crate::codec::shown::shown(json, &values).len(), 2);
    }

    /// The seed corpus runs clean.
    #[test]
    fn multipart_seeds() {
        let n = run_seeds("multipart", super::multipart);
        assert!(n >= 4, "{n} seeds");
    }
}
