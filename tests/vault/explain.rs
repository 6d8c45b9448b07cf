//! `vaultgate explain` on the five profiles' example configs and requests: the owner
//! route, the findings, the forwarded body with placeholders, refusals, and no raw
//! test card anywhere in the output (text or JSON), through the library and the
//! real binary.

use std::path::PathBuf;
use std::process::Command;

use base64::Engine as _;
use http::{HeaderMap, HeaderValue, Method};
use vaultgate::config::Config;
use vaultgate::explain::{Explanation, Request, explain, text};

use crate::common::binary::BIN;

const CARDS: [&str; 3] = ["4242424242424242", "378282246310005", "4111111111111111"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn config(name: &str) -> Config {
    Config::load(&root().join("examples/config").join(format!("{name}.toml"))).unwrap()
}

fn body(name: &str) -> Vec<u8> {
    std::fs::read(root().join("examples/requests").join(name)).unwrap()
}

fn request(method: &str, path: &str, content_type: &str, body: Vec<u8>) -> Request {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_str(content_type).unwrap());
    Request {
        method: Method::from_bytes(method.as_bytes()).unwrap(),
        path: path.to_owned(),
        headers,
        body,
    }
}

/// Explain, render both ways, and check that no raw test card is in either.
fn run(profile: &str, req: &Request) -> (Explanation, String, String) {
    let e = explain(&config(profile), req).unwrap();
    let t = text(&e);
    let j = serde_json::to_string(&e).unwrap();
    for card in CARDS {
        assert!(!t.contains(card), "{profile}: raw card in text:\n{t}");
        assert!(!j.contains(card), "{profile}: raw card in JSON:\n{j}");
    }
    (e, t, j)
}

fn forwarded_body(e: &Explanation) -> &str {
    e.forwarded.as_ref().unwrap().body.as_deref().unwrap()
}

