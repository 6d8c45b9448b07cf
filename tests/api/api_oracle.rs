//! Issue 12, "the tokenize and reveal API": the vault must not be usable as an
//! oracle. Sweep detector, one rate limit over every API call, cheap key checks under
//! a flood, CVVs kept when their charge never left, CVV slots that cannot be filled,
//! and no raw scope on disk.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use vaultgate::app;
use vaultgate::config::Config;
use vaultgate::demo::echo::EchoUpstream;
use vaultgate::vault::{Vault, VaultSettings};

/// A Luhn-valid 16-digit number with the given first six, middle and last four: the
/// middle's last digit is adjusted to make it valid.
fn card(first6: &str, middle: u32, last4: &str) -> String {
    for fix in 0..10 {
        let c = format!("{first6}{:05}{fix}{last4}", middle % 100_000);
        if luhn(&c) {
            return c;
        }
    }
    unreachable!("one of ten check positions makes it valid")
}

async fn tokenize_one(addr: SocketAddr, key: &str, item: Value) -> Reply {
    api(
        addr,
        "POST",
        "/v1/tokenize",
        key,
        json!({ "values": [item] }),
    )
    .await
}

#[tokio::test]
async fn sweep_detector_stops_a_sweep_but_never_real_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let attacker = api_client(
        "attacker",
        r#"tokenize = ["pan"]
deterministic = ["pan"]"#,
    );
    let toml = config_toml(
        "http://127.0.0.1:9",
        &format!(
            "{}{}",
            audit_toml(&dir.path().join("audit.log")),
            attacker.toml
        ),
    )
    .replace("max_body_bytes = 1024", "max_body_bytes = 262144");
    let handle = start_in(dir.path(), &toml).await;
    let addr = handle.api_addr();
    let threshold = VaultSettings::default().sweep_threshold as usize;

    // Real-looking traffic: many distinct cards, spread over buckets (a few per
    // bucket), in batches. Never refused.
    let mut realistic = Vec::new();
    for i in 0..600u32 {
        let first6 = ["411111", "555555", "400000", "522222"][(i % 4) as usize];
        let last4 = format!("{:04}", (i * 7919) % 10_000);
        realistic.push(card(first6, i * 31, &last4));
    }
    for chunk in realistic.chunks(100) {
        let values: Vec<Value> = chunk
            .iter()
            .map(|c| json!({ "class": "pan", "value": c }))
            .collect();
        let r = api(
            addr,
            "POST",
            "/v1/tokenize",
            &attacker.key,
            json!({ "values": values }),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }

    // The victim's card, tokenized once: its token names the first six and last four.
    let victim = card("400012", 54321, "0005");
    let r = tokenize_one(
        addr,
        &attacker.key,
        json!({ "class": "pan", "value": victim }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let victim_token = r.json()["results"][0]["token"].as_str().unwrap().to_owned();

    // The sweep: candidates sharing first six and last four, until one gives the
    // victim's token. Stopped within the threshold, and the real number is refused
    // too once the bucket is tripped (a 200 for it would be the oracle).
    let mut accepted = 0;
    let mut refused = 0;
    for m in 0..200u32 {
        let candidate = card("400012", m, "0005");
        if candidate == victim {
            continue;
        }
        let r = tokenize_one(
            addr,
            &attacker.key,
            json!({ "class": "pan", "value": candidate }),
        )
        .await;
        match r.status {
            StatusCode::OK => {
                accepted += 1;
                assert_ne!(r.json()["results"][0]["token"], victim_token.as_str());
            }
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(r.json()["error"]["code"], "tokenization_sweep_detected");
                assert!(r.headers.get("retry-after").is_some());
                refused += 1;
            }
            other => panic!("{other}: {:?}", r.body),
        }
    }
    assert!(accepted < threshold, "{accepted} candidates got a token");
    assert!(refused > 0);
    let r = tokenize_one(
        addr,
        &attacker.key,
        json!({ "class": "pan", "value": victim }),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", r.body);

    // Other buckets still work.
    let r = tokenize_one(
        addr,
        &attacker.key,
        json!({ "class": "pan", "value": card("411111", 4242, "4242") }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    // Audited (without the value) and counted.
    let audit = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    assert!(audit.contains("tokenization_sweep_detected"));
    assert!(!audit.contains(&victim));
    let metrics = call(addr, "GET", "/metrics", None, Value::Null).await;
    let text = String::from_utf8_lossy(&metrics.body).to_string();
    assert!(
        text.lines()
            .any(|l| l.starts_with("vaultgate_sweep_refusals_total") && !l.ends_with(" 0")),
        "{text}"
    );
    handle.shutdown();
}

#[tokio::test]
async fn the_sweep_detector_covers_the_proxy() {
    let (backend, _echo) = EchoUpstream::start().await.unwrap();
    let toml = config_toml(&format!("http://{backend}"), ROUTES);
    let handle = start(&toml).await;
    let mut statuses = Vec::new();
    for m in 0..60u32 {
        let body = json!({ "card": card("400012", m, "0005") }).to_string();
        let r = send(
            &http1(),
            Request::post(url(handle.proxy_addr(), "/tokenize"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
                .unwrap(),
        )
        .await;
        statuses.push(r.status);
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(String::from_utf8_lossy(&r.body).contains("tokenization_sweep_detected"));
        }
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(
        ok,
        VaultSettings::default().sweep_threshold as usize,
        "{statuses:?}"
    );
    handle.shutdown();
}

#[tokio::test]
async fn metadata_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let c = api_client(
        "c",
        r#"reveal = ["pan"]
tokenize = ["pan"]
rate_limit_per_minute = 5"#,
    );
    let toml = config_toml(
        "http://127.0.0.1:9",
        &format!("{}{}", audit_toml(&dir.path().join("audit.log")), c.toml),
    );
    let handle = start(&toml).await;
    let addr = handle.api_addr();
    let r = tokenize_one(
        addr,
        &c.key,
        json!({ "class": "pan", "value": "4242424242424242" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let token = r.json()["results"][0]["token"].as_str().unwrap().to_owned();
    let mut limited = None;
    for i in 0..10 {
        let r = api(
            addr,
            "GET",
            &format!("/v1/tokens/{token}"),
            &c.key,
            Value::Null,
        )
        .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((i, r));
            break;
        }
        assert_eq!(r.status, StatusCode::OK);
    }
    let (i, r) = limited.expect("metadata was never rate limited");
    // Tokenize took one of the five.
    assert_eq!(i, 4);
    assert_eq!(r.json()["error"]["code"], "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert!(r.json().get("last4").is_none());
    // Tokenize and reveal share the one budget.
    let r = tokenize_one(
        addr,
        &c.key,
        json!({ "class": "pan", "value": "4242424242424242" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn argon2_flood_does_not_delay_a_valid_key() {
    let dir = tempfile::tempdir().unwrap();
    let c = api_client("c", r#"tokenize = ["pan"]"#);
    let toml = config_toml(
        "http://127.0.0.1:9",
        &format!("{}{}", audit_toml(&dir.path().join("audit.log")), c.toml),
    );
    let handle = start(&toml).await;
    let addr = handle.api_addr();
    let flood: Vec<_> = (0..200)
        .map(|_| {
            let (key, _) = vaultgate::auth::generate_api_key().unwrap();
            let key = key.as_str().to_owned();
            tokio::spawn(async move {
                api(addr, "GET", "/v1/tokens/tok_x", &key, Value::Null)
                    .await
                    .status
            })
        })
        .collect();
    // Let the flood arrive first.
    tokio::time::sleep(Duration::from_millis(5)).await;
    // The key check itself, in the server's own `Access`, while the flood arrives.
    let conn = vaultgate::net::ConnInfo::new("127.0.0.1:1".parse().unwrap(), false);
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {}", c.key).parse().unwrap(),
    );
    let started = Instant::now();
    let client = handle
        .access()
        .authenticate(&conn, &headers, &http::header::AUTHORIZATION)
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(client.name(), "c");
    // And end to end over HTTP, during the flood: an empty batch is 400 (an unknown
    // key would be 401); timed for the record (the box may be loaded).
    let http_started = Instant::now();
    let r = api(
        addr,
        "POST",
        "/v1/detokenize",
        &c.key,
        json!({ "tokens": [] }),
    )
    .await;
    eprintln!(
        "HTTP round trip with the valid key: {:?}",
        http_started.elapsed()
    );
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    for f in flood {
        assert_eq!(f.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    eprintln!("a valid key during a flood of 200 random keys: {took:?}");
    assert!(took < Duration::from_millis(50), "{took:?}");
    handle.shutdown();
}

/// A server with an outbound route to a dead port and one to a live echo, both
/// revealing `card.number` and `card.cvc` (scoped by the card).
async fn outbound_server(
    dir: &std::path::Path,
    live: SocketAddr,
    client: &ApiClient,
) -> vaultgate::app::ServerHandle {
    let dead = binary::free_port();
    let extra = format!(
        r#"{audit}
[outbound]
listen = "127.0.0.1:0"

[[outbound.routes]]
name = "dead"
method = "POST"
path = "/dead/charges"
strip_prefix = "/dead"
destination = "http://{dead}"
reveal = [
  {{ path = "card.number", class = "pan" }},
  {{ path = "card.cvc", class = "cvv", scope = "card.number" }},
]

[[outbound.routes]]
name = "live"
method = "POST"
path = "/live/charges"
strip_prefix = "/live"
destination = "http://{live}"
reveal = [
  {{ path = "card.number", class = "pan" }},
  {{ path = "card.cvc", class = "cvv", scope = "card.number" }},
  {{ path = "other", class = "pan" }},
]
{client}"#,
        audit = audit_toml(&dir.join("audit.log")),
        client = client.toml,
    );
    start_in(dir, &config_toml("http://127.0.0.1:9", &extra)).await
}

async fn charge(outbound: SocketAddr, path: &str, key: &str, body: &Value) -> Reply {
    send(
        &http1(),
        Request::post(url(outbound, path))
            .header("content-type", "application/json")
            .header("proxy-authorization", format!("Bearer {key}"))
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn cvv_kept_on_processor_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (live, echo) = EchoUpstream::start().await.unwrap();
    let c = api_client(
        "billing",
        r#"reveal = ["pan", "cvv"]
tokenize = ["pan", "cvv"]"#,
    );
    let handle = outbound_server(dir.path(), live, &c).await;
    let addr = handle.api_addr();
    let outbound = handle.outbound_addr().unwrap();
    let r = tokenize_one(
        addr,
        &c.key,
        json!({ "class": "pan", "value": "4242424242424242" }),
    )
    .await;
    let card = r.json()["results"][0]["token"].as_str().unwrap().to_owned();
    let r = tokenize_one(
        addr,
        &c.key,
        json!({ "class": "cvv", "value": "321", "scope": card }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let cvv = r.json()["results"][0]["token"].as_str().unwrap().to_owned();
    let body = json!({ "amount": 1, "card": { "number": card, "cvc": cvv } });

    // The processor is down: 502, nothing was sent, the CVV stays.
    let r = charge(outbound, "/dead/charges", &c.key, &body).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{:?}", r.body);
    // Another field of the same request is refused: the CVV stays.
    let mut bad = body.clone();
    bad["other"] = json!("4000000000009995");
    let r = charge(outbound, "/live/charges", &c.key, &bad).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    assert!(echo.received().is_empty());

    // The processor is up: the CVV is revealed, once.
    let r = charge(outbound, "/live/charges", &c.key, &body).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let got: Value = serde_json::from_slice(&echo.received()[0].body).unwrap();
    assert_eq!(got["card"]["cvc"], "321");
    assert_eq!(got["card"]["number"], "4242424242424242");
    let r = charge(outbound, "/live/charges", &c.key, &body).await;
    assert_ne!(r.status, StatusCode::OK);
    assert_eq!(echo.received().len(), 1);
    handle.shutdown();
}

#[tokio::test]
async fn cvv_slot_flood_leaves_the_card_usable() {
    let dir = tempfile::tempdir().unwrap();
    let c = api_client(
        "c",
        r#"reveal = ["pan", "cvv"]
tokenize = ["pan", "cvv"]"#,
    );
    let toml = config_toml(
        "http://127.0.0.1:9",
        &format!("{}{}", audit_toml(&dir.path().join("audit.log")), c.toml),
    )
    .replace("max_body_bytes = 1024", "max_body_bytes = 262144");
    let handle = start(&toml).await;
    let addr = handle.api_addr();
    let r = tokenize_one(
        addr,
        &c.key,
        json!({ "class": "pan", "value": "4242424242424242" }),
    )
    .await;
    let card = r.json()["results"][0]["token"].as_str().unwrap().to_owned();
    // 1,200 CVVs for one card: more than its 1,000 three-digit tokens.
    for _ in 0..12 {
        let values: Vec<Value> = (0..100)
            .map(|i| json!({ "class": "cvv", "value": format!("{:03}", i), "scope": card }))
            .collect();
        let r = api(
            addr,
            "POST",
            "/v1/tokenize",
            &c.key,
            json!({ "values": values }),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    // The card still takes a CVV, which reveals.
    let r = tokenize_one(
        addr,
        &c.key,
        json!({ "class": "cvv", "value": "987", "scope": card }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let cvv = r.json()["results"][0]["token"].as_str().unwrap().to_owned();
    let r = api(
        addr,
        "POST",
        "/v1/detokenize",
        &c.key,
        json!({ "tokens": [{ "token": cvv, "scope": card }] }),
    )
    .await;
    assert_eq!(r.json()["results"][0]["value"], "987", "{:?}", r.body);
    handle.shutdown();
}

#[tokio::test]
async fn no_pan_on_disk_after_pan_as_scope() {
    let dir = tempfile::tempdir().unwrap();
    let pan = "4111111111111111";
    let c = api_client(
        "c",
        r#"reveal = ["pan", "cvv"]
tokenize = ["pan", "cvv"]"#,
    );
    let toml = config_toml(
        "http://127.0.0.1:9",
        &format!("{}{}", audit_toml(&dir.path().join("audit.log")), c.toml),
    );
    let config = Config::from_toml_str(&toml).unwrap();
    let data = dir.path().join("data");
    let settings = VaultSettings {
        data: data.clone(),
        cache_capacity_mb: 8,
        cvv_durable: true,
        ..VaultSettings::default()
    };
    let vault = Arc::new(Vault::open(&settings, test_keys(dir.path())).unwrap());
    let handle = app::start(&config, vault).await.unwrap();
    let addr = handle.api_addr();

    // A raw PAN as a scope: refused (404 `invalid_scope`: no such card token), nothing
    // stored.
    for _ in 0..22 {
        let r = tokenize_one(
            addr,
            &c.key,
            json!({ "class": "cvv", "value": "123", "scope": pan }),
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
        assert_eq!(r.json()["error"]["code"], "invalid_scope");
    }
    // A real scope (a card token) works, and only its keyed hash is stored.
    let r = tokenize_one(
        addr,
        &c.key,
        json!({ "class": "pan", "value": "5555555555554444", "format": "opaque" }),
    )
    .await;
    let card = r.json()["results"][0]["token"].as_str().unwrap().to_owned();
    let r = tokenize_one(
        addr,
        &c.key,
        json!({ "class": "cvv", "value": "123", "scope": card }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    handle.shutdown();

    let mut files = vec![data];
    let mut scanned = 0;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            let bytes = std::fs::read(&p).unwrap();
            scanned += 1;
            assert!(!holds_raw(&bytes, pan), "{} holds the PAN", p.display());
        }
    }
    assert!(scanned > 0);
}
