//! Red-team round 4: what a backend's own reading of a request found that the guard
//! did not read — an HTML `<meta charset>` naming an encoding the guard cannot read
//! (jsoup, BeautifulSoup and lxml decode a byte body by it). Each runs the real server
//! in front of the recording echo upstream.

use http::StatusCode;
use vaultgate::app;
use vaultgate::config::Config;
use vaultgate::demo::echo::EchoUpstream;

use crate::common::*;
use crate::hostile_round3::{CARD, base64_encode, full_width_card};

#[tokio::test]
async fn an_html_meta_charset_the_guard_cannot_read_is_refused() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let dir = std::env::temp_dir();
    let config = Config::demo("127.0.0.1:0", "127.0.0.1:0", &format!("http://{up}"), &dir).unwrap();
    let server = app::start(&config, test_vault()).await.unwrap();
    let addr = server.proxy_addr();
    let encodings = [
        ("shift_jis", encoding_rs::SHIFT_JIS),
        ("GB18030", encoding_rs::GB18030),
        ("Big5", encoding_rs::BIG5),
        ("EUC-JP", encoding_rs::EUC_JP),
        ("euc-kr", encoding_rs::EUC_KR),
        ("ISO-2022-JP", encoding_rs::ISO_2022_JP),
    ];
    for (name, encoding) in encodings {
        for head in [
            format!(r#"<meta charset="{name}">"#),
            format!(r#"<meta http-equiv="Content-Type" content="text/html; charset={name}">"#),
            format!("<META CHARSET={}>", name.to_uppercase()),
        ] {
            let mut body = format!("<html><head>{head}</head><body><p>").into_bytes();
            body.extend_from_slice(&full_width_card(encoding));
            body.extend_from_slice(b"</p></body></html>");
            let mut part = b"--XyZ\r\nContent-Disposition: form-data; name=\"page\"\r\n\
                             Content-Type: text/html\r\n\r\n"
                .to_vec();
            part.extend_from_slice(&body);
            part.extend_from_slice(b"\r\n--XyZ--\r\n");
            for (path, ct, bytes) in [
                ("/pt/a", "text/html", body.clone()),
                ("/payment-method", "text/html", body.clone()),
                ("/pt/a", "multipart/form-data; boundary=XyZ", part.clone()),
                ("/payment-method", "multipart/form-data; boundary=XyZ", part),
            ] {
                let reply = post(addr, path, ct, bytes).await;
                assert_eq!(
                    reply.status,
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "{head} {path} {ct}: {:?}",
                    reply.body
                );
                assert_eq!(code(&reply), "unsupported_media", "{head} {path}");
            }
            // Streamed a few bytes at a time: the tag is cut between chunks.
            let pieces: Vec<&[u8]> = body.chunks(5).collect();
            let answer = drip(
                addr,
                "/pt/a",
                "text/html",
                &pieces,
                std::time::Duration::from_millis(2),
            )
            .await;
            assert!(
                answer.starts_with("HTTP/1.1 415"),
                "{head} dripped: {answer}"
            );
        }
    }
    // Bytes a decoder makes on a rules route (a base64 field) are read as their meta
    // charset says: the card is found.
    // A UTF-8 XML declaration before the meta does not hide it (jsoup reads the meta).
    for head in [
        &br#"<html><meta charset="sjis"><p>"#[..],
        br#"<?xml version="1.0" encoding="UTF-8"?><html><meta charset="sjis"><p>"#,
    ] {
        let mut page = head.to_vec();
        page.extend_from_slice(&full_width_card(encoding_rs::SHIFT_JIS));
        page.extend_from_slice(b"</p></html>");
        let reply = post(
            addr,
            "/payment-method",
            "application/json",
            format!(r#"{{"doc":"{}"}}"#, base64_encode(&page)),
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
        assert_eq!(code(&reply), "card_number_detected");
    }
    assert!(
        echo.received()
            .iter()
            .all(|r| !holds_raw(&received_bytes(r), CARD)),
        "a card reached the upstream"
    );
    // Pages that declare what the guard reads, or no charset, pass.
    for name in ["utf-8", "UTF-8", "iso-8859-1", "windows-1252"] {
        let body = format!(
            r#"<html><head><meta charset="{name}"><meta http-equiv="Content-Type" content="text/html; charset={name}"></head><body><p>12.50</p></body></html>"#
        );
        for path in ["/pt/a", "/payment-method"] {
            let reply = post(addr, path, "text/html", body.clone()).await;
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{name} {path}: {:?}",
                reply.body
            );
        }
    }
    let page = r#"<html><head><meta name="viewport" content="width=device-width"><meta property="og:title" content="Order 12"></head><body><p>12.50</p></body></html>"#;
    let reply = post(addr, "/pt/a", "text/html", page).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    echo.stop().await;
}

/// Full-width `4111111111111111`: a hidden hit, refused with the place it was found.
const HIDDEN: &str = "４１１１１１１１１１１１１１１１";

#[tokio::test]
async fn a_refusal_never_spells_a_card_across_the_keys_of_its_location() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let dir = std::env::temp_dir();
    let config = Config::demo("127.0.0.1:0", "127.0.0.1:0", &format!("http://{up}"), &dir).unwrap();
    let server = app::start(&config, test_vault()).await.unwrap();
    let addr = server.proxy_addr();
    // Each key holds fewer digits than a key may show; the location joins them with
    // `.`, a separator to every card reader.
    for body in [
        format!(r#"{{"42424":{{"24242":{{"42424":{{"2":"{HIDDEN}"}}}}}}}}"#),
        format!(r#"{{"4242-4":{{"242-42":{{"4242-4":{{"2":"{HIDDEN}"}}}}}}}}"#),
        format!(r#"{{"4242":[[[[[{{"42424242":1,"4242":"{HIDDEN}"}}]]]]]}}"#),
    ] {
        let reply = post(addr, "/payment-method", "application/json", body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {:?}",
            reply.body
        );
        assert_eq!(code(&reply), "card_number_detected", "{body}");
        assert!(
            !holds_raw(&reply.body, CARD),
            "the error spells the card: {:?}",
            reply.body
        );
    }
    assert!(
        echo.received().is_empty(),
        "a refused request was forwarded"
    );
    // A location with a few digits still names them.
    let reply = post(
        addr,
        "/payment-method",
        "application/json",
        format!(r#"{{"items":[{{"line2":"{HIDDEN}"}}]}}"#),
    )
    .await;
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.ends_with("$.items[0].line2"), "{message}");
    echo.stop().await;
}
