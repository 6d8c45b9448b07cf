use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::*;
use crate::error::Error;
use crate::sensitive::DataClass;

/// A well-formed key hashed at the lowest argon2 cost, so that debug-build tests are
/// fast. Verification reads the cost from the PHC string.
fn cheap_key() -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let argon2 = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(Params::MIN_M_COST, 1, 1, None).unwrap(),
    );
    let hash = apikey::hash_key(&key, &argon2).unwrap();
    (key, hash)
}

fn client_with_key(name: &str, hash: &str) -> ClientConfig {
    ClientConfig {
        api_key_hash: vec![hash.to_owned()],
        reveal: vec![DataClass::Pan],
        ..ClientConfig::named(name)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    clients: Vec<ClientConfig>,
}

fn parse(toml_text: &str) -> Result<Vec<ClientConfig>, String> {
    toml::from_str::<Doc>(toml_text)
        .map(|d| d.clients)
        .map_err(|e| e.to_string())
}

// === config ===

#[test]
fn config_parses_the_documented_shape() {
    let (_, hash) = cheap_key();
    let text = format!(
        r#"
        [[clients]]
        name = "checkout"
        api_key_hash = "{hash}"
        cert_subject = "CN=checkout"
        reveal = ["pan", "cvv"]
        reveal_masked = ["bank_account"]
        tokenize = ["pan", "cvv", "bank_account", "secret"]
        delete = false
        rate_limit_per_minute = 6000

        [[clients]]
        name = "reports"
        cert_subject = "DNS=reports.internal"
        "#
    );
    let clients = parse(&text).unwrap();
    validate_clients(&clients).unwrap();
    assert_eq!(clients[0].rate_limit_per_minute, 6000);
    assert_eq!(
        clients[1].rate_limit_per_minute,
        DEFAULT_RATE_LIMIT_PER_MINUTE
    );
    assert!(!format!("{:?}", clients[0]).contains(&hash));

    let checkout = Client::from_config(&clients[0]);
    assert_eq!(checkout.may_reveal(DataClass::Pan), RevealMode::Full);
    assert_eq!(
        checkout.may_reveal(DataClass::BankAccount),
        RevealMode::Masked
    );
    assert_eq!(checkout.may_reveal(DataClass::Secret), RevealMode::Denied);
    assert!(checkout.may_tokenize(DataClass::Secret));
    assert!(!checkout.may_delete());
    let reports = Client::from_config(&clients[1]);
    assert_eq!(reports.may_reveal(DataClass::Pan), RevealMode::Denied);
    assert!(!reports.may_tokenize(DataClass::Pan));
}

#[test]
fn config_rejects_unknown_fields_and_classes() {
    let e = parse("[[clients]]\nname = \"a\"\ncert_subject = \"a\"\nrevael = [\"pan\"]\n");
    assert!(e.is_err());
    let e = parse("[[clients]]\nname = \"a\"\ncert_subject = \"a\"\nreveal = [\"ssn\"]\n");
    assert!(e.is_err());
}

#[test]
fn validation_catches_bad_sets() {
    let (_, hash) = cheap_key();
    let cert = |name: &str, subject: &str| ClientConfig {
        cert_subject: Some(subject.to_owned()),
        ..ClientConfig::named(name)
    };
    let bad = |clients: &[ClientConfig]| match validate_clients(clients) {
        Err(Error::Config(msg)) => msg,
        other => panic!("expected a config error, got {other:?}"),
    };

    assert!(bad(&[cert("a", "a"), cert("a", "b")]).contains("more than one"));
    assert!(bad(&[ClientConfig::named("a")]).contains("api_key_hash or cert_subject"));
    assert!(bad(&[cert("a b", "a")]).contains("name"));
    assert!(bad(&[cert("a", "CN=x"), cert("b", "x")]).contains("cert_subject"));
    assert!(bad(&[client_with_key("a", "not a hash")]).contains("argon2id"));
    // A well-formed PHC string of another algorithm is refused too.
    let argon2i = hash.replacen("$argon2id$", "$argon2i$", 1);
    assert!(bad(&[client_with_key("a", &argon2i)]).contains("argon2id"));
    assert!(bad(&[client_with_key("a", &hash), client_with_key("b", &hash)]).contains("shared"));
    let both = ClientConfig {
        reveal_masked: vec![DataClass::Pan],
        ..client_with_key("a", &hash)
    };
    assert!(bad(&[both]).contains("both"));
    let zero = ClientConfig {
        rate_limit_per_minute: 0,
        ..cert("a", "a")
    };
    assert!(bad(&[zero]).contains("rate_limit"));
    // Messages never carry the hash.
    assert!(!bad(&[client_with_key("a", "$argon2id$junk")]).contains("junk"));
}

// === API keys ===

#[tokio::test]
async fn generated_keys_have_the_documented_shape_and_verify() {
    let (key, hash) = generate_api_key().unwrap();
    assert!(key.starts_with("vg_live_"));
    assert_eq!(key.len(), "vg_live_".len() + 43);
    // Issue 12: new keys are stored as SHA-256 (was: an argon2id PHC string).
    assert!(hash.starts_with("sha256:") && hash.len() == "sha256:".len() + 64);

    let granted = ClientConfig {
        api_key_hash: vec![hash.clone()],
        reveal: vec![DataClass::Pan, DataClass::BankAccount],
        reveal_masked: vec![DataClass::Secret],
        tokenize: vec![DataClass::Pan],
        deterministic: vec![DataClass::Pan],
        delete: true,
        rate_limit_per_minute: 120,
        ..ClientConfig::named("checkout")
    };
    let snippet = client_toml_snippet(&granted);
    let clients = parse(&snippet).unwrap();
    assert_eq!(clients, vec![granted]);
    let auth = Authenticator::new(&clients).unwrap();
    let client = auth.authenticate_bearer(&key).await.unwrap();
    assert_eq!(client.name(), "checkout");
    assert!(client.may_tokenize_deterministic(DataClass::Pan));
    assert!(!client.may_tokenize_deterministic(DataClass::BankAccount));
}

#[tokio::test]
async fn the_cache_makes_repeat_authentications_cheap() {
    let (key, hash) = cheap_key();
    let auth = Authenticator::new(&[client_with_key("checkout", &hash)]).unwrap();
    let id = auth.cache_id(&key);
    // Before the first check the key is unknown: argon2 has to run.
    assert!(auth.lookup(&id).unwrap().is_none());
    assert_eq!(
        auth.authenticate_bearer(&key).await.unwrap().name(),
        "checkout"
    );
    // After it, the key's HMAC finds the client without argon2, and repeats use it.
    assert_eq!(auth.lookup(&id).unwrap().unwrap().name(), "checkout");
    let start = Instant::now();
    for _ in 0..10_000 {
        let c = auth.authenticate_bearer(&key).await.unwrap();
        assert_eq!(c.name(), "checkout");
    }
    // Timing is reported, not asserted: a loaded CI machine makes it noise.
    eprintln!("10,000 cached authentications: {:?}", start.elapsed());
    // Another key is not served from that entry.
    let (other, _) = cheap_key();
    assert!(auth.lookup(&auth.cache_id(&other)).unwrap().is_none());
}

#[tokio::test]
async fn wrong_and_malformed_keys_fail() {
    let (key, hash) = cheap_key();
    let (other, _) = cheap_key();
    let auth = Authenticator::new(&[client_with_key("checkout", &hash)]).unwrap();
    for bad in [
        other.as_str(),
        "",
        "vg_live_",
        "Bearer x",
        &key[..key.len() - 1],
        &format!("{key}A"),
        &key.replace("vg_live_", "vg_test_"),
    ] {
        let e = auth.authenticate_bearer(bad).await.unwrap_err();
        assert!(matches!(e, Error::Unauthenticated), "{e}");
    }
    // A refused key stays refused (from the negative cache) ...
    assert!(auth.authenticate_bearer(&other).await.is_err());
    // ... and never poisons the right key.
    assert!(auth.authenticate_bearer(&key).await.is_ok());
}

#[tokio::test]
async fn a_key_for_one_client_never_authenticates_as_another() {
    let (key_a, hash_a) = cheap_key();
    let (key_b, hash_b) = cheap_key();
    let auth = Authenticator::new(&[
        client_with_key("alpha", &hash_a),
        client_with_key("beta", &hash_b),
    ])
    .unwrap();
    for _ in 0..3 {
        assert_eq!(
            auth.authenticate_bearer(&key_a).await.unwrap().name(),
            "alpha"
        );
        assert_eq!(
            auth.authenticate_bearer(&key_b).await.unwrap().name(),
            "beta"
        );
    }
    // With B removed, A's key still only opens A, and B's key opens nothing.
    let only_a = Authenticator::new(&[client_with_key("alpha", &hash_a)]).unwrap();
    assert!(only_a.authenticate_bearer(&key_b).await.is_err());
    assert_eq!(
        only_a.authenticate_bearer(&key_a).await.unwrap().name(),
        "alpha"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_use_and_expiry() {
    let (key, hash) = cheap_key();
    let settings = CacheSettings {
        ttl: Duration::from_millis(50),
        ..CacheSettings::default()
    };
    let auth =
        Arc::new(Authenticator::with_settings(&[client_with_key("c", &hash)], settings).unwrap());
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let auth = Arc::clone(&auth);
            let key = key.clone();
            tokio::spawn(async move { auth.authenticate_bearer(&key).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().name(), "c");
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    // Expired: argon2 runs again and still succeeds.
    assert_eq!(auth.authenticate_bearer(&key).await.unwrap().name(), "c");
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let mut keys = Vec::new();
    let mut clients = Vec::new();
    for i in 0..3 {
        let (key, hash) = cheap_key();
        keys.push(key);
        clients.push(client_with_key(&format!("c{i}"), &hash));
    }
    let settings = CacheSettings {
        max_entries: 2,
        ..CacheSettings::default()
    };
    let auth = Authenticator::with_settings(&clients, settings).unwrap();
    for _ in 0..2 {
        for (i, key) in keys.iter().enumerate() {
            let c = auth.authenticate_bearer(key).await.unwrap();
            assert_eq!(c.name(), format!("c{i}"));
        }
    }
}

// === certificates ===

#[test]
fn certificate_names_map_to_one_client() {
    let cert = |name: &str, subject: &str| ClientConfig {
        cert_subject: Some(subject.to_owned()),
        ..ClientConfig::named(name)
    };
    let auth = Authenticator::new(&[
        cert("checkout", "CN=checkout"),
        cert("reports", "DNS=reports.internal"),
    ])
    .unwrap();
    assert_eq!(
        auth.authenticate_cert_subject("checkout").unwrap().name(),
        "checkout"
    );
    assert_eq!(
        auth.authenticate_cert_subject("Reports.Internal")
            .unwrap()
            .name(),
        "reports"
    );
    assert!(auth.authenticate_cert_subject("CN=checkout").is_err());
    assert!(auth.authenticate_cert_subject("mallory").is_err());
    assert_eq!(
        auth.authenticate_cert_names(["x", "checkout"])
            .unwrap()
            .name(),
        "checkout"
    );
    assert!(
        auth.authenticate_cert_names(["checkout", "reports.internal"])
            .is_err()
    );
    assert!(auth.authenticate_cert_names([]).is_err());
}

// === rate limits ===

#[test]
fn the_rate_limiter_is_a_per_client_token_bucket() {
    let limited = |name: &str, rate: u32| {
        Client::from_config(&ClientConfig {
            rate_limit_per_minute: rate,
            cert_subject: Some(name.to_owned()),
            ..ClientConfig::named(name)
        })
    };
    let a = limited("a", 600); // 10 per second
    let b = limited("b", 600);
    let limiter = RateLimiter::new();
    let t0 = Instant::now();
    limiter.check_at(&a, 500, t0).unwrap();
    limiter.check_at(&a, 100, t0).unwrap();
    // Empty: one token comes back in 0.1 s, so try again in a second.
    assert!(matches!(
        limiter.check_at(&a, 1, t0),
        Err(Error::RateLimited {
            retry_after_secs: 1
        })
    ));
    // 25 tokens take 2.5 s to refill: 3 s.
    assert!(matches!(
        limiter.check_at(&a, 25, t0),
        Err(Error::RateLimited {
            retry_after_secs: 3
        })
    ));
    // Another client has its own bucket.
    limiter.check_at(&b, 600, t0).unwrap();
    // Refill: 10 per second.
    let t1 = t0 + Duration::from_secs(2);
    limiter.check_at(&a, 20, t1).unwrap();
    assert!(limiter.check_at(&a, 1, t1).is_err());
    // Never above one minute's worth, and a batch larger than that never passes.
    let t2 = t1 + Duration::from_secs(3600);
    assert!(matches!(
        limiter.check_at(&a, 601, t2),
        Err(Error::RateLimited {
            retry_after_secs: 60
        })
    ));
    limiter.check_at(&a, 600, t2).unwrap();
    // A clock that goes backwards does not mint tokens.
    assert!(limiter.check_at(&a, 1, t0).is_err());
    // Asking for nothing always passes.
    limiter.check(&b, 0).unwrap();
}

// === SHA-256 key hashes (issue 12) ===

#[tokio::test]
async fn sha256_and_legacy_argon2_keys_both_authenticate() {
    let (new_key, new_hash) = generate_api_key().unwrap();
    let (old_key, old_hash) = cheap_key();
    let auth = Authenticator::new(&[
        client_with_key("new", &new_hash),
        client_with_key("old", &old_hash),
    ])
    .unwrap();
    assert_eq!(
        auth.authenticate_bearer(&new_key).await.unwrap().name(),
        "new"
    );
    assert_eq!(
        auth.authenticate_bearer(&old_key).await.unwrap().name(),
        "old"
    );
    let (stranger, _) = generate_api_key().unwrap();
    assert!(matches!(
        auth.authenticate_bearer(&stranger).await,
        Err(Error::Unauthenticated)
    ));
}

#[tokio::test]
async fn random_keys_cost_no_argon2_when_every_hash_is_sha256() {
    let (key, hash) = generate_api_key().unwrap();
    let auth = Authenticator::new(&[client_with_key("checkout", &hash)]).unwrap();
    let start = Instant::now();
    for _ in 0..2_000 {
        let (random, _) = generate_api_key().unwrap();
        assert!(auth.authenticate_bearer(&random).await.is_err());
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        auth.authenticate_bearer(&key).await.unwrap().name(),
        "checkout"
    );
}

#[test]
fn malformed_sha256_hashes_are_refused() {
    for bad in [
        "sha256:",
        "sha256:abc",
        &format!("sha256:{}", "g".repeat(64)),
        &format!("sha256:{}", "0".repeat(63)),
    ] {
        assert!(
            validate_clients(&[client_with_key("a", bad)]).is_err(),
            "{bad}"
        );
    }
    assert!(
        validate_clients(&[client_with_key("a", &format!("sha256:{}", "0a".repeat(32)))]).is_ok()
    );
}
