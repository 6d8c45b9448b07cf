//! A card split into pieces that a backend joins (`rules::pieces`): the values of a
//! list, a key given twice, numbered boxes (`cc1` … `cc4`), in every container, on
//! the guard-only Stripe-backed route and in a free field of a rules route. Each is
//! refused with `card_number_detected` and nothing forwarded; lists of ordinary
//! numbers (amounts, ids, quantities, a date, a phone number in two boxes) are
//! forwarded as they were sent.

use base64::Engine as _;
use http::StatusCode;
use vaultgate::config::Config;
use vaultgate::demo::echo::EchoHandle;

use crate::common::*;

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

async fn demo_server() -> (vaultgate::app::ServerHandle, EchoHandle) {
    let (up, echo) = vaultgate::demo::echo::EchoUpstream::start().await.unwrap();
    let config = Config::demo(
        "127.0.0.1:0",
        "127.0.0.1:0",
        &format!("http://{up}"),
        &scratch_dir(),
    )
    .unwrap();
    let server = start_config(&config, std::time::Duration::from_secs(1)).await;
    (server, echo)
}

/// Sends each `(target, content type, body)` and asserts that every one was refused
/// as a card with nothing forwarded and no piece of the card in the answer (all
/// cases are sent first; the failures are listed together).
async fn refused(addr: std::net::SocketAddr, echo: &EchoHandle, cases: &[(&str, &str, String)]) {
    let mut failed = Vec::new();
    for (target, ct, body) in cases {
        let before = echo.received().len();
        let reply = post(addr, target, ct, body.clone()).await;
        let forwarded = echo.received().len() - before;
        let text = String::from_utf8_lossy(&reply.body);
        if reply.status != StatusCode::BAD_REQUEST
            || code(&reply) != "card_number_detected"
            || forwarded != 0
            || text.contains("42424242")
            || text.contains("3782822")
        {
            failed.push(format!("{target} {body}: {} {text}", reply.status));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} not refused:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
}

#[tokio::test]
async fn a_card_in_pieces_is_refused_in_every_container() {
    let (server, echo) = demo_server().await;
    let addr = server.proxy_addr();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let multipart = |parts: &[(&str, &str)]| {
        let mut doc = String::new();
        for (name, value) in parts {
            doc.push_str(&format!(
                "--vgp\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            ));
        }
        doc.push_str("--vgp--\r\n");
        doc
    };
    let mp = "multipart/form-data; boundary=vgp";
    let base = "customerId=cus_1&type=card";
    let cases: Vec<(&str, &str, String)> = vec![
        // Numbered boxes, the four inputs of an old card form.
        (
            "/payment-method",
            FORM,
            format!("{base}&cc1=4242&cc2=4242&cc3=4242&cc4=4242"),
        ),
        (
            "/payment-method",
            JSON,
            r#"{"customerId":"cus_1","card":{"number_1":"4242","number_2":"4242","number_3":"4242","number_4":"4242"}}"#.to_owned(),
        ),
        // A key given twice, which Express and Rack make a list of.
        (
            "/payment-method",
            FORM,
            format!("{base}&card[number]=42424242&card[number]=42424242"),
        ),
        // Indices out of order, which qs sorts: Amex 3782822 | 46310005.
        (
            "/payment-method",
            FORM,
            format!("{base}&card[number][1]=46310005&card[number][0]=3782822"),
        ),
        // A list of JSON numbers, of strings in groups, of other scripts' digits.
        (
            "/payment-method",
            JSON,
            r#"{"customerId":"cus_1","card":{"number":[4242,4242,4242,4242]}}"#.to_owned(),
        ),
        (
            "/payment-method",
            JSON,
            r#"{"customerId":"cus_1","card":{"number":["4242 4242","4242-4242"]}}"#.to_owned(),
        ),
        (
            "/payment-method",
            JSON,
            r#"{"customerId":"cus_1","card":{"number":["٤٢٤٢٤٢٤٢","42424242"]}}"#.to_owned(),
        ),
        // Cut after 13 digits; numbers a JavaScript join prints as integers.
        (
            "/payment-method",
            JSON,
            r#"{"customerId":"cus_1","card":{"number":["4242424242424","242"]}}"#.to_owned(),
        ),
        (
            "/payment-method",
            JSON,
            r#"{"customerId":"cus_1","card":{"number":[42424242.0,4.2424242e7]}}"#.to_owned(),
        ),
        // The query string, multipart part names given twice.
        (
            "/payment-method?card[number][]=42424242&card[number][]=42424242",
            JSON,
            r#"{"customerId":"cus_1"}"#.to_owned(),
        ),
        (
            "/payment-method",
            mp,
            multipart(&[("customerId", "cus_1"), ("n[]", "42424242"), ("n[]", "42424242")]),
        ),
        // Base64 of a form and of JSON, as Plano's parameters are sent.
        (
            "/payment-method",
            "text/plain",
            b64("customerId=cus_1&cc1=4242&cc2=4242&cc3=4242&cc4=4242"),
        ),
        (
            "/payment-method",
            "text/plain",
            b64(r#"{"card":{"number":[42424242,42424242]}}"#),
        ),
        (
            "/payment-method",
            "text/plain",
            b64(r#"{"card":{"n2":"46310005","n1":"3782822"}}"#),
        ),
        // A free field of a rules route (q2open).
        (
            "/v1/payment",
            JSON,
            r#"{"clientId":"c1","paymentType":"card","cardNumber":"4111111111111111","cardCode":"218","memo":["42424242","42424242"]}"#.to_owned(),
        ),
    ];
    refused(addr, &echo, &cases).await;
}

#[tokio::test]
async fn lists_of_ordinary_numbers_are_forwarded_as_sent() {
    let (server, echo) = demo_server().await;
    let addr = server.proxy_addr();
    let cases: Vec<(&str, &str, String)> = vec![
        (
            "/payment-method",
            JSON,
            r#"{"customerId":"cus_1","amounts":[1000,2500,300],"ids":["12345678","87654321"],"exp":["12","2030"]}"#.to_owned(),
        ),
        (
            "/payment-method",
            FORM,
            "customerId=cus_1&phone1=415&phone2=5550134&items[0][qty]=2&items[1][qty]=3&tag=7&tag=8"
                .to_owned(),
        ),
        (
            "/payment-method",
            JSON,
            r#"{"customerId":"cus_1","address":{"line1":"12 Main St","line2":"Apt 4"},"codes":["42424242","4242"]}"#.to_owned(),
        ),
        (
            "/payment-method?page=1&page=2",
            JSON,
            r#"{"customerId":"cus_1","digits":[1,2,3,4,5,6,7,8,9,0,1,2]}"#.to_owned(),
        ),
    ];
    for (target, ct, body) in cases {
        let before = echo.received().len();
        let reply = post(addr, target, ct, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{target} {body}: {:?}",
            reply.body
        );
        let got = echo.received();
        let sent = got.get(before..).unwrap_or_default();
        assert_eq!(sent.len(), 1, "{target}: forwarded once");
        assert_eq!(sent[0].body.as_ref(), body.as_bytes(), "{target}: changed");
    }
}

/// `join_lists = false` on a route reads each value alone again (for a route whose
/// lists of ids are refused too often); the route beside it still joins them.
#[tokio::test]
async fn join_lists_false_reads_each_value_alone() {
    let (up, echo) = vaultgate::demo::echo::EchoUpstream::start().await.unwrap();
    let routes = r#"
[[routes]]
name = "ids"
upstream = "backend"
method = "POST"
path = "/ids"
fields = [{ path = "card", class = "pan" }]
join_lists = false

[[routes]]
name = "joined"
upstream = "backend"
method = "POST"
path = "/joined"
fields = [{ path = "card", class = "pan" }]
"#;
    let server = start(&config_toml(&format!("http://{up}"), routes)).await;
    let addr = server.proxy_addr();
    let body = r#"{"ids":["42424242","42424242"]}"#;
    let b64 = base64::engine::general_purpose::STANDARD.encode(body);
    for sent in [body.to_owned(), format!(r#"{{"blob":"{b64}"}}"#)] {
        let reply = post(addr, "/ids", JSON, sent.clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "{sent}: {:?}", reply.body);
        let got = echo.received();
        assert_eq!(got.last().map(|r| r.body.as_ref()), Some(sent.as_bytes()));
    }
    refused(addr, &echo, &[("/joined", JSON, body.to_owned())]).await;
}
