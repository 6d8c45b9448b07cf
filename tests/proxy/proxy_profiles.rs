//! Each documented API's own example request through the real proxy, in front of a
//! real recording upstream, on a real vault (sled in a temp dir).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::common::*;
use base64::Engine;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use vaultgate::app::ServerHandle;
use vaultgate::config::Config;
use vaultgate::demo::echo::{EchoHandle, EchoUpstream};
use vaultgate::sensitive::luhn;
use vaultgate::vault::{Vault, VaultSettings};

/// Every log line of this test binary, at TRACE, for the leak test.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buf
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);
impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Setup {
    server: ServerHandle,
    echo: EchoHandle,
    vault: Arc<Vault>,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    logs();
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = Config::demo(
        "127.0.0.1:0",
        "127.0.0.1:0",
        &format!("http://{up}"),
        dir.path(),
    )
    .unwrap();
    let settings = VaultSettings {
        cache_capacity_mb: 8,
        ..config.vault.clone()
    };
    let vault = Arc::new(Vault::open(&settings, crate::common::test_keys(dir.path())).unwrap());
    let server = vaultgate::app::start_with_grace(&config, vault.clone(), Duration::from_secs(1))
        .await
        .unwrap();
    Setup {
        server,
        echo,
        vault,
        _dir: dir,
    }
}

fn post(s: &Setup, path: &str, ctype: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::post(url(s.server.proxy_addr(), path))
        .header("content-type", ctype)
        .body(Full::new(body.into()))
        .unwrap()
}

fn example(name_prefix: &str) -> (&'static str, &'static str, String) {
    vaultgate::demo::run::examples()
        .into_iter()
        .find(|(n, ..)| n.starts_with(name_prefix))
        .map(|(_, p, c, b)| (p, c, b))
        .unwrap()
}

/// Send an example; return the JSON object the upstream received.
async fn through(s: &Setup, path: &str, ctype: &str, body: &str) -> (serde_json::Value, Vec<u8>) {
    let before = s.echo.received().len();
    let reply = send(&http1(), post(s, path, ctype, body.to_owned())).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{path}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    let got = s.echo.received();
    assert_eq!(got.len(), before + 1);
    let raw = got.last().unwrap().body.to_vec();
    (
        serde_json::from_slice(&raw).unwrap_or(serde_json::Value::Null),
        raw,
    )
}

/// The received body must equal the sent body with only the sensitive values swapped.
fn assert_only_swapped(sent: &str, received: &[u8], swaps: &[(&str, &str)]) {
    let mut expected = sent.to_owned();
    for (value, token) in swaps {
        assert_ne!(value, token);
        expected = expected.replacen(&format!("\"{value}\""), &format!("\"{token}\""), 1);
    }
    assert_eq!(String::from_utf8_lossy(received), expected);
}

#[tokio::test]
async fn q2open_card_and_bank() {
    let s = setup().await;
    let (path, ctype, body) = example("q2open card");
    let (got, raw) = through(&s, path, ctype, &body).await;
    let pan = got["cardNumber"].as_str().unwrap().to_owned();
    let cvv = got["cardCode"].as_str().unwrap().to_owned();
    assert_eq!(pan.len(), 15);
    assert!(pan.starts_with("378282") && pan.ends_with("0005") && luhn::is_valid(&pan));
    assert_eq!(cvv.len(), 3);
    assert_only_swapped(&body, &raw, &[("378282246310005", &pan), ("218", &cvv)]);
    assert_eq!(
        s.vault.detokenize(&pan, None).await.unwrap().value.expose(),
        "378282246310005"
    );
    assert_eq!(
        s.vault
            .detokenize(&cvv, Some(&pan))
            .await
            .unwrap()
            .value
            .expose(),
        "218"
    );

    // The same card again: the same token (backends that answer 409 on duplicates keep working).
    let (again, _) = through(&s, path, ctype, &body).await;
    assert_eq!(again["cardNumber"], pan.as_str());

    let (path, ctype, body) = example("q2open bank");
    let (got, raw) = through(&s, path, ctype, &body).await;
    let acct = got["accountNumber"].as_str().unwrap().to_owned();
    assert_eq!(acct.len(), 10);
    assert!(acct.ends_with("0002"));
    assert_eq!(
        got["routingNumber"], "021000021",
        "routing numbers are not tokenized"
    );
    assert_only_swapped(&body, &raw, &[("9900000002", &acct)]);
    assert_eq!(
        s.vault
            .detokenize(&acct, None)
            .await
            .unwrap()
            .value
            .expose(),
        "9900000002"
    );
}

