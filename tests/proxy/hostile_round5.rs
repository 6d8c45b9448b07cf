//! Red-team round 5: the channels other than the forwarded body. `vaultgate explain`
//! printed a body or query it let through with only the plainly written cards
//! masked: one in an escape, in full-width digits or behind a no-break space was
//! printed as sent. JSON log lines at `trace` and vaultgate's own answers, with a card
//! in every place a request can carry one, on all three listeners, hold none.

use http::{HeaderMap, HeaderValue, Method};
use vaultgate::config::Config;
use vaultgate::explain::{self, explain};

use crate::common::*;

const CARD: &str = "4242424242424242";

/// Routes whose guard lets a card through (`detect`, `off`, `leak_guard = "allow"`)
/// and a blocking one.
const EXPLAIN_ROUTES: &str = r#"
[[routes]]
name = "allow"
upstream = "backend"
method = "POST"
path = "/allow"
fields = [{ path = "card", class = "pan" }]
leak_guard = "allow"

[[routes]]
name = "detect"
upstream = "backend"
path = "/detect/*"
stream_guard = "detect"

[[routes]]
name = "off"
upstream = "backend"
path = "/off/*"
stream_guard = "off"

[[routes]]
name = "pass"
upstream = "backend"
path = "/pass/*"
"#;

/// The card in spellings a human reading explain's output decodes at a glance.
fn spellings() -> Vec<String> {
    let full_width: String = CARD
        .chars()
        .map(|c| char::from_u32(0xFF10 + c.to_digit(10).unwrap()).unwrap())
        .collect();
    vec![
        "4242 4242 4242 4242".to_owned(),
        full_width,
        "4242\u{a0}4242\u{a0}4242\u{a0}4242".to_owned(),
        "&#52;242424242424242".to_owned(),
        "\\u0034242424242424242".to_owned(),
        "4242%204242%204242%204242".to_owned(),
        "%342%342424242424242".to_owned(),
    ]
}

/// Whether `out` shows the card in any reading (full-width digits read as ASCII).
fn shows(out: &str) -> bool {
    let folded: String = out
        .chars()
        .map(|c| match c as u32 {
            d @ 0xFF10..=0xFF19 => char::from_u32(d - 0xFF10 + u32::from(b'0')).unwrap(),
            _ => c,
        })
        .collect();
    holds_raw(out.as_bytes(), CARD) || holds_raw(folded.as_bytes(), CARD)
}