#[test]
fn q2open_card_and_bank() {
    let req = request(
        "POST",
        "/v1/payment",
        "application/json",
        body("q2open-card.json"),
    );
    let (e, t, _) = run("q2open", &req);
    assert!(e.is_forwarded(), "{t}");
    assert_eq!(e.route, Some(0));
    assert_eq!(e.routes.len(), 2);
    assert_eq!(e.routes[1].role, "shadowed");
    assert!(
        t.contains("routes[1] `pass_through`")
            && t.contains("would also match the path but the first matching route owns it"),
        "{t}"
    );
    let pan = &e.findings[0];
    assert_eq!((pan.class, pan.action), ("pan", "tokenize"));
    assert_eq!(pan.masked, "378282*****0005");
    assert_eq!(pan.token_format, Some("pan_six_four"));
    assert_eq!(pan.deterministic, Some(true));
    let cvv = &e.findings[1];
    assert_eq!((cvv.class, cvv.masked.as_str()), ("cvv", "***"));
    assert_eq!(cvv.scope, Some(1));
    assert_eq!(cvv.deterministic, Some(false));
    let b = forwarded_body(&e);
    assert!(b.contains(r#""cardNumber":"<token:pan#1>""#), "{b}");
    assert!(b.contains(r#""cardCode":"<token:cvv#2>""#), "{b}");
    assert!(!b.contains("218"), "{b}");

    let req = request(
        "POST",
        "/v1/payment",
        "application/json",
        body("q2open-bank.json"),
    );
    let (e, t, _) = run("q2open", &req);
    assert!(e.is_forwarded(), "{t}");
    assert_eq!(e.findings.len(), 1);
    assert_eq!(e.findings[0].class, "bank_account");
    assert_eq!(e.findings[0].masked, "****0002");
    assert!(!t.contains("9900000002"), "{t}");
    assert!(forwarded_body(&e).contains("<token:bank_account#1>"));
}

#[test]
fn oracle_brm_account() {
    let req = request(
        "POST",
        "/brm/paymentMethods/v1/paymentMethod",
        "application/json",
        body("oracle-brm.json"),
    );
    let (e, t, _) = run("oracle_brm", &req);
    assert!(e.is_forwarded(), "{t}");
    assert_eq!(e.findings.len(), 1);
    let f = &e.findings[0];
    assert_eq!(f.rule_path.as_deref(), Some("details.accountNumber"));
    assert_eq!(f.location, "body:$.details.accountNumber");
    assert_eq!(f.masked, "****6491");
    assert!(!t.contains("12345678901236491"), "{t}");
    assert!(forwarded_body(&e).contains(r#""accountNumber":"<token:bank_account#1>""#));
}

#[test]
fn hostway_card_and_ambiguous_refusal() {
    let path = "/accounts/42/paymentInfo";
    let req = request("POST", path, "application/json", body("hostway-card.json"));
    let (e, t, _) = run("hostway", &req);
    assert!(e.is_forwarded(), "{t}");
    assert_eq!(e.findings[0].rule, Some(0));
    assert_eq!(e.findings[0].masked, "411111******1111");
    assert_eq!(e.findings[1].scope, Some(1));
    assert!(forwarded_body(&e).contains(r#""verificationNumber":"<token:cvv#2>""#));

    // An unknown paymentInfoType: accountNumber is neither a card nor an account.
    let unknown = String::from_utf8(body("hostway-card.json"))
        .unwrap()
        .replace("credit_card", "gift_card");
    let req = request("POST", path, "application/json", unknown.into_bytes());
    let (e, t, j) = run("hostway", &req);
    assert!(!e.is_forwarded());
    assert!(e.forwarded.is_none());
    let r = e.refusal.as_ref().unwrap();
    assert_eq!((r.status, r.code), (400, "ambiguous_sensitive_field"));
    assert!(r.message.contains("body:$.accountNumber"), "{}", r.message);
    assert!(
        t.contains("refused: 400 ambiguous_sensitive_field") && t.contains("body:$.accountNumber"),
        "{t}"
    );
    assert!(j.contains(r#""code":"ambiguous_sensitive_field""#), "{j}");
}

#[test]
fn payment_method_leak_guard() {
    let path = "/payment-method";
    let req = request("POST", path, "application/json", body("stripe-backed.json"));
    let (e, t, _) = run("payment_method", &req);
    assert!(e.is_forwarded(), "{t}");
    assert!(e.findings.is_empty(), "{t}");
    assert!(!e.forwarded.as_ref().unwrap().rewritten);

    // A card where no rule looks: the leak guard tokenizes it as a PAN.
    let req = request(
        "POST",
        path,
        "application/json",
        br#"{"type":"card","note":"card 4242 4242 4242 4242 on file"}"#.to_vec(),
    );
    let (e, t, _) = run("payment_method", &req);
    assert!(e.is_forwarded(), "{t}");
    let f = &e.findings[0];
    assert_eq!(
        (f.source, f.class, f.action),
        ("leak_guard", "pan", "tokenize")
    );
    assert_eq!(f.masked, "424242******4242");
    assert!(
        forwarded_body(&e).contains("card <token:pan#1> on file"),
        "{t}"
    );
    assert!(!t.contains("4242 4242 4242 4242"), "{t}");
}

#[test]
fn plano_base64_params() {
    let params = body("plano-params.json");
    let encoded = base64::engine::general_purpose::STANDARD.encode(&params);
    let req = request(
        "POST",
        "/payment-methods",
        "text/plain",
        encoded.clone().into_bytes(),
    );
    let (e, t, _) = run("plano", &req);
    assert!(e.is_forwarded(), "{t}");
    let fw = e.forwarded.as_ref().unwrap();
    assert_eq!(fw.body_layers, ["base64"]);
    let b = fw.body.as_deref().unwrap();
    assert!(b.contains(r#""card_number":"<token:pan#1>""#), "{b}");
    assert!(b.contains(r#""cvc":"<token:cvv#2>""#), "{b}");
    assert!(!t.contains(&encoded), "{t}");
}

#[test]
fn method_not_allowed_names_allow() {
    let req = request(
        "PUT",
        "/v1/payment",
        "application/json",
        body("q2open-card.json"),
    );
    let (e, t, _) = run("q2open", &req);
    let r = e.refusal.as_ref().unwrap();
    assert_eq!((r.status, r.code), (405, "method_not_allowed"));
    assert_eq!(r.allow.as_deref(), Some("POST"));
    assert!(e.findings.is_empty());
    assert!(t.contains("Allow: POST"), "{t}");
}

#[test]
fn too_many_values_and_pass_through_guard() {
    // A card in the query of a pass-through path: the streaming guard blocks it.
    let req = request(
        "GET",
        "/v1/cards?pan=4111111111111111",
        "application/json",
        Vec::new(),
    );
    let (e, t, _) = run("q2open", &req);
    assert_eq!(e.route, Some(1), "{t}");
    assert_eq!(e.routes[0].role, "owner");
    let r = e.refusal.as_ref().unwrap();
    assert_eq!((r.status, r.code), (400, "card_number_detected"), "{t}");
    assert_eq!(e.findings[0].masked, "411111******1111");

    let mut cfg = config("payment_method");
    cfg.limits.max_sensitive_values = vaultgate::config::Positive(1);
    let req = request(
        "POST",
        "/payment-method",
        "application/json",
        br#"{"a":"4242424242424242","b":"4111111111111111"}"#.to_vec(),
    );
    let e = explain(&cfg, &req).unwrap();
    let t = text(&e);
    assert_eq!(
        e.refusal.as_ref().unwrap().code,
        "too_many_sensitive_values",
        "{t}"
    );
    assert!(e.findings.iter().all(|f| f.action == "not_reached"));
    for card in CARDS {
        assert!(!t.contains(card), "{t}");
    }
}

fn binary(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .current_dir(root())
        .arg("explain")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn binary_exit_codes_and_json() {
    let ok = binary(&[
        "--config",
        "examples/config/q2open.toml",
        "--method",
        "POST",
        "--path",
        "/v1/payment",
        "--header",
        "Content-Type: application/json",
        "--body-file",
        "examples/requests/q2open-card.json",
    ]);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{out}");
    assert!(
        out.contains("<token:pan#1>") && out.contains("verdict: forwarded"),
        "{out}"
    );

    let refused = binary(&[
        "--config",
        "examples/config/hostway.toml",
        "--method",
        "POST",
        "--path",
        "/accounts/1/paymentInfo",
        "-H",
        "Content-Type: application/json",
        "--body",
        r#"{"paymentInfoType":"voucher","accountNumber":"4111111111111111"}"#,
        "--json",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(v["refusal"]["code"], "ambiguous_sensitive_field");
    assert_eq!(v["refusal"]["status"], 400);

    let bad = binary(&[
        "--config",
        "examples/config/no-such.toml",
        "--method",
        "POST",
        "--path",
        "/",
    ]);
    assert_eq!(bad.status.code(), Some(2));

    for o in [&ok, &refused, &bad] {
        let all = [o.stdout.as_slice(), o.stderr.as_slice()].concat();
        let s = String::from_utf8_lossy(&all);
        for card in CARDS {
            assert!(!s.contains(card), "{s}");
        }
    }
}