#[tokio::test]
async fn oracle_brm_bank_account() {
    let s = setup().await;
    let (path, ctype, body) = example("Oracle BRM");
    let (got, raw) = through(&s, path, ctype, &body).await;
    let acct = got["details"]["accountNumber"].as_str().unwrap().to_owned();
    assert_eq!(acct.len(), 17);
    assert!(acct.ends_with("6491"));
    assert_eq!(got["details"]["BIC"], "111122334");
    assert_only_swapped(&body, &raw, &[("12345678901236491", &acct)]);
    assert_eq!(
        s.vault
            .detokenize(&acct, None)
            .await
            .unwrap()
            .value
            .expose(),
        "12345678901236491"
    );

    // An IBAN gets an IBAN-shaped token.
    let iban_body = body.replace("12345678901236491", "DE89370400440532013000");
    let (got, _) = through(&s, path, ctype, &iban_body).await;
    let t = got["details"]["accountNumber"].as_str().unwrap();
    assert!(t.starts_with("DE") && t.ends_with("3000") && t.len() == 22);
    assert_ne!(t, "DE89370400440532013000");
}

#[tokio::test]
async fn hostway_card_and_direct_debit() {
    let s = setup().await;
    let (path, ctype, body) = example("Hostway");
    let (got, raw) = through(&s, path, ctype, &body).await;
    let pan = got["accountNumber"].as_str().unwrap().to_owned();
    let cvv = got["verificationNumber"].as_str().unwrap().to_owned();
    assert!(pan.starts_with("411111") && pan.ends_with("1111") && luhn::is_valid(&pan));
    assert_only_swapped(&body, &raw, &[("4111111111111111", &pan), ("555", &cvv)]);
    assert_eq!(
        s.vault.detokenize(&pan, None).await.unwrap().class.as_str(),
        "pan"
    );
    assert_eq!(
        s.vault
            .detokenize(&cvv, Some(&pan))
            .await
            .unwrap()
            .value
            .expose(),
        "555"
    );

    // The documented direct-debit example: accountNumber is a bank account here.
    let dd = r#"{"paymentInfoType":"direct_debit","routingNumber":"123456789","accountNumber":"1234","accountName":"My Account Name","accountOwner":"John Smith","bankName":"My Bank","bankCity":"Chicago","bankCountry":"US"}"#;
    let (got, raw) = through(&s, "/accounts/7/paymentInfo", "application/json", dd).await;
    let acct = got["accountNumber"].as_str().unwrap().to_owned();
    assert_eq!(acct.len(), 4);
    assert_only_swapped(dd, &raw, &[("1234", &acct)]);
    let revealed = s.vault.detokenize(&acct, None).await.unwrap();
    assert_eq!(revealed.class.as_str(), "bank_account");
    assert_eq!(revealed.value.expose(), "1234");
}

#[tokio::test]
async fn stripe_backed_passes_through_byte_for_byte() {
    let s = setup().await;
    let (path, ctype, body) = example("stripe-backed");
    let (_, raw) = through(&s, path, ctype, &body).await;
    assert_eq!(raw, body.as_bytes());
}

