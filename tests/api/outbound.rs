//! The outbound reveal proxy end to end: tokenize through the inbound proxy, charge
//! through the outbound proxy to a real TLS processor; and everything it refuses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;

use crate::common::*;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vaultgate::demo::echo::{EchoOptions, EchoUpstream};

const CARD: &str = "378282246310005";
const CVV: &str = "218";

async fn charge(outbound: SocketAddr, path: &str, key: Option<&str>, body: &Value) -> Reply {
    let mut req = Request::post(url(outbound, path))
        .header("content-type", "application/json")
        .header("authorization", "Bearer sk_processor_secret");
    if let Some(key) = key {
        req = req.header("proxy-authorization", format!("Bearer {key}"));
    }
    send(
        &http1(),
        req.body(Full::new(Bytes::from(body.to_string()))).unwrap(),
    )
    .await
}

#[tokio::test]
async fn tokenize_inbound_then_charge_through_the_outbound_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("processor");
    let (backend, backend_echo) = EchoUpstream::start().await.unwrap();
    let (processor, processor_echo) = EchoUpstream::start_with(
        "127.0.0.1:0".parse().unwrap(),
        EchoOptions {
            tls: Some(pki.server_config("processor")),
            ..EchoOptions::default()
        },
    )
    .await
    .unwrap();

    let billing = api_client("billing", r#"reveal = ["pan", "cvv"]"#);
    let support = api_client(
        "support",
        r#"reveal = ["pan"]
reveal_masked = ["cvv"]"#,
    );
    let extra = format!(
        r#"
[[routes]]
name = "q2open"
upstream = "backend"
method = "POST"
path = "/v1/payment"
profile = "q2open"
{audit}
[outbound]
listen = "127.0.0.1:0"

[[outbound.routes]]
name = "charges"
method = "POST"
path = "/processor/charges"
strip_prefix = "/processor"
destination = "https://localhost:{port}/api"
ca = "{ca}"
reveal = [
  {{ path = "card.number", class = "pan" }},
  {{ path = "card.cvc", class = "cvv", scope = "card.number" }},
]
{billing}{support}"#,
        audit = audit_toml(&dir.path().join("audit.log")),
        port = processor.port(),
        ca = pki.ca.display(),
        billing = billing.toml,
        support = support.toml,
    );
    let toml = config_toml(&format!("http://{backend}"), &extra);
    // The inbound body limit of the shared helper is too small for q2open.
    let toml = toml.replace("max_body_bytes = 1024", "max_body_bytes = 65536");
    let handle = start(&toml).await;
    let outbound = handle.outbound_addr().unwrap();

    // 1. The inbound proxy tokenizes the q2open card example.
    let (_, path, ctype, body) = vaultgate::demo::run::examples()
        .into_iter()
        .find(|e| e.0 == "q2open card")
        .unwrap();
    let r = send(
        &http1(),
        Request::post(url(handle.proxy_addr(), path))
            .header("content-type", ctype)
            .body(Full::new(Bytes::from(body)))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let stored: Value = serde_json::from_slice(&backend_echo.received()[0].body).unwrap();
    let card = stored["cardNumber"].as_str().unwrap().to_owned();
    let cvc = stored["cardCode"].as_str().unwrap().to_owned();
    assert_ne!(card, CARD);
    assert_ne!(cvc, CVV);
    let charge_body = json!({ "amount": 1250, "card": { "number": card, "cvc": cvc } });

    // 2. Refusals: nothing reaches the processor.
    let r = charge(
        outbound,
        "/elsewhere/charges",
        Some(&billing.key),
        &charge_body,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"]["code"], "forbidden");
    let r = charge(
        outbound,
        "/processor/refunds",
        Some(&billing.key),
        &charge_body,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = charge(outbound, "/processor/charges", None, &charge_body).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = charge(
        outbound,
        "/processor/charges",
        Some(&support.key),
        &charge_body,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The caller's Authorization is the processor's credential, not an identity.
    let r = send(
        &http1(),
        Request::post(url(outbound, "/processor/charges"))
            .header("authorization", format!("Bearer {}", billing.key))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(charge_body.to_string())))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Absolute-form to another host, and CONNECT.
    for head in [
        format!(
            "POST http://evil.example/processor/charges HTTP/1.1\r\nHost: evil.example\r\nProxy-Authorization: Bearer {}\r\nContent-Length: 2\r\n\r\n{{}}",
            billing.key
        ),
        format!(
            "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\nProxy-Authorization: Bearer {}\r\n\r\n",
            billing.key
        ),
    ] {
        let mut s = tokio::net::TcpStream::connect(outbound).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    }
    // A transfer coding other than chunked (501), and two credentials (401).
    let body = charge_body.to_string();
    for (head, status) in [
        (
            format!(
                "POST /processor/charges HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Bearer {}\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                billing.key,
                body.len()
            ),
            "HTTP/1.1 501",
        ),
        (
            format!(
                "POST /processor/charges HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Bearer {}\r\nProxy-Authorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                support.key,
                billing.key,
                body.len()
            ),
            "HTTP/1.1 401",
        ),
    ] {
        let mut s = tokio::net::TcpStream::connect(outbound).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out)).await;
        let text = String::from_utf8_lossy(&out).to_string();
        assert!(text.starts_with(status), "{text}");
    }
    assert!(processor_echo.received().is_empty());

    // 3. The charge: the processor gets the real values over TLS.
    let r = charge(
        outbound,
        "/processor/charges",
        Some(&billing.key),
        &charge_body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let got = processor_echo.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/api/charges");
    let sent: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(sent["card"]["number"], CARD);
    assert_eq!(sent["card"]["cvc"], CVV);
    assert_eq!(sent["amount"], 1250);
    assert_eq!(
        got[0].header("authorization"),
        Some("Bearer sk_processor_secret")
    );
    assert_eq!(got[0].header("proxy-authorization"), None);
    // One request id, given to the processor and back to the caller.
    let id = r
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("a request id on the answer");
    assert_eq!(got[0].header("x-request-id"), Some(id));
    // The processor's response, the echo's JSON of what it received, with the
    // values revealed into the request swapped back for their tokens.
    let echoed = r.json();
    assert_eq!(echoed["path"], "/api/charges");
    let received: String = got[0].body.iter().map(|b| *b as char).collect();
    assert_eq!(
        echoed["body"],
        received.replace(CARD, &card).replace(CVV, &cvc)
    );
    assert!(!holds_raw(&r.body, CARD));

    // 4. The CVV was consumed: a second charge is refused and sends nothing.
    let r = charge(
        outbound,
        "/processor/charges",
        Some(&billing.key),
        &charge_body,
    )
    .await;
    assert_eq!(r.status, StatusCode::GONE);
    assert_eq!(r.json()["error"]["code"], "cvv_expired");
    assert_eq!(processor_echo.received().len(), 1);
    handle.stop().await;

    let log = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    assert!(!log.contains(CARD));
    let reveals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(r#""client":"billing""#) && l.contains(r#""action":"reveal""#))
        .collect();
    assert!(
        reveals
            .iter()
            .any(|l| l.contains(&card) && l.contains(r#""class":"pan""#))
    );
    assert!(
        reveals
            .iter()
            .any(|l| l.contains(&cvc) && l.contains(r#""class":"cvv""#))
    );
    assert!(
        reveals
            .iter()
            .any(|l| l.contains(r#""outcome":"cvv_expired""#))
    );
}
