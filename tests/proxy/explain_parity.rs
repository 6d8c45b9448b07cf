//! `vaultgate explain` says what the proxy does: the same requests go to the real
//! server on a guarded pass-through route and through `explain`, and the verdicts and
//! error codes must agree, with no card in explain's text or JSON (red-team round 3
//! found explain reading with a weaker guard and printing paths and methods as sent).

use crate::common::*;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::Full;
use vaultgate::app;
use vaultgate::config::Config;
use vaultgate::demo::echo::EchoUpstream;
use vaultgate::explain::{self, explain};

const CARD: &str = "4242424242424242";

/// One request for both the proxy and `explain`.
struct Probe {
    what: &'static str,
    method: Method,
    path: String,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
}

fn probe(what: &'static str, method: &str, path: &str, ct: &'static str, body: &[u8]) -> Probe {
    Probe {
        what,
        method: Method::from_bytes(method.as_bytes()).unwrap(),
        path: path.to_owned(),
        headers: vec![("content-type", ct)],
        body: body.to_vec(),
    }
}

#[tokio::test]
async fn explain_says_what_the_proxy_does_on_a_pass_through_route() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let dir = std::env::temp_dir();
    let config = Config::demo("127.0.0.1:0", "127.0.0.1:0", &format!("http://{up}"), &dir).unwrap();
    config.validate().unwrap();
    let server = app::start(&config, test_vault()).await.unwrap();
    let addr = server.proxy_addr();
    let json = "application/json";
    let mut probes = vec![
        // Each of these the proxy refuses and `explain` said it forwarded.
        probe(
            "a card in the path",
            "GET",
            &format!("/pt/{CARD}"),
            json,
            b"",
        ),
        probe(
            "a card in the path, escaped",
            "GET",
            "/pt/%342%342424242424242",
            json,
            b"",
        ),
        probe("a card as the method", CARD, "/pt/a", json, b"{}"),
        probe(
            "a number literal in the query",
            "GET",
            "/pt/a?amount=4242424242424241.9",
            json,
            b"",
        ),
        probe(
            "a JSON escape",
            "POST",
            "/pt/a",
            json,
            br#"{"a":"\u0034242424242424242"}"#,
        ),
        probe(
            "a number literal in the body",
            "POST",
            "/pt/a",
            json,
            br#"{"a":4242424242424241.9}"#,
        ),
        probe(
            "character references between the groups",
            "POST",
            "/pt/a",
            "text/html",
            b"4242&#x2d;4242&#x2d;4242&#x2d;4242",
        ),
        probe(
            "a charset the guard cannot read",
            "POST",
            "/pt/a",
            "text/plain; charset=utf-7",
            b"+ADQAMgA0ADIANAAyADQAMgA0ADIANAAyADQAMgA0ADI-",
        ),
        probe(
            "an entity declaration",
            "POST",
            "/pt/a",
            "application/xml",
            b"<!DOCTYPE a [<!ENTITY e \"4242\">]><a>&e;</a>",
        ),
        probe(
            "a base64 multipart part",
            "POST",
            "/pt/a",
            "multipart/form-data; boundary=XyZ",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"n\"\r\n\
              Content-Transfer-Encoding: base64\r\n\r\nNDI0MjQyNDI0MjQyNDI0Mg==\r\n--XyZ--\r\n",
        ),
        // And these both forward.
        probe(
            "an ordinary body",
            "POST",
            "/pt/a",
            json,
            br#"{"amount":12.5}"#,
        ),
        probe(
            "an ordinary path",
            "GET",
            "/pt/orders/12345?page=2",
            json,
            b"",
        ),
    ];
    let mut gz = probe(
        "a gzip body",
        "POST",
        "/pt/a",
        json,
        &gzip(format!(r#"{{"n":"{CARD}"}}"#).as_bytes()),
    );
    gz.headers.push(("content-encoding", "gzip"));
    probes.push(gz);

    let client = http1();
    for p in &probes {
        let mut req = Request::builder()
            .method(p.method.clone())
            .uri(url(addr, &p.path));
        let mut headers = HeaderMap::new();
        for (name, value) in &p.headers {
            req = req.header(*name, *value);
            headers.append(*name, HeaderValue::from_static(value));
        }
        let before = echo.received().len();
        let reply = send(
            &client,
            req.body(Full::new(Bytes::from(p.body.clone()))).unwrap(),
        )
        .await;
        let forwarded = echo.received().len() > before;

        let e = explain(
            &config,
            &explain::Request {
                method: p.method.clone(),
                path: p.path.clone(),
                headers,
                body: p.body.clone(),
            },
        )
        .unwrap();
        let shown = explain::text(&e);
        match &e.refusal {
            None => {
                assert!(
                    forwarded,
                    "{}: explain forwards, the proxy answered {}",
                    p.what, reply.status
                );
                assert_eq!(reply.status, StatusCode::OK, "{}", p.what);
            }
            Some(r) => {
                assert!(
                    !forwarded,
                    "{}: explain refuses, the proxy forwarded\n{shown}",
                    p.what
                );
                assert_eq!(
                    (r.status, r.code.to_owned()),
                    (reply.status.as_u16(), code(&reply)),
                    "{}: explain and the proxy differ\n{shown}",
                    p.what
                );
            }
        }
        let json = serde_json::to_string(&e).unwrap();
        for out in [&shown, &json] {
            assert!(
                !holds_raw(out.as_bytes(), CARD),
                "{}: explain shows the card\n{out}",
                p.what
            );
        }
    }
    echo.stop().await;
}
