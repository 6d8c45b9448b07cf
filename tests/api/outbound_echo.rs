//! The processor's echo: a value the outbound proxy revealed into a request, quoted
//! back in the processor's answer (a JSON echo, an error text, a header, gzip, split
//! between chunks, in groups, escaped, in a redirect URL), reaches the caller as its
//! token, never raw; where it cannot be swapped in place the answer is refused.
//!
//! The processor is a real TLS server made here (HTTP/1.1), answering with the card it
//! received in the shape its path names, and the path it was sent to in
//! `x-processor-path`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt as _;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};
use tokio::sync::watch;
use vaultgate::app::ServerHandle;
use vaultgate::net::body::{Body, BoxError, full};
use vaultgate::net::listener::{self, ListenerOptions};

use crate::common::*;

pub const CARD: &str = "4242424242424242";
pub const CVV: &str = "218";

/// A vaultgate with an outbound route to the echoing processor (`/processor/*`) and
/// `extra_routes` (whose `{port}` and `{ca}` name it), and a client that may tokenize
/// and reveal.
pub struct Fixture {
    pub handle: ServerHandle,
    pub outbound: SocketAddr,
    pub key: String,
    /// The audit log.
    pub audit: std::path::PathBuf,
    /// The processor's port (on `localhost`).
    pub processor_port: u16,
    _processor: watch::Sender<bool>,
    _pki: Pki,
    _dir: tempfile::TempDir,
}

impl Fixture {
    pub async fn start(extra_routes: &str) -> Fixture {
        Fixture::start_with(extra_routes, "").await
    }

    /// [`Fixture::start`] with more `[limits]` lines.
    pub async fn start_with(extra_routes: &str, limits: &str) -> Fixture {
        Fixture::start_on(extra_routes, limits, answer).await
    }

    /// [`Fixture::start_with`] with a processor that answers with `handler`.
    pub async fn start_on<H, F>(extra_routes: &str, limits: &str, handler: H) -> Fixture
    where
        H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Result<Response<Body>, std::convert::Infallible>> + Send + 'static,
    {
        let dir = tempfile::tempdir().unwrap();
        let audit = dir.path().join("audit.log");
        let pki = Pki::new("processor");
        let (port, stop) = processor(&pki, handler).await;
        let client = api_client(
            "billing",
            r#"reveal = ["pan", "cvv"]
tokenize = ["pan", "cvv"]"#,
        );
        let extra = format!(
            r#"
[outbound]
listen = "127.0.0.1:0"

[[outbound.routes]]
name = "echoes"
path = "/processor/*"
strip_prefix = "/processor"
destination = "https://localhost:{port}/api"
ca = "{ca}"
reveal = [
  {{ path = "card.number", class = "pan" }},
  {{ path = "card.cvc", class = "cvv", scope = "card.number" }},
]
reveal_headers = [{{ name = "x-card", class = "pan" }}]

{extra}
{audit}{client}"#,
            audit = audit_toml(&audit),
            ca = pki.ca.display(),
            client = client.toml,
            extra = extra_routes
                .replace("{port}", &port.to_string())
                .replace("{ca}", &pki.ca.display().to_string()),
        );
        let toml = config_toml("http://127.0.0.1:9", &extra).replace(
            "max_body_bytes = 1024",
            &format!("max_body_bytes = 65536\n{limits}"),
        );
        let handle = start(&toml).await;
        let outbound = handle.outbound_addr().unwrap();
        Fixture {
            handle,
            outbound,
            key: client.key,
            audit,
            processor_port: port,
            _processor: stop,
            _pki: pki,
            _dir: dir,
        }
    }

    /// A token for `value` of `class`, from the vault API.
    pub async fn token(&self, class: &str, value: &str) -> String {
        self.tokenize(json!({ "class": class, "value": value }))
            .await
    }