#[test]
fn explain_prints_no_card_in_any_spelling() {
    let config = Config::from_toml_str(&config_toml("http://127.0.0.1:9", EXPLAIN_ROUTES)).unwrap();
    config.validate().unwrap();
    let mut json = HeaderMap::new();
    json.insert("content-type", HeaderValue::from_static("application/json"));
    let mut text = HeaderMap::new();
    text.insert("content-type", HeaderValue::from_static("text/plain"));
    for s in spellings() {
        let escaped = s.replace('\\', "\\\\");
        let cases = [
            ("/allow", &json, format!(r#"{{"note":"{escaped}"}}"#)),
            ("/detect/a", &text, s.clone()),
            ("/off/a", &text, s.clone()),
            ("/pass/a", &text, s.clone()),
        ];
        for (path, headers, body) in cases {
            for (path, body) in [
                (path.to_owned(), body.into_bytes()),
                (format!("{path}?n={}", s.replace(' ', "%20")), Vec::new()),
            ] {
                let Ok(e) = explain(
                    &config,
                    &explain::Request {
                        method: Method::POST,
                        path: path.clone(),
                        headers: headers.clone(),
                        body,
                    },
                ) else {
                    continue;
                };
                let shown = explain::text(&e);
                let as_json = serde_json::to_string(&e).unwrap();
                for out in [&shown, &as_json] {
                    assert!(
                        !shows(out),
                        "{path} with {s:?}: explain shows the card\n{out}"
                    );
                }
            }
        }
    }
}

/// Every place a request can carry a card, on the proxy, the vault API and the
/// outbound proxy, each forced into an error where one can be: the real binary at
/// `trace` with JSON lines, its stderr read whole after a clean stop. No line holds a
/// card in any reading, and no answer vaultgate wrote (anything but an upstream's
/// 200) does either: the reveal answer echoed a failed "token" holding a card written
/// with an escape (`%34242…`).
#[tokio::test]
async fn json_logs_and_error_answers_hold_no_card_from_any_place() {
    use crate::common::binary::{VaultDir, free_port, wait_listening};
    use std::time::Duration;
    use vaultgate::demo::echo::EchoUpstream;

    let (up, echo) = EchoUpstream::start().await.unwrap();
    // A port nothing listens on: a dead upstream.
    let dead = free_port();
    let c = api_client("checkout", "reveal = [\"pan\"]\ntokenize = [\"pan\"]");
    let v = VaultDir::init();
    let (proxy, api, outbound) = (free_port(), free_port(), free_port());
    let rest = format!(
        "[limits]\nmax_body_bytes = 1024\nupstream_timeout_ms = 2000\n\
         [[upstreams]]\nname = \"backend\"\nurl = \"http://{up}\"\n\
         [[upstreams]]\nname = \"dead\"\nurl = \"http://{dead}\"\n\
         [[routes]]\nname = \"dead\"\nupstream = \"dead\"\npath = \"/dead/*\"\n\
         [[routes]]\nname = \"detect\"\nupstream = \"backend\"\npath = \"/detect/*\"\n\
         stream_guard = \"detect\"\n{ROUTES}\n\
         [outbound]\nlisten = \"{outbound}\"\n\
         [[outbound.routes]]\nname = \"charges\"\nmethod = \"POST\"\n\
         path = \"/processor/*\"\nstrip_prefix = \"/processor\"\n\
         destination = \"http://{up}\"\nreveal = [{{ path = \"card\", class = \"pan\" }}]\n\
         reveal_headers = [{{ name = \"x-card\", class = \"pan\" }}]\n{}",
        c.toml
    );
    let config = v.write_config(proxy, api, &rest);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("level = \"warn\"", "level = \"trace\"\nformat = \"json\""),
    )
    .unwrap();
    let mut child = v.serve(&config);
    wait_listening(&mut child, proxy, Duration::from_secs(20)).await;
    wait_listening(&mut child, outbound, Duration::from_secs(5)).await;

    let key = format!("Bearer {}", c.key);
    let spaced = "4242 4242 4242 4242";
    // Header lines that carry the card; each goes with every target below.
    let heads: Vec<Vec<u8>> = vec![
        format!("x-{CARD}: a\r\n").into_bytes(),
        format!("x-card: {spaced}\r\n").into_bytes(),
        format!("cookie: pan={CARD}; other=1\r\n").into_bytes(),
        format!("authorization: Bearer {CARD}\r\n").into_bytes(),
        format!("proxy-authorization: Bearer {CARD}\r\n").into_bytes(),
        format!("x-forwarded-for: {CARD}\r\nx-forwarded-host: {CARD}.example\r\n").into_bytes(),
        format!("traceparent: 00-{CARD}aaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01\r\n").into_bytes(),
        format!("tracestate: vg={CARD}\r\n").into_bytes(),
        [format!("x-card: {CARD}").as_bytes(), b"\xff\r\n"].concat(),
        format!("content-type: application/json; charset={CARD}\r\n").into_bytes(),
        format!("content-encoding: {CARD}\r\n").into_bytes(),
        format!("transfer-encoding: {CARD}, chunked\r\n").into_bytes(),
        format!("expect: 100-{CARD}\r\n").into_bytes(),
        format!("x-http-method-override: {CARD}\r\n").into_bytes(),
    ];
    let targets = [
        (proxy, "POST", "/pass/x".to_owned()),
        (proxy, "POST", "/detect/x".to_owned()),
        (proxy, "POST", "/tokenize".to_owned()),
        (proxy, "POST", "/dead/x".to_owned()),
        (proxy, "POST", format!("/nowhere/{CARD}")),
        (api, "POST", "/v1/tokenize".to_owned()),
        (api, "GET", format!("/v1/tokens/{CARD}")),
        (outbound, "POST", "/processor/charges".to_owned()),
    ];
    let mut answers: Vec<(std::net::SocketAddr, String, Vec<u8>)> = Vec::new();
    for (addr, method, path) in &targets {
        let auth = if *addr == outbound {
            "proxy-authorization"
        } else {
            "authorization"
        };
        let body = r#"{"card":"4111111111111111"}"#;
        for head in &heads {
            let mut req = format!(
                "{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n",
                body.len()
            )
            .into_bytes();
            let text = String::from_utf8_lossy(head);
            if !text.starts_with("content-type") {
                req.extend_from_slice(b"content-type: application/json\r\n");
            }
            if !text.contains("authorization") {
                req.extend_from_slice(format!("{auth}: {key}\r\n").as_bytes());
            }
            req.extend_from_slice(head);
            req.extend_from_slice(b"connection: close\r\n\r\n");
            req.extend_from_slice(body.as_bytes());
            answers.push((
                *addr,
                format!("{method} {path} {text}"),
                raw(*addr, &req).await,
            ));
        }
    }
    // Bodies that fail at each stage, and places in the request line.
    let bodies: Vec<(std::net::SocketAddr, String, &str, Vec<u8>)> = vec![
        (proxy, "/tokenize".into(), "application/json", format!(r#"{{"card":"{CARD}","#).into_bytes()),
        (proxy, "/tokenize".into(), "application/json", format!(r#"{{"{CARD}":"x"}}"#).into_bytes()),
        (proxy, "/tokenize".into(), "application/json", [format!(r#"{{"card":"{CARD}"#).as_bytes(), b"\xff\"}"].concat()),
        (proxy, "/tokenize".into(), "application/json", CARD.repeat(100).into_bytes()),
        (proxy, "/tokenize".into(), "multipart/form-data; boundary=XyZ",
            format!("--XyZ\r\nContent-Disposition: form-data; name=\"{CARD}\"; filename=\"{spaced}.txt\"\r\n\r\nx\r\n--XyZ--\r\n").into_bytes()),
        (proxy, format!("/tokenize?pan={CARD}"), "application/json", b"{}".to_vec()),
        (proxy, "/pass/x".into(), "application/json", format!(r#"{{"n":"{spaced}"}}"#).into_bytes()),
        (proxy, "/pass/x".into(), "multipart/form-data; boundary=XyZ",
            format!("--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\nContent-Transfer-Encoding: {CARD}\r\n\r\nx\r\n--XyZ--\r\n").into_bytes()),
        (proxy, format!("/dead/{CARD}?pan={CARD}"), "application/json", format!(r#"{{"card":"{CARD}"}}"#).into_bytes()),
        (api, "/v1/tokenize".into(), "application/json", format!(r#"{{"values":[{{"class":"pan","value":"{CARD}x"}}]}}"#).into_bytes()),
        (api, "/v1/tokenize".into(), "application/json", format!(r#"{{"values":[{{"class":"{CARD}","value":"1"}}]}}"#).into_bytes()),
        (api, "/v1/tokenize".into(), "application/json", format!(r#"{{"values":[{{"class":"pan","value":"4111111111111111","format":"{CARD}"}}]}}"#).into_bytes()),
        (api, "/v1/detokenize".into(), "application/json", format!(r#"{{"tokens":["{CARD}","tok_{CARD}abcdef","%34242424242424242"]}}"#).into_bytes()),
        (api, "/v1/detokenize".into(), "application/json", format!(r#"{{"tokens":"{CARD}"}}"#).into_bytes()),
        (outbound, "/processor/charges".into(), "application/json", format!(r#"{{"card":"{CARD}"}}"#).into_bytes()),
        (outbound, "/processor/charges".into(), "application/json", format!(r#"{{"card":"tok_{CARD}abcdef"}}"#).into_bytes()),
        (outbound, format!("/processor/{CARD}"), "application/json", b"{}".to_vec()),
        (outbound, "/elsewhere".into(), "application/json", format!(r#"{{"card":"{CARD}"}}"#).into_bytes()),
    ];
    for (addr, path, ct, body) in &bodies {
        let auth = if *addr == outbound {
            "proxy-authorization"
        } else {
            "authorization"
        };
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: {ct}\r\n{auth}: {key}\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        answers.push((
            *addr,
            format!("{path} {}", String::from_utf8_lossy(body)),
            raw(*addr, &req).await,
        ));
    }
    // Chunk extensions and trailers; an absolute-form target; a card as the method.
    for addr in [proxy, api, outbound] {
        let chunked = format!(
            "POST /pass/x HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
             2;ext={CARD}\r\n{{}}\r\n0\r\nx-trailer: {CARD}\r\n\r\n"
        );
        answers.push((addr, "chunked".into(), raw(addr, chunked.as_bytes()).await));
        let absolute = format!(
            "POST http://{CARD}.example/pass/x HTTP/1.1\r\nhost: {CARD}.example\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        answers.push((
            addr,
            "absolute".into(),
            raw(addr, absolute.as_bytes()).await,
        ));
        let method = format!(
            "{CARD} /pass/x HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        answers.push((addr, "method".into(), raw(addr, method.as_bytes()).await));
    }
    // HTTP/2 (prior knowledge): a card in a header name, a value, a cookie and the
    // authority.
    for addr in [proxy, api, outbound] {
        for path in [
            "/pass/x",
            "/tokenize",
            "/v1/detokenize",
            "/processor/charges",
        ] {
            let req = http::Request::post(format!("http://{CARD}.example{path}"))
                .header(format!("x-{CARD}"), "a")
                .header("x-card", spaced)
                .header("cookie", format!("pan={CARD}"))
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(bytes::Bytes::from(format!(
                    r#"{{"card":"{CARD}""#
                ))))
                .unwrap();
            answers.push((addr, format!("h2 {path}"), h2(addr, req).await));
        }
    }

    // A reveal that goes out: the echo upstream, as the processor, reflects the card
    // it was sent; the caller gets the token back (the echo swap), and no log line,
    // at trace, shows the card on its way out or back.
    let r = crate::common::api(
        api,
        "POST",
        "/v1/tokenize",
        &c.key,
        serde_json::json!({ "values": [{ "class": "pan", "value": CARD }] }),
    )
    .await;
    let token = r.json()["results"][0]["token"].as_str().unwrap().to_owned();
    let body = format!(r#"{{"card":"{token}"}}"#);
    let req = format!(
        "POST /processor/charges HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         proxy-authorization: {key}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = raw(outbound, req.as_bytes()).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains(&token), "{text}");
    assert!(!holds_raw(&answer, CARD), "the echo shows the card: {text}");
    assert!(
        echo.received()
            .iter()
            .any(|r| r.body.as_ref() == format!(r#"{{"card":"{CARD}"}}"#).as_bytes())
    );

    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(child.wait().unwrap().success());
    echo.stop().await;

    for (addr, what, answer) in &answers {
        let text = String::from_utf8_lossy(answer);
        // An upstream's answer (the echo reflects what it got) is not vaultgate's; the
        // vault API's answers all are.
        if *addr != api && (text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/2.0 200")) {
            continue;
        }
        assert!(
            !holds_raw(answer, CARD),
            "{what}: the answer shows the card\n{text}"
        );
    }
    let logs = v.serve_log();
    assert!(logs.contains(r#""target":"vaultgate::access""#), "{logs}");
    let as_bytes = format!("{:?}", CARD.as_bytes());
    let as_bytes = as_bytes.trim_start_matches('[').trim_end_matches(']');
    for line in logs.lines() {
        assert!(
            !holds_raw(line.as_bytes(), CARD) && !line.contains(as_bytes),
            "a log line shows the card: {line}"
        );
    }
}

/// Send raw bytes, read the whole answer (at most 5 s).
async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out)).await;
    out
}

/// Send one HTTP/2 request over a connection of its own; the answer's status line,
/// headers and body as text.
async fn h2(
    addr: std::net::SocketAddr,
    req: http::Request<http_body_util::Full<bytes::Bytes>>,
) -> Vec<u8> {
    use http_body_util::BodyExt as _;
    let io = hyper_util::rt::TokioIo::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .unwrap();
    tokio::spawn(conn);
    let Ok(res) = sender.send_request(req).await else {
        return Vec::new();
    };
    let head = format!(
        "HTTP/2.0 {} {:?}\r\n\r\n",
        res.status().as_u16(),
        res.headers()
    );
    let body = res
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    [head.as_bytes(), &body].concat()
}

/// The store's files after a SIGKILL mid-load, through the real binary on sled and
/// fjall with durable CVVs: no card or CVV that went through a rules route is in any
/// file of the vault directory (store, journal, audit log, stderr) in plain, UTF-16,
/// base64, hex or packed BCD.
#[tokio::test]
async fn no_value_in_the_vault_dir_after_a_sigkill_on_sled_or_fjall() {
    for store in ["sled", "fjall"] {
        no_value_after_sigkill(store).await;
    }
}

async fn no_value_after_sigkill(store: &'static str) {
    use crate::common::binary::{VaultDir, free_port, wait_listening};
    use std::time::Duration;
    use vaultgate::demo::echo::EchoUpstream;

    let (up, echo) = EchoUpstream::start().await.unwrap();
    let v = VaultDir::init_on(store);
    let (proxy, api) = (free_port(), free_port());
    let rest = format!(
        "[[upstreams]]\nname = \"backend\"\nurl = \"http://{up}\"\n\
         [[routes]]\nname = \"pay\"\nupstream = \"backend\"\nmethod = \"POST\"\npath = \"/pay\"\n\
         fields = [{{ path = \"card\", class = \"pan\" }}, \
         {{ path = \"cvv\", class = \"cvv\", scope = \"card\" }}, \
         {{ path = \"account\", class = \"bank_account\" }}]\n"
    );
    let config = v.write_config(proxy, api, &rest);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "cache_capacity_mb = 16",
            "cache_capacity_mb = 16\ncvv_durable = true",
        ),
    )
    .unwrap();
    let mut child = v.serve(&config);
    wait_listening(&mut child, proxy, Duration::from_secs(20)).await;
    let values = [
        ("4242424242424242", "7319", "12345678901236491"),
        ("4111111111111111", "8204", "99001122334455"),
        ("5555555555554444", "6138", "77665544332211"),
        ("378282246310005", "9417", "55443322110099"),
    ];
    for (card, cvv, account) in values {
        let r = post(
            proxy,
            "/pay",
            "application/json",
            format!(r#"{{"card":"{card}","cvv":"{cvv}","account":"{account}"}}"#),
        )
        .await;
        assert_eq!(r.status, http::StatusCode::OK, "{:?}", r.body);
    }
    // Killed mid-write: a request in flight while the process dies.
    let load = tokio::spawn(async move {
        for _ in 0..50 {
            let _ = post(
                proxy,
                "/pay",
                "application/json",
                r#"{"card":"4242424242424242","cvv":"7319"}"#,
            )
            .await;
        }
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    child.kill().unwrap();
    let _ = child.wait();
    let _ = load.await;
    echo.stop().await;

    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for (card, cvv, account) in values {
        for value in [card, account] {
            needles.extend(encodings(value).into_iter().map(|e| (value.to_owned(), e)));
        }
        // A CVV is too short to find alone: look for it after its card.
        needles.push((cvv.to_owned(), format!("{card}{cvv}").into_bytes()));
    }
    for file in files_under(v.dir.path()) {
        if file.ends_with("vaultgate.toml") {
            continue;
        }
        let bytes = std::fs::read(&file).unwrap();
        for (value, needle) in &needles {
            assert!(
                memchr::memmem::find(&bytes, needle).is_none(),
                "{store}: {value} in {} as {needle:?}",
                file.display()
            );
        }
    }
}

/// A value as bytes in the encodings a store or a dump might hold it in.
fn encodings(v: &str) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let utf16le: Vec<u8> = v.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let bcd: Vec<u8> = v
        .as_bytes()
        .chunks(2)
        .map(|c| ((c[0] & 0x0f) << 4) | c.get(1).map_or(0xf, |d| d & 0x0f))
        .collect();
    let hex: String = v.bytes().map(|b| format!("{b:02x}")).collect();
    vec![
        v.as_bytes().to_vec(),
        utf16le,
        base64::engine::general_purpose::STANDARD
            .encode(v)
            .into_bytes(),
        hex.into_bytes(),
        bcd,
    ]
}
