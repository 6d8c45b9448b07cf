//! The answer guard: a card number in a processor's answer that the request did not
//! reveal (an account updater's new card, a customer's stored methods, a network
//! token's PAN in a header, gzip) reaches the caller as a new token of the vault, which
//! reveals to the card through the vault API; the answer's other bytes are unchanged.
//! An echo of a revealed value keeps its own token beside a new card's; a card that
//! cannot be replaced in place (base64) or an answer that cannot be read refuses the
//! answer; `answer_guard = "refuse"` and `"off"` do what they say. And outbound routes
//! match exactly unless they say `exact = false`.
//!
//! The processor is a real TLS server made here ([`Fixture::start_on`]), answering in
//! the shape its path's last segment names.

use base64::Engine as _;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use serde_json::{Value, json};
use vaultgate::net::body::{Body, full};

use crate::common::*;
use crate::outbound_echo::{CARD, Fixture, answer_bytes, grouped};

/// Public test cards the requests never reveal.
const VISA: &str = "4111111111111111";
const AMEX: &str = "378282246310005";
const MASTERCARD: &str = "5555555555554444";

/// A customer's stored payment methods, with an amount and a last four that stay.
fn wallet() -> String {
    format!(
        r#"{{"customer":"cus_1","amount":1250,"methods":[{{"id":"pm_1","card":"{VISA}","last4":"1111","exp":"12/30"}},{{"id":"pm_2","card":"{AMEX}"}}]}}"#
    )
}

/// An error text quoting a card in groups of four.
fn text() -> String {
    format!("card {} expired; use {MASTERCARD}", grouped(VISA, " "))
}

/// An account updater's answer: the card revealed (`old`, an echo) and its
/// replacement (`new`).
fn updater(old: &str) -> String {
    format!(
        r#"{{"id":"au_1","old":{{"number":"{old}"}},"new":{{"number":"{MASTERCARD}","exp":"01/31"}},"status":"updated"}}"#
    )
}