#[tokio::test]
async fn plano_base64_params_keep_their_alphabet() {
    let s = setup().await;
    let (path, ctype, body) = example("Plano");
    let (_, raw) = through(&s, path, ctype, &body).await;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&raw)
        .unwrap();
    let got: serde_json::Value = serde_json::from_slice(&decoded).unwrap();
    let pan = got["payment_method"]["card_number"]
        .as_str()
        .unwrap()
        .to_owned();
    let cvc = got["payment_method"]["cvc"].as_str().unwrap().to_owned();
    assert!(pan.starts_with("424242") && pan != "4242424242424242");
    assert_eq!(got["token"], "demo-session-token");
    assert_eq!(
        s.vault.detokenize(&pan, None).await.unwrap().value.expose(),
        "4242424242424242"
    );
    assert_eq!(
        s.vault
            .detokenize(&cvc, Some(&pan))
            .await
            .unwrap()
            .value
            .expose(),
        "123"
    );

    // URL-safe alphabet, no padding, in; the same alphabet out.
    let params = r#"{"payment_method":{"card_number":"5555555555554444","cvc":"999","name":"a?b>c"},"token":"t"}"#;
    let urlsafe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(params);
    let (_, raw) = through(&s, path, "text/plain", &urlsafe).await;
    let text = String::from_utf8(raw).unwrap();
    assert!(!text.contains('+') && !text.contains('/') && !text.ends_with('='));
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&text)
        .unwrap();
    assert!(!String::from_utf8_lossy(&decoded).contains("5555555555554444"));
}

#[tokio::test]
async fn fail_closed_cases_forward_nothing() {
    let s = setup().await;
    let (path, _, body) = example("q2open card");
    let cases: Vec<(Request<Full<Bytes>>, StatusCode, &str)> = vec![
        (
            post(
                &s,
                path,
                "application/json",
                r#"{"cardNumber":"4242424242424242","#,
            ),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            post(&s, path, "application/json", vec![b' '; 2 * 1024 * 1024]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            Request::post(url(s.server.proxy_addr(), path))
                .header("content-type", "application/json")
                .header("content-encoding", "br")
                .body(Full::new(Bytes::from(body.clone())))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media",
        ),
        (
            post(
                &s,
                "/payment-methods",
                "text/plain",
                "not base64 at all: 4242424242424242!",
            ),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            post(
                &s,
                path,
                "application/json",
                r#"{"paymentType":"card","cardNumber":"4242-not-a-card"}"#,
            ),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
    ];
    for (req, status, code) in cases {
        let reply = send(&http1(), req).await;
        assert_eq!(
            reply.status,
            status,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.json()["error"]["code"], code);
        let text = String::from_utf8_lossy(&reply.body);
        assert!(!text.contains("4242424242424242") && !text.contains("not-a-card"));
    }
    assert!(s.echo.received().is_empty(), "nothing reaches the upstream");
}

#[tokio::test]
async fn gzip_bodies_are_decoded_and_re_encoded() {
    use flate2::Compression;
    use flate2::write::GzEncoder;
    let s = setup().await;
    let (path, _, body) = example("q2open card");
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(body.as_bytes()).unwrap();
    let req = Request::post(url(s.server.proxy_addr(), path))
        .header("content-type", "application/json; charset=UTF-8")
        .header("content-encoding", "gzip")
        .body(Full::new(Bytes::from(enc.finish().unwrap())))
        .unwrap();
    let reply = send(&http1(), req).await;
    assert_eq!(reply.status, StatusCode::OK);
    let got = &s.echo.received()[0];
    assert_eq!(got.header("content-encoding"), Some("gzip"));
    let mut plain = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&got.body[..]), &mut plain)
        .unwrap();
    assert!(!plain.contains("378282246310005"));
    assert!(plain.contains("\"cardNumber\":\"378282"));
}

#[tokio::test]
async fn leak_guard_catches_cards_outside_the_rules_and_in_the_query() {
    let s = setup().await;
    // A card in a free-text field, with spaces, and one in the query string.
    let body = r#"{"customerId":"cus_1","note":"card 4000 0566 5566 5556 please","last4":"5556"}"#;
    let req = post(
        &s,
        "/payment-method?ref=5555-5555-5555-4444",
        "application/json",
        body,
    );
    let reply = send(&http1(), req).await;
    assert_eq!(reply.status, StatusCode::OK);
    let got = &s.echo.received()[0];
    let text = String::from_utf8_lossy(&got.body);
    assert!(
        !text.replace([' ', '-'], "").contains("4000056655665556"),
        "{text}"
    );
    let q = got.query.clone().unwrap();
    assert!(!q.replace('-', "").contains("5555555555554444"), "{q}");
    assert!(text.contains("\"last4\":\"5556\""));
}

