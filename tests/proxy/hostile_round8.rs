//! Red-team round 8: where backends' binders find a field that the earlier rounds'
//! readings did not. Each runs the real server in front of the recording echo
//! upstream.

use http::StatusCode;
use vaultgate::demo::echo::{EchoHandle, EchoUpstream};

use crate::common::*;

const CVV: &str = "218";

const FORM_ROUTES: &str = r#"
[[routes]]
name = "form"
upstream = "backend"
method = "POST"
path = "/form"
fields = [
  { path = "card_number", class = "pan" },
  { path = "cvv", class = "cvv", scope = "card_number" },
]

[[routes]]
name = "nested"
upstream = "backend"
method = "POST"
path = "/nested"
fields = [
  { path = "payment_method.card_number", class = "pan" },
  { path = "payment_method.cvc", class = "cvv" },
]

[[routes]]
name = "pass"
upstream = "backend"
path = "/*"
"#;

/// Whether the last request the upstream got since `before` holds `value` in clear;
/// `false` when nothing more was forwarded.
fn forwarded_raw(echo: &EchoHandle, before: usize, value: &str) -> bool {
    let got = echo.received();
    got.get(before..)
        .unwrap_or_default()
        .iter()
        .any(|r| holds_raw(&received_bytes(r), value))
}

/// A form, query or multipart key as two more binders name it. Spring's
/// `WebDataBinder` reads `!cvv` as a default value for `cvv` (its field default
/// prefix) and binds it when no `cvv` is sent; PHP reads a parameter name as a C
/// string, up to its first NUL (`cvv%00x` is `$_POST['cvv']`, in `$_GET` and in a
/// multipart part's name too). Before, each CVV went upstream in clear.
#[tokio::test]
async fn a_key_as_spring_and_php_bind_it_is_that_field() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), FORM_ROUTES)).await;
    let addr = server.proxy_addr();
    let form = "application/x-www-form-urlencoded";
    let card = "card_number=4242424242424242";
    let multipart = |name: &str| {
        format!(
            "--xx\r\nContent-Disposition: form-data; name=\"card_number\"\r\n\r\n4242424242424242\r\n\
             --xx\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{CVV}\r\n--xx--\r\n"
        )
    };
    let cases: Vec<(String, &str, String)> = vec![
        ("/form".into(), form, format!("{card}&!cvv={CVV}")),
        ("/form".into(), form, format!("{card}&%21cvv={CVV}")),
        ("/form".into(), form, format!("{card}&!CVV={CVV}")),
        ("/form".into(), form, format!("{card}&cvv%00={CVV}")),
        ("/form".into(), form, format!("{card}&cvv%00x.y={CVV}")),
        ("/form".into(), form, format!("{card}&cvv\0x={CVV}")),
        (format!("/form?!cvv={CVV}"), form, card.to_owned()),
        (format!("/form?cvv%00junk={CVV}"), form, card.to_owned()),
        (
            "/form".into(),
            "multipart/form-data; boundary=xx",
            multipart("!cvv"),
        ),
        (
            "/nested".into(),
            form,
            format!("payment_method[cvc]%00x={CVV}"),
        ),
        (
            "/nested".into(),
            form,
            format!("payment.method[cvc]%00={CVV}"),
        ),
        (
            "/nested".into(),
            form,
            format!("!payment_method[cvc]={CVV}"),
        ),
        ("/nested".into(), form, format!("!payment_method.cvc={CVV}")),
    ];
    for (path, ct, body) in &cases {
        let before = echo.received().len();
        let reply = post(addr, path, ct, body.clone()).await;
        assert!(
            reply.status == StatusCode::OK || reply.status.is_client_error(),
            "{path} {body:?}: {} {:?}",
            reply.status,
            reply.body
        );
        assert!(
            !forwarded_raw(&echo, before, CVV),
            "{path} {body:?}: the CVV went upstream in clear ({})",
            reply.status
        );
        assert!(
            !String::from_utf8_lossy(&reply.body).contains(CVV),
            "{path} {body:?}: the answer holds the CVV"
        );
    }
    // Controls: a `!` or a NUL elsewhere in a key names no field; ordinary keys with
    // `!` in them pass.
    for body in [
        format!("{card}&x!cvv={CVV}"),
        format!("{card}&x%00cvv={CVV}"),
        format!("{card}&wow!=yes"),
    ] {
        let before = echo.received().len();
        let reply = post(addr, "/form", form, body.clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "{body:?}: {:?}", reply.body);
        assert_eq!(echo.received().len(), before + 1, "{body:?}");
    }
}