/// The processor: answers in the shape the path's last segment names.
async fn processor(req: Request<Incoming>) -> Result<Response<Body>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let sent: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let revealed = sent["card"]["number"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let shape = parts.uri.path().rsplit('/').next().unwrap_or_default();
    let mut res = Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("x-processor-path", parts.uri.path());
    let body = match shape {
        "wallet" => full(wallet()),
        "text" => {
            res = res
                .status(402)
                .header("content-type", "text/plain; charset=utf-8");
            full(text())
        }
        "header" => {
            res = res.header("x-network-pan", VISA);
            full(r#"{"network_token":"ntk_1"}"#)
        }
        "gzip" => {
            res = res.header("content-encoding", "gzip");
            full(gzip(wallet().as_bytes()))
        }
        "updater" => full(updater(&revealed)),
        "base64" => {
            let blob =
                base64::engine::general_purpose::STANDARD.encode(format!(r#"{{"pan":"{VISA}"}}"#));
            full(json!({ "blob": blob }).to_string())
        }
        "brotli" => {
            res = res.header("content-encoding", "br");
            full("not really brotli")
        }
        "big" => full(format!(r#"{{"pad":"{}"}}"#, "x".repeat(70_000))),
        _ => full(r#"{"status":"succeeded"}"#),
    };
    Ok(res.body(body).unwrap())
}

/// `vaultgate_outbound_answer_tokens_total{route,outcome}` from `/metrics`.
async fn answer_tokens(f: &Fixture, route: &str, outcome: &str) -> u64 {
    let m = call(f.handle.api_addr(), "GET", "/metrics", None, Value::Null).await;
    let prefix = format!(
        "vaultgate_outbound_answer_tokens_total{{route=\"{route}\",outcome=\"{outcome}\"}} "
    );
    String::from_utf8_lossy(&m.body)
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// What the vault API reveals `token` to.
async fn revealed(f: &Fixture, token: &str) -> String {
    let r = api(
        f.handle.api_addr(),
        "POST",
        "/v1/detokenize",
        &f.key,
        json!({ "tokens": [token] }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.json()["results"][0]["value"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A request that reveals nothing.
fn nothing() -> Value {
    json!({ "amount": 1250 })
}

/// The caller got none of the test cards raw, in its body or its headers.
fn no_raw_card(r: &Reply) {
    for card in [CARD, VISA, AMEX, MASTERCARD] {
        assert!(!holds_raw(&answer_bytes(r), card), "{card}: {:?}", r.body);
    }
}

#[tokio::test]
async fn a_card_the_request_never_revealed_reaches_the_caller_as_a_new_token() {
    let f = Fixture::start_on("", "", processor).await;

    // Stored methods in JSON: each card a new token, every other byte as sent.
    let r = f.send("/processor/customers/wallet", &nothing()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    no_raw_card(&r);
    let v = r.json();
    let (visa, amex) = (
        v["methods"][0]["card"].as_str().unwrap().to_owned(),
        v["methods"][1]["card"].as_str().unwrap().to_owned(),
    );
    assert_eq!(revealed(&f, &visa).await, VISA);
    assert_eq!(revealed(&f, &amex).await, AMEX);
    let back = String::from_utf8(r.body.to_vec())
        .unwrap()
        .replace(&visa, VISA)
        .replace(&amex, AMEX);
    assert_eq!(back, wallet());
    assert_eq!(
        r.headers.get("content-length").unwrap().to_str().unwrap(),
        r.body.len().to_string()
    );

    // An error text, a card in groups: the token in the same groups.
    let r = f.send("/processor/charges/text", &nothing()).await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED);
    no_raw_card(&r);
    // The same card, the same token (deterministic, as the inbound leak guard's).
    let got = std::str::from_utf8(&r.body).unwrap();
    let master = got.rsplit(' ').next().unwrap().to_owned();
    assert_eq!(
        got,
        format!("card {} expired; use {master}", grouped(&visa, " "))
    );
    assert_eq!(revealed(&f, &master).await, MASTERCARD);

    // A network token's PAN in a header.
    let r = f.send("/processor/tokens/header", &nothing()).await;
    assert_eq!(r.status, StatusCode::OK);
    no_raw_card(&r);
    assert_eq!(r.headers.get("x-network-pan").unwrap(), visa.as_str());
    assert_eq!(&r.body[..], br#"{"network_token":"ntk_1"}"#);

    // gzip: decompressed, tokenized, compressed again.
    let r = f.send("/processor/customers/gzip", &nothing()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers.get("content-encoding").unwrap(), "gzip");
    assert!(!holds_raw(&r.body, VISA));
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&r.body[..]), &mut text)
        .unwrap();
    assert_eq!(text.replace(&visa, VISA).replace(&amex, AMEX), wallet());

    // An answer with no card passes as it came.
    let r = f.send("/processor/charges/ok", &nothing()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], br#"{"status":"succeeded"}"#);

    // One per card tokenized, per answer: wallet, text, header, gzip.
    assert_eq!(
        answer_tokens(&f, "echoes", "tokenized").await,
        2 + 2 + 1 + 2
    );
    f.handle.stop().await;
}

#[tokio::test]
async fn an_echo_keeps_its_token_beside_a_new_cards_token() {
    let f = Fixture::start_on("", "", processor).await;
    let token = f.token("pan", CARD).await;
    let body = json!({ "amount": 1250, "card": { "number": token } });
    let r = f.send("/processor/cards/updater", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    no_raw_card(&r);
    let v = r.json();
    assert_eq!(v["old"]["number"], token.as_str());
    let new = v["new"]["number"].as_str().unwrap().to_owned();
    assert_ne!(new, token);
    assert_ne!(new, MASTERCARD);
    assert_eq!(revealed(&f, &new).await, MASTERCARD);
    assert_eq!(revealed(&f, &token).await, CARD);
    let back = String::from_utf8(r.body.to_vec())
        .unwrap()
        .replace(&new, MASTERCARD)
        .replace(&token, CARD);
    assert_eq!(back, updater(CARD));
    assert_eq!(f.echoes("swapped").await, 1);
    assert_eq!(answer_tokens(&f, "echoes", "tokenized").await, 1);
    f.handle.stop().await;
}

#[tokio::test]
async fn an_answer_whose_card_cannot_be_tokenized_in_place_is_refused() {
    let f = Fixture::start_on("", "", processor).await;

    // Inside base64: no token can take its place; 502, nothing of the answer.
    let r = f.send("/processor/charges/base64", &nothing()).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.json()["error"]["code"], "answer_unswappable");
    no_raw_card(&r);
    assert!(!String::from_utf8_lossy(&r.body).contains("blob"));

    // An answer that cannot be read is not passed unread, even to a request that
    // revealed nothing: a coding the proxy cannot undo, a body over the limit.
    let r = f.send("/processor/charges/brotli", &nothing()).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.json()["error"]["code"], "answer_unchecked");
    let r = f.send("/processor/reports/big", &nothing()).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.json()["error"]["code"], "answer_unchecked");

    assert_eq!(answer_tokens(&f, "echoes", "refused").await, 3);
    assert_eq!(answer_tokens(&f, "echoes", "tokenized").await, 0);
    f.handle.stop().await;
}

#[tokio::test]
async fn a_route_may_refuse_answers_with_cards_or_pass_them() {
    let f = Fixture::start_on(
        r#"
[[outbound.routes]]
name = "refusing"
path = "/refusing/*"
strip_prefix = "/refusing"
destination = "https://localhost:{port}/api"
ca = "{ca}"
answer_guard = "refuse"

[[outbound.routes]]
name = "raw"
path = "/raw/*"
strip_prefix = "/raw"
destination = "https://localhost:{port}/api"
ca = "{ca}"
answer_guard = "off"
"#,
        "",
        processor,
    )
    .await;

    let r = f.send("/refusing/customers/wallet", &nothing()).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.json()["error"]["code"], "answer_card_refused");
    no_raw_card(&r);
    let r = f.send("/refusing/tokens/header", &nothing()).await;
    assert_eq!(r.json()["error"]["code"], "answer_card_refused");
    let r = f.send("/refusing/charges/ok", &nothing()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], br#"{"status":"succeeded"}"#);
    assert_eq!(answer_tokens(&f, "refusing", "refused").await, 2);

    // Off: the answer as the processor sent it, a large one streamed unread.
    let r = f.send("/raw/customers/wallet", &nothing()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], wallet().as_bytes());
    let r = f.send("/raw/reports/big", &nothing()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.len(), 70_000 + r#"{"pad":""}"#.len());

    // Neither tokenized anything.
    assert_eq!(answer_tokens(&f, "refusing", "tokenized").await, 0);
    assert_eq!(answer_tokens(&f, "raw", "tokenized").await, 0);
    f.handle.stop().await;
}

#[tokio::test]
async fn outbound_routes_match_exactly_unless_they_say_otherwise() {
    let f = Fixture::start_on(
        r#"
[[outbound.routes]]
name = "strict"
method = "POST"
path = "/pay/charges"
strip_prefix = "/pay"
destination = "https://localhost:{port}/api"
ca = "{ca}"

[[outbound.routes]]
name = "loose"
method = "POST"
path = "/loose/charges"
strip_prefix = "/loose"
destination = "https://localhost:{port}/api"
ca = "{ca}"
exact = false
"#,
        "",
        processor,
    )
    .await;
    let r = f.send("/pay/charges", &nothing()).await;
    assert_eq!(r.status, StatusCode::OK);
    for path in ["/pay/charges.json", "/pay/CHARGES", "/pay/charges/"] {
        let r = f.send(path, &nothing()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert!(r.headers.get("x-processor-path").is_none(), "{path}");
    }
    let r = f.send("/loose/charges.json", &nothing()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers.get("x-processor-path").unwrap(),
        "/api/charges.json"
    );
    f.handle.stop().await;
}