#[tokio::test]
async fn tokenizes_over_http2() {
    let s = setup().await;
    let (path, ctype, body) = example("q2open card");
    let reply = send(&h2c(), post(&s, path, ctype, body)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.version, http::Version::HTTP_2);
    let got = &s.echo.received()[0];
    assert!(!String::from_utf8_lossy(&got.body).contains("378282246310005"));
}

#[tokio::test]
async fn leak_test_logs_upstream_and_data_dir_hold_no_value() {
    let s = setup().await;
    for (_, path, ctype, body) in vaultgate::demo::run::examples() {
        let reply = send(&http1(), post(&s, path, ctype, body)).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    s.vault.flush().await.unwrap();
    let secrets = [
        "378282246310005",
        "4111111111111111",
        "4242424242424242",
        "12345678901236491",
        "9900000002",
    ];
    let mut upstream = Vec::new();
    for r in s.echo.received() {
        upstream.extend_from_slice(&r.body);
        if let Ok(d) = base64::engine::general_purpose::STANDARD.decode(&r.body) {
            upstream.extend_from_slice(&d);
        }
        upstream.extend_from_slice(r.query.clone().unwrap_or_default().as_bytes());
    }
    let upstream = String::from_utf8_lossy(&upstream).into_owned();
    let logged = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    assert!(!logged.is_empty(), "the log capture works");
    for v in secrets {
        assert!(!upstream.contains(v), "upstream saw {v}");
        assert!(!logged.contains(v), "a log line holds {v}");
    }
    for cvv in ["\"218\"", "\"555\"", "\"123\""] {
        assert!(!upstream.contains(cvv), "upstream saw CVV {cvv}");
    }
    let data = s.vault_dir();
    for f in files_under(&data) {
        let bytes = std::fs::read(&f).unwrap();
        for v in secrets {
            assert!(
                !bytes.windows(v.len()).any(|w| w == v.as_bytes()),
                "{} holds {v}",
                f.display()
            );
        }
    }
}

impl Setup {
    fn vault_dir(&self) -> std::path::PathBuf {
        self._dir.path().to_path_buf()
    }
}

/// A six-four token is a valid card number. A real card that happens to equal a token
/// this vault issued must still be tokenized, in a card field and by the leak guard.
#[tokio::test]
async fn a_card_equal_to_an_issued_token_is_still_tokenized() {
    let s = setup().await;
    let (path, ctype, body) = example("q2open card");
    let (got, _) = through(&s, path, ctype, &body).await;
    let token = got["cardNumber"].as_str().unwrap().to_owned();
    assert!(luhn::is_valid(&token));

    // The token's digits arrive as a card number in the card field.
    let as_card = body.replace("378282246310005", &token);
    let (got, _) = through(&s, path, ctype, &as_card).await;
    let second = got["cardNumber"].as_str().unwrap().to_owned();
    assert_ne!(
        second, token,
        "the upstream must not receive the value as sent"
    );
    assert_eq!(
        s.vault
            .detokenize(&second, None)
            .await
            .unwrap()
            .value
            .expose(),
        token
    );

    // The leak guard lets a token through in a free field: it is one of ours and no card
    // this vault holds...
    let fresh = r#"{"paymentType":"card","cardNumber":"4000056655665556","cardCode":"123"}"#;
    let (got, _) = through(&s, path, ctype, fresh).await;
    let other = got["cardNumber"].as_str().unwrap().to_owned();
    let note = format!(r#"{{"customerId":"c","note":"{other}"}}"#);
    let (got, _) = through(&s, "/payment-method", "application/json", &note).await;
    assert_eq!(got["note"], other.as_str());
    // ...but not when those digits are also a card the vault holds.
    let note = format!(r#"{{"customerId":"c","note":"{token}"}}"#);
    let (got, _) = through(&s, "/payment-method", "application/json", &note).await;
    assert_ne!(got["note"], token.as_str());
}
