//! Two real `vaultgate serve` processes sharing one PostgreSQL database and one
//! keyring: a card tokenized through A reveals through the CLI on the database, a
//! CVV is consumed once, and SIGKILLing A under load loses no token the upstream
//! received. Skipped without `VAULTGATE_TEST_POSTGRES_URL`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vaultgate::demo::echo::EchoUpstream;

use crate::common::binary::BIN;
const PASS: &str = "two instances test passphrase";
const BODY: &str = r#"{"clientId":"56e1ddbd1a05319bc198d36f","paymentType":"card","identifier":"x","cardNumber":"378282246310005","cardCode":"218","expMonth":"10","expYear":"2030","zipcode":"12345","name":"Test User"}"#;

fn free_port() -> u16 {
    crate::common::binary::free_port().port()
}

fn vaultgate(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    // The CLI audits into `<data>/audit.log`: each test keeps its own (one keyed chain
    // per keyring).
    c.args(["--keyring", dir.join("keyring.json").to_str().unwrap()])
        .args(["--data", dir.join("data").to_str().unwrap()])
        .args(args)
        .env("VAULTGATE_PASSPHRASE", PASS)
        .env_remove("VAULTGATE_POSTGRES_URL");
    c
}

fn serve(dir: &Path, name: &str, url: &str, upstream: &str, client: &str) -> (Child, u16, u16) {
    let port = free_port();
    let api = free_port();
    let config = format!(
        r#"
[proxy]
listen = "127.0.0.1:{port}"
[api]
listen = "127.0.0.1:{api}"
[vault]
keyring = "{keyring}"
data = "{data}"
store = "postgres"
postgres_url = "{url}"
postgres_pool_size = 8
[[upstreams]]
name = "backend"
url = "{upstream}"
[[routes]]
name = "q2open"
upstream = "backend"
method = "POST"
path = "/v1/payment"
profile = "q2open"
{client}
"#,
        keyring = dir.join("keyring.json").display(),
        data = dir.join(format!("data-{name}")).display(),
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config).unwrap();
    let child = vaultgate(dir, &["serve", "--config", path.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "instance {name} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port, api)
}

/// `POST /v1/detokenize` on an instance's API: the first result.
async fn reveal(api: u16, key: &str, token: &str, scope: Option<&str>) -> serde_json::Value {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let item = match scope {
        Some(s) => serde_json::json!({ "token": token, "scope": s }),
        None => serde_json::json!(token),
    };
    let req = http::Request::post(format!("http://127.0.0.1:{api}/v1/detokenize"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(http_body_util::Full::new(bytes::Bytes::from(
            serde_json::json!({ "tokens": [item] }).to_string(),
        )))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert!(resp.status().is_success(), "reveal: {}", resp.status());
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["results"][0].clone()
}

/// POST the q2open body; the upstream's copy of the body on success.
async fn post(port: u16, body: &str) -> Option<serde_json::Value> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = http::Request::post(format!("http://127.0.0.1:{port}/v1/payment"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_owned(),
        )))
        .unwrap();
    let resp = client.request(req).await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .ok()?
        .to_bytes();
    serde_json::from_slice(&bytes).ok()
}

/// `vaultgate detokenize` against the database: (success, stdout, stderr).
fn detokenize(dir: &Path, url: &str, token: &str, scope: Option<&str>) -> (bool, String, String) {
    let mut args = vec![
        "detokenize",
        token,
        "--store",
        "postgres",
        "--postgres-url",
        url,
    ];
    if let Some(s) = scope {
        args.extend(["--scope", s]);
    }
    let out = vaultgate(dir, &args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_one_vault() {
    let Ok(base) = std::env::var("VAULTGATE_TEST_POSTGRES_URL") else {
        eprintln!("skipped: VAULTGATE_TEST_POSTGRES_URL not set");
        return;
    };
    let schema = format!("test_{:016x}", rand::random::<u64>());
    let (admin, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");

    let dir = tempfile::tempdir().unwrap();
    let init = vaultgate(
        dir.path(),
        &["init", "--kdf-memory-kib", "19456", "--kdf-passes", "2"],
    )
    .output()
    .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );

    let (up_addr, upstream) = EchoUpstream::start().await.unwrap();
    let up = format!("http://{up_addr}");
    // One reveal client, configured on both instances.
    let (key, hash) = vaultgate::auth::generate_api_key().unwrap();
    let client = format!(
        "[[clients]]\nname = \"billing\"\napi_key_hash = \"{hash}\"\nreveal = [\"pan\", \"cvv\"]\n"
    );
    let (mut a, port_a, api_a) = serve(dir.path(), "a", &url, &up, &client);
    let (mut b, port_b, api_b) = serve(dir.path(), "b", &url, &up, &client);

    // The same card through A and B: one token (the fingerprint is shared).
    let last = |u: &vaultgate::demo::echo::EchoHandle| -> serde_json::Value {
        serde_json::from_slice(&u.received().last().unwrap().body).unwrap()
    };
    post(port_a, BODY).await.expect("tokenize through A");
    let via_a = last(&upstream);
    post(port_b, BODY).await.expect("tokenize through B");
    let via_b = last(&upstream);
    let card = via_a["cardNumber"].as_str().unwrap().to_owned();
    assert_ne!(card, "378282246310005");
    assert_eq!(via_b["cardNumber"].as_str().unwrap(), card);
    // The card tokenized through A reveals through B's API (and the CLI on the database).
    assert_eq!(
        reveal(api_b, &key, &card, None).await["value"],
        "378282246310005"
    );
    let (ok, value, err) = detokenize(dir.path(), &url, &card, None);
    assert!(ok, "{err}");
    assert_eq!(value, "378282246310005");

    // The CVV tokenized through A is consumed through B; a second reveal through A fails.
    let cvv = via_a["cardCode"].as_str().unwrap().to_owned();
    assert_eq!(reveal(api_b, &key, &cvv, Some(&card)).await["value"], "218");
    let again = reveal(api_a, &key, &cvv, Some(&card)).await;
    assert_eq!(again["error"]["code"], "token_not_found", "{again}");
    let (ok, _, err) = detokenize(dir.path(), &url, &cvv, Some(&card));
    assert!(!ok);
    assert!(err.contains("CVV"), "{err}");

    // Load on A with distinct cards, SIGKILL A midway: every token the upstream got
    // reveals to the card that was sent.
    let before = upstream.received().len();
    let mut load = Vec::new();
    let mut sent = std::collections::HashSet::new();
    for i in 0..200u64 {
        let body_digits = format!("424242{i:09}");
        let pan = format!(
            "{body_digits}{}",
            vaultgate::sensitive::luhn::check_digit(&body_digits)
        );
        let body = BODY.replace("378282246310005", &pan);
        sent.insert(pan);
        load.push(tokio::spawn(async move { post(port_a, &body).await }));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while upstream.received().len() < before + 20 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    a.kill().unwrap();
    for l in load {
        let _ = l.await;
    }
    let _ = a.wait();
    let received = upstream.received();
    let got: Vec<_> = received[before..]
        .iter()
        .map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap())
        .collect();
    assert!(
        !got.is_empty(),
        "some requests went through before the kill"
    );
    for body in &got {
        let token = body["cardNumber"].as_str().unwrap();
        let (ok, value, err) = detokenize(dir.path(), &url, token, None);
        assert!(ok, "a token the upstream received does not reveal: {err}");
        assert!(
            sent.contains(&value),
            "the token reveals to a card that was sent"
        );
        assert_eq!(&value[12..], &token[token.len() - 4..]);
    }
    // B still serves.
    assert!(post(port_b, BODY).await.is_some());
    b.kill().unwrap();
    let _ = b.wait();
    upstream.stop().await;
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

/// `POST /v1/detokenize` on an instance's API without asserting: the value, or why not.
async fn try_reveal(api: u16, key: &str, token: &str) -> Result<String, String> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = http::Request::post(format!("http://127.0.0.1:{api}/v1/detokenize"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(http_body_util::Full::new(bytes::Bytes::from(
            serde_json::json!({ "tokens": [token] }).to_string(),
        )))
        .unwrap();
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    match v["results"][0]["value"].as_str() {
        Some(value) if status.is_success() => Ok(value.to_owned()),
        _ => Err(format!("{status}: {v}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_rotate_and_rewrap_under_traffic() {
    let Ok(base) = std::env::var("VAULTGATE_TEST_POSTGRES_URL") else {
        eprintln!("skipped: VAULTGATE_TEST_POSTGRES_URL not set");
        return;
    };
    let schema = format!("test_{:016x}", rand::random::<u64>());
    let (admin, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let dir = tempfile::tempdir().unwrap();
    let init = vaultgate(
        dir.path(),
        &["init", "--kdf-memory-kib", "19456", "--kdf-passes", "2"],
    )
    .output()
    .unwrap();
    assert!(init.status.success());
    let (up_addr, upstream) = EchoUpstream::start().await.unwrap();
    let up = format!("http://{up_addr}");
    let (key, hash) = vaultgate::auth::generate_api_key().unwrap();
    let client = format!(
        "[[clients]]\nname = \"billing\"\napi_key_hash = \"{hash}\"\nreveal = [\"pan\", \"cvv\"]\n"
    );
    let (mut a, port_a, api_a) = serve(dir.path(), "a", &url, &up, &client);
    let (mut b, port_b, api_b) = serve(dir.path(), "b", &url, &up, &client);

    // Tokenize through one instance, reveal through the other, in a loop on both.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut loops = Vec::new();
    for (n, (port, api)) in [(port_a, api_b), (port_b, api_a)].into_iter().enumerate() {
        let stop = std::sync::Arc::clone(&stop);
        let key = key.clone();
        loops.push(tokio::spawn(async move {
            let mut done = Vec::new();
            let mut failed = Vec::new();
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let digits = format!("4{n}{i:013}");
                let pan = format!(
                    "{digits}{}",
                    vaultgate::sensitive::luhn::check_digit(&digits)
                );
                i += 1;
                let Some(echo) = post(port, &BODY.replace("378282246310005", &pan)).await else {
                    failed.push(format!("tokenize {pan}"));
                    continue;
                };
                // The echo upstream answers with the body it received.
                let forwarded: serde_json::Value =
                    serde_json::from_str(echo["body"].as_str().unwrap_or("{}")).unwrap_or_default();
                let Some(token) = forwarded["cardNumber"].as_str().map(str::to_owned) else {
                    failed.push(format!("no token in {echo}"));
                    continue;
                };
                match try_reveal(api, &key, &token).await {
                    Ok(v) if v == pan => {}
                    other => failed.push(format!("reveal: {other:?}")),
                }
                done.push((token, pan));
            }
            (done, failed)
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pg = ["--store", "postgres", "--postgres-url", url.as_str()];
    let rotate = vaultgate(dir.path(), &[&["keys", "rotate"][..], &pg[..]].concat())
        .output()
        .unwrap();
    assert!(
        rotate.status.success(),
        "{}",
        String::from_utf8_lossy(&rotate.stderr)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rewrap = vaultgate(dir.path(), &[&["keys", "rewrap"][..], &pg[..]].concat())
        .output()
        .unwrap();
    assert!(
        rewrap.status.success(),
        "{}",
        String::from_utf8_lossy(&rewrap.stderr)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut tokens = Vec::new();
    for l in loops {
        let (done, failed) = l.await.unwrap();
        assert!(failed.is_empty(), "failed requests: {failed:?}");
        tokens.extend(done);
    }
    assert!(
        tokens.len() > 20,
        "traffic ran throughout: {}",
        tokens.len()
    );

    // Every token reveals to its card on both instances.
    for (token, pan) in &tokens {
        assert_eq!(
            try_reveal(api_a, &key, token).await.as_deref(),
            Ok(pan.as_str())
        );
        assert_eq!(
            try_reveal(api_b, &key, token).await.as_deref(),
            Ok(pan.as_str())
        );
    }
    // No record is left under version 1.
    let rows = admin
        .query(
            &format!("SELECT key, record FROM {schema}.vaultgate_tokens"),
            &[],
        )
        .await
        .unwrap();
    assert!(rows.len() >= tokens.len());
    for row in rows {
        let record: Vec<u8> = row.get(1);
        let parsed = vaultgate::vault::record::Record::parse(&record).unwrap();
        assert_eq!(
            parsed.header.key_version, 2,
            "a record under the old version"
        );
    }
    a.kill().unwrap();
    b.kill().unwrap();
    let _ = a.wait();
    let _ = b.wait();
    upstream.stop().await;
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}