    /// A token for one `{"class","value",…}` of the vault API.
    pub async fn tokenize(&self, item: Value) -> String {
        let r = api(
            self.handle.api_addr(),
            "POST",
            "/v1/tokenize",
            &self.key,
            json!({ "values": [item] }),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        r.json()["results"][0]["token"].as_str().unwrap().to_owned()
    }

    /// `vaultgate_outbound_echoes_total{route="echoes",outcome}` from `/metrics`.
    pub async fn echoes(&self, outcome: &str) -> u64 {
        let m = call(self.handle.api_addr(), "GET", "/metrics", None, Value::Null).await;
        let text = String::from_utf8_lossy(&m.body).into_owned();
        let prefix =
            format!("vaultgate_outbound_echoes_total{{route=\"echoes\",outcome=\"{outcome}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0, |n| n.trim().parse().unwrap())
    }

    /// POST `body` to `path` on the outbound proxy as the client.
    pub async fn send(&self, path: &str, body: &Value) -> Reply {
        send(
            &http1(),
            Request::post(url(self.outbound, path))
                .header("content-type", "application/json")
                .header("proxy-authorization", format!("Bearer {}", self.key))
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap(),
        )
        .await
    }
}

/// Every place the caller got: the body and each header value.
pub fn answer_bytes(r: &Reply) -> Vec<u8> {
    let mut all = r.body.to_vec();
    for (name, value) in &r.headers {
        all.extend_from_slice(b"\n");
        all.extend_from_slice(name.as_str().as_bytes());
        all.extend_from_slice(b": ");
        all.extend_from_slice(value.as_bytes());
    }
    all
}

/// Start the processor on `127.0.0.1:0` with TLS for `localhost`.
async fn processor<H, F>(pki: &Pki, handler: H) -> (u16, watch::Sender<bool>)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<Body>, std::convert::Infallible>> + Send + 'static,
{
    let tcp = listener::bind("processor", "127.0.0.1:0".parse().unwrap()).unwrap();
    let port = tcp.local_addr().unwrap().port();
    let (stop, rx) = watch::channel(false);
    // HTTP/1.1 only: an HTTP/1 answer has a reason phrase to echo a card in.
    let mut tls = (*pki.server_config("processor")).clone();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let opts = ListenerOptions {
        max_connections: 64,
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        tls: Some(Arc::new(arc_swap::ArcSwap::new(Arc::new(tls)))),
        open: None,
        grace: Duration::from_secs(1),
        h2_max_concurrent_streams: 100,
    };
    let _task = listener::spawn("processor", tcp, opts, rx, move |_conn, req| handler(req));
    (port, stop)
}

/// The card digits in groups of four.
pub fn grouped(card: &str, sep: &str) -> String {
    card.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(sep)
}

/// The processor: reads `card.number` (or the `x-card` header) it was sent and
/// quotes it back in the shape the path's last segment names.
async fn answer(req: Request<Incoming>) -> Result<Response<Body>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let sent: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let card = sent["card"]["number"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| {
            parts
                .headers
                .get("x-card")
                .map(|v| v.to_str().unwrap().to_owned())
        })
        .unwrap_or_default();
    let cvc = sent["card"]["cvc"].as_str().unwrap_or_default().to_owned();
    let shape = parts.uri.path().rsplit('/').next().unwrap_or_default();
    let json_echo = json!({
        "id": "ch_1",
        "amount": sent["amount"],
        "source": { "number": card, "cvc": cvc },
    })
    .to_string();
    // Where the request arrived, for the route-confusion tests.
    let mut res = Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("x-processor-path", parts.uri.path());
    if let Some(host) = parts.headers.get("host") {
        res = res.header("x-host", host);
    }
    if let Some(accepted) = parts.headers.get("accept-encoding") {
        res = res.header("x-accepted", accepted);
    }
    let body = match shape {
        "json" => full(json_echo),
        "error" => {
            res = res
                .status(402)
                .header("content-type", "text/plain; charset=utf-8");
            full(format!("card {card} declined: insufficient funds"))
        }
        "header" => {
            res = res.header("x-card-echo", format!("card={card}"));
            full("{}")
        }
        "gzip" => {
            res = res.header("content-encoding", "gzip");
            full(gzip(json_echo.as_bytes()))
        }
        "chunks" => {
            let text = format!(r#"{{"message":"card {card} declined"}}"#);
            let (a, b) = text.split_at(text.find(&card).unwrap() + 7);
            let pieces = vec![Bytes::from(a.to_owned()), Bytes::from(b.to_owned())];
            let stream = futures_util::stream::iter(pieces).then(|p| async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok::<_, BoxError>(Frame::data(p))
            });
            StreamBody::new(stream.boxed()).boxed_unsync()
        }
        "spaced" => full(format!(
            r#"{{"message":"card {} declined","also":"{}"}}"#,
            grouped(&card, " "),
            grouped(&card, "-")
        )),
        "escaped" => {
            let esc: String = card
                .chars()
                .map(|c| format!("\\u{:04x}", c as u32))
                .collect();
            full(format!(r#"{{"source":{{"number":"{esc}"}}}}"#))
        }
        "redirect" => {
            let pct: String = card.bytes().map(|b| format!("%{b:02X}")).collect();
            let location = format!("https://acs.example/3ds?pan={pct}&return=1");
            res = res
                .status(302)
                .header("location", location.clone())
                .header("content-type", "text/html");
            full(format!(r#"<a href="{location}">continue</a>"#))
        }
        "base64" => {
            let blob = base64::engine::general_purpose::STANDARD.encode(&json_echo);
            full(json!({ "blob": blob }).to_string())
        }
        "reason" => {
            res = res.status(402).extension(
                hyper::ext::ReasonPhrase::try_from(format!("Card {card} Declined").into_bytes())
                    .unwrap(),
            );
            full("{}")
        }
        "empty-gzip" => {
            res = res.status(204).header("content-encoding", "gzip");
            full(Bytes::new())
        }
        "brotli" => {
            res = res.header("content-encoding", "br");
            full(format!("not really brotli {card}"))
        }
        _ => full(r#"{"status":"succeeded"}"#),
    };
    Ok(res.body(body).unwrap())
}

/// The charge body for a card token.
fn charge(token: &str) -> Value {
    json!({ "amount": 1250, "card": { "number": token } })
}

#[tokio::test]
async fn a_processor_echo_reaches_the_caller_as_the_token() {
    let f = Fixture::start("").await;
    let token = f.token("pan", CARD).await;
    assert_ne!(token, CARD);
    let before = f.echoes("swapped").await;

    // A JSON echo of the submitted number.
    let r = f.send("/processor/charges/json", &charge(&token)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["source"]["number"], token.as_str());
    assert!(!holds_raw(&answer_bytes(&r), CARD), "{:?}", r.body);
    assert_eq!(
        r.headers.get("content-length").unwrap().to_str().unwrap(),
        r.body.len().to_string()
    );

    // An error text quoting the card.
    let r = f.send("/processor/charges/error", &charge(&token)).await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(
        std::str::from_utf8(&r.body).unwrap(),
        format!("card {token} declined: insufficient funds")
    );

    // A header quoting it.
    let r = f.send("/processor/charges/header", &charge(&token)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers.get("x-card-echo").unwrap().to_str().unwrap(),
        format!("card={token}")
    );
    assert!(!holds_raw(&answer_bytes(&r), CARD));

    // Digits in groups of four, spaced and dashed: the token in the same groups.
    let r = f.send("/processor/charges/spaced", &charge(&token)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json()["message"],
        format!("card {} declined", grouped(&token, " "))
    );
    assert_eq!(r.json()["also"], grouped(&token, "-"));
    assert!(!holds_raw(&answer_bytes(&r), CARD));

    // JSON `\u` escapes of every digit.
    let r = f.send("/processor/charges/escaped", &charge(&token)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["source"]["number"], token.as_str());

    // Percent-encoded in a 3-D Secure redirect, in Location and the HTML body.
    let r = f.send("/processor/charges/redirect", &charge(&token)).await;
    assert_eq!(r.status, StatusCode::FOUND);
    let location = r.headers.get("location").unwrap().to_str().unwrap();
    assert_eq!(
        location,
        format!("https://acs.example/3ds?pan={token}&return=1")
    );
    assert!(!holds_raw(&answer_bytes(&r), CARD));

    // The same card revealed from a header.
    let r = send(
        &http1(),
        Request::post(url(f.outbound, "/processor/charges/header"))
            .header("proxy-authorization", format!("Bearer {}", f.key))
            .header("x-card", token.as_str())
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers.get("x-card-echo").unwrap().to_str().unwrap(),
        format!("card={token}")
    );

    assert_eq!(f.echoes("swapped").await - before, 7);
    f.handle.stop().await;
}

#[tokio::test]
async fn a_compressed_or_chunked_echo_is_read_whole_and_swapped() {
    let f = Fixture::start("").await;
    let token = f.token("pan", CARD).await;

    // gzip: decompressed, swapped, compressed again.
    let r = f.send("/processor/charges/gzip", &charge(&token)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers.get("content-encoding").unwrap(), "gzip");
    assert!(!holds_raw(&r.body, CARD));
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&r.body[..]), &mut text)
        .unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["source"]["number"], token.as_str());

    // The card split between two chunks sent 50 ms apart.
    let r = f.send("/processor/charges/chunks", &charge(&token)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["message"], format!("card {token} declined"));
    assert!(!holds_raw(&r.body, CARD));
    f.handle.stop().await;
}

#[tokio::test]
async fn a_request_that_reveals_asks_only_for_codings_the_swap_reads() {
    let f = Fixture::start("").await;
    let token = f.token("pan", CARD).await;
    for (sent, asked) in [
        ("br, gzip;q=0.5, zstd", "gzip;q=0.5"),
        ("br", "identity"),
        ("gzip, deflate", "gzip, deflate"),
    ] {
        let r = send(
            &http1(),
            Request::post(url(f.outbound, "/processor/charges/ok"))
                .header("content-type", "application/json")
                .header("proxy-authorization", format!("Bearer {}", f.key))
                .header("accept-encoding", sent)
                .body(Full::new(Bytes::from(charge(&token).to_string())))
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers.get("x-accepted").unwrap(), asked, "{sent}");
    }
    f.handle.stop().await;
}

#[tokio::test]
async fn an_echo_that_cannot_be_swapped_is_refused_whole() {
    let f = Fixture::start("").await;
    let token = f.token("pan", CARD).await;

    // Inside base64: no swap in place; 502, nothing of the answer.
    let r = f.send("/processor/charges/base64", &charge(&token)).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.json()["error"]["code"], "echo_unswappable");
    assert!(!holds_raw(&answer_bytes(&r), CARD));

    // A content coding the proxy cannot undo: not passed unread.
    let r = f.send("/processor/charges/brotli", &charge(&token)).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.json()["error"]["code"], "echo_unchecked");
    assert!(!holds_raw(&answer_bytes(&r), CARD));
    assert_eq!(f.echoes("refused").await, 2);

    // An empty answer in a coding has nothing to check.
    let r = f
        .send("/processor/charges/empty-gzip", &charge(&token))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    // An answer with nothing revealed in it passes unchanged.
    let r = f.send("/processor/charges/ok", &charge(&token)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], br#"{"status":"succeeded"}"#);
    f.handle.stop().await;
}

#[tokio::test]
async fn the_cvv_echoed_comes_back_as_its_token() {
    let f = Fixture::start("").await;
    let token = f.token("pan", CARD).await;
    let cvv = f
        .tokenize(json!({ "class": "cvv", "value": CVV, "scope": token }))
        .await;
    let body = json!({ "amount": 218, "card": { "number": token, "cvc": cvv } });
    let r = f.send("/processor/charges/json", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let v = r.json();
    assert_eq!(v["source"]["number"], token.as_str());
    assert_eq!(v["source"]["cvc"], cvv.as_str());
    // A bare number equal to the CVV is an amount here, and stays one.
    assert_eq!(v["amount"], 218);
    f.handle.stop().await;
}

#[tokio::test]
async fn a_route_that_opts_out_of_both_passes_the_echo_raw() {
    let f = Fixture::start(
        r#"
[[outbound.routes]]
name = "raw"
path = "/raw/*"
strip_prefix = "/raw"
destination = "https://localhost:{port}/api"
ca = "{ca}"
reveal = [{ path = "card.number", class = "pan" }]
swap_echoes = false
answer_guard = "off"
"#,
    )
    .await;
    let token = f.token("pan", CARD).await;
    let r = f.send("/raw/charges/json", &charge(&token)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["source"]["number"], CARD);
    f.handle.stop().await;
}
