//! Red-team round 8: where backends' binders find a field that the earlier rounds'
//! readings did not. Each runs the real server in front of the recording echo
//! upstream.

use http::StatusCode;
use vaultgate::demo::echo::{EchoHandle, EchoUpstream};

use crate::common::*;

const CVV: &str = "218";

const FORM_ROUTES: &str = concat!(
    form_route!(),
    r#"
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
"#
);

/// Whether the last request the upstream got since `before` holds `value` in clear;
/// `false` when nothing more was forwarded.
fn forwarded_raw(echo: &EchoHandle, before: usize, value: &str) -> bool {
    let got = echo.received();
    got.get(before..)
        .unwrap_or_default()
        .iter()
        .any(|r| holds_raw(&received_bytes(r), value))
}

/// A probe's outcome, for a request the proxy must tokenize or refuse: answered 200,
/// or refused with a 4xx that does not quote `value`; either way `value` was not
/// forwarded in clear. (The echo upstream's answer shows what was forwarded, random
/// ids and all, so only a refusal is checked for the value.)
fn tokenized_or_refused(echo: &EchoHandle, before: usize, reply: &Reply, value: &str, what: &str) {
    assert!(
        reply.status == StatusCode::OK || reply.status.is_client_error(),
        "{what}: {} {:?}",
        reply.status,
        reply.body
    );
    assert!(
        !forwarded_raw(echo, before, value),
        "{what}: the value went upstream in clear ({})",
        reply.status
    );
    assert!(
        reply.status == StatusCode::OK || !String::from_utf8_lossy(&reply.body).contains(value),
        "{what}: the refusal holds the value"
    );
}

/// A control's outcome: answered 200 and forwarded once.
fn served(echo: &EchoHandle, before: usize, reply: &Reply, what: &str) {
    assert_eq!(reply.status, StatusCode::OK, "{what}: {:?}", reply.body);
    assert_eq!(echo.received().len(), before + 1, "{what}");
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
        tokenized_or_refused(&echo, before, &reply, CVV, &format!("{path} {body:?}"));
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
        served(&echo, before, &reply, &format!("{body:?}"));
    }
}

const COOKIE_ROUTES: &str = r#"
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
name = "q2open"
upstream = "backend"
method = "POST"
path = "/v1/payment"
profile = "q2open"

[[routes]]
name = "brm"
upstream = "backend"
method = "POST"
path = "/brm"
profile = "oracle_brm"

[[routes]]
name = "query"
upstream = "backend"
path = "/q"
fields = [{ path = "cvv", class = "cvv", location = "query" }]

[[routes]]
name = "pass"
upstream = "backend"
path = "/*"
"#;

/// A POST with the given Cookie headers.
async fn post_with_cookies(
    addr: std::net::SocketAddr,
    path: &str,
    ct: &str,
    body: &str,
    cookies: &[&str],
) -> Reply {
    let mut req = http::Request::post(url(addr, path)).header("content-type", ct);
    for c in cookies {
        req = req.header("cookie", *c);
    }
    let req = req
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_owned(),
        )))
        .unwrap();
    send(&http1(), req).await
}

/// A cookie named as a field the route reads is that field to the frameworks that
/// look a parameter up in the query, the body and the cookies alike: PHP's
/// `$_REQUEST` (its built-in `variables_order`, as the official Docker images run it
/// with no php.ini, takes cookies in; PHP names them as form keys, brackets and all)
/// and classic ASP.NET's `Request["cvv"]` and `Request.Params`. Before, such a cookie
/// went upstream in clear with the request (a CVV, a bank account, and a card, since
/// cookies are read only with `scan_headers`). Now the request is refused (400
/// `ambiguous_sensitive_field`), as a body field in the query string is.
#[tokio::test]
async fn a_cookie_named_as_a_field_is_refused() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), COOKIE_ROUTES)).await;
    let addr = server.proxy_addr();
    let form = "application/x-www-form-urlencoded";
    let json = "application/json";
    let iban = "DE89370400440532013000";
    let card_form = "card_number=4242424242424242";
    let q2 = r#"{"paymentType":"card","cardNumber":"4242424242424242"}"#;
    let brm = r#"{"details":{"accountHolder":"A"}}"#;
    let cases: Vec<(&str, &str, &str, Vec<String>, &str)> = vec![
        ("/form", form, card_form, vec![format!("cvv={CVV}")], CVV),
        (
            "/form",
            form,
            card_form,
            vec![format!("session=abc; CVV={CVV}")],
            CVV,
        ),
        (
            "/form",
            form,
            "a=b",
            vec!["card_number=4242424242424242".into()],
            "4242424242424242",
        ),
        (
            "/form",
            form,
            card_form,
            vec!["session=abc".into(), format!(" cvv = {CVV} ")],
            CVV,
        ),
        ("/form", form, card_form, vec![format!("%63vv={CVV}")], CVV),
        ("/form", form, card_form, vec![format!("!cvv={CVV}")], CVV),
        (
            "/form",
            form,
            card_form,
            vec![format!("a=1,cvv={CVV}")],
            CVV,
        ),
        (
            "/v1/payment",
            json,
            q2,
            vec![format!("cardCode={CVV}")],
            CVV,
        ),
        (
            "/v1/payment",
            json,
            q2,
            vec![format!("card_code={CVV}")],
            CVV,
        ),
        (
            "/brm",
            json,
            brm,
            vec![format!("details[accountNumber]={iban}")],
            iban,
        ),
        ("/q", form, "a=b", vec![format!("cvv={CVV}")], CVV),
    ];
    for (path, ct, body, cookies, value) in &cases {
        let before = echo.received().len();
        let cookies: Vec<&str> = cookies.iter().map(String::as_str).collect();
        let reply = post_with_cookies(addr, path, ct, body, &cookies).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path} {cookies:?}: {:?}",
            reply.body
        );
        assert_eq!(
            code(&reply),
            "ambiguous_sensitive_field",
            "{path} {cookies:?}"
        );
        assert_eq!(
            echo.received().len(),
            before,
            "{path} {cookies:?}: forwarded"
        );
        assert!(
            !String::from_utf8_lossy(&reply.body).contains(value),
            "{path} {cookies:?}: the answer holds the value"
        );
    }
    // Controls: other cookies, an empty one named as a field, and any cookie on a
    // pass-through route go as they came.
    for (path, ct, body, cookie) in [
        (
            "/form",
            form,
            card_form,
            "session=abc123; cvvx=218; theme=dark",
        ),
        ("/form", form, card_form, "cvv="),
        ("/v1/payment", json, q2, "cardCodeHint=218"),
        ("/pass/x", json, "{}", "cvv=218"),
    ] {
        let before = echo.received().len();
        let reply = post_with_cookies(addr, path, ct, body, &[cookie]).await;
        served(&echo, before, &reply, &format!("{path} {cookie}"));
    }
}

/// A multipart part as Rack names it. Rack reads the name with a regular expression
/// over the part's head: a part whose `Content-Disposition` has no `name` is named by
/// its `Content-ID`, else its filename, else its Content-Type followed by `[]`; and
/// Rack 2's expression (`Content-Disposition:[^:]*;\s*name=(…)`, Rails 6 and 7.0)
/// takes the last `;name=` before any `:`, one inside another parameter's quoted
/// value too. Before, each part's CVV went upstream in clear, read by us as a
/// nameless part or as `note`. Now a part whose name Rack reads otherwise, as a field
/// a rule names, is refused (400 `invalid_body`; 415 for a Content-Type that is no
/// media type).
#[tokio::test]
async fn a_part_named_as_rack_names_it_is_that_field() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), FORM_ROUTES)).await;
    let addr = server.proxy_addr();
    let multipart = |heads: &str| {
        format!(
            "--xx\r\nContent-Disposition: form-data; name=\"card_number\"\r\n\r\n4242424242424242\r\n\
             --xx\r\n{heads}\r\n\r\n{CVV}\r\n--xx--\r\n"
        )
    };
    let ct = "multipart/form-data; boundary=xx";
    for heads in [
        "Content-Disposition: form-data\r\nContent-ID: cvv",
        "Content-ID: CVV\r\nContent-Disposition: form-data; x=y",
        "Content-Disposition: form-data; name=\"note\"; x=\"a;name=cvv\"",
        "Content-Disposition: form-data; name=note; x=\"a; NAME=cvv\"",
        "Content-Disposition: form-data; filename=\"cvv\"",
        "Content-Disposition: form-data\r\nContent-Type: cvv",
    ] {
        let before = echo.received().len();
        let reply = post(addr, "/form", ct, multipart(heads)).await;
        assert!(
            reply.status.is_client_error(),
            "{heads:?}: {} {:?}",
            reply.status,
            reply.body
        );
        assert_eq!(echo.received().len(), before, "{heads:?}: forwarded");
        assert!(
            !String::from_utf8_lossy(&reply.body).contains(CVV),
            "{heads:?}"
        );
    }
    // Controls: a `name` wins over a Content-ID; a filename or another parameter that
    // Rack reads as the same name, or as no field, changes nothing.
    for heads in [
        "Content-Disposition: form-data; name=\"note\"\r\nContent-ID: cvv",
        "Content-Disposition: form-data; name=\"note\"; filename=\"cvv.txt\"",
        "Content-Disposition: form-data; name=\"cvv\"; x=\"a;name=note\"",
        "Content-Disposition: form-data; name=\"doc\"; filename=\"C:\\\\a;name=cvv\"",
        "Content-Disposition: form-data; name=\"cvv\"",
    ] {
        let before = echo.received().len();
        let reply = post(addr, "/form", ct, multipart(heads)).await;
        served(&echo, before, &reply, &format!("{heads:?}"));
    }
}

const OVERRIDE_ROUTES: &str = r#"
[[routes]]
name = "update"
upstream = "backend"
method = "PUT"
path = "/methods/{id}"
fields = [
  { path = "card_number", class = "pan" },
  { path = "cvv", class = "cvv" },
]

[[routes]]
name = "read"
upstream = "backend"
method = "POST"
path = "/methods/{id}"

[[routes]]
name = "pass"
upstream = "backend"
path = "/*"
"#;

/// A `_method` parameter in the query string makes a POST another method to
/// Symfony and Laravel (`Request::getMethod` reads it from the body, then the
/// query), and to Express's `method-override('_method')`: a POST with
/// `?_method=PUT` on a path whose PUT route has rules, served by its POST
/// pass-through route, went upstream with the CVV in clear, and the backend ran the
/// PUT action. Now it is refused as the override headers are (400
/// `method_override_refused`) on a path a rules route owns.
#[tokio::test]
async fn a_method_override_parameter_in_the_query_is_refused() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), OVERRIDE_ROUTES)).await;
    let addr = server.proxy_addr();
    let form = "application/x-www-form-urlencoded";
    let body = format!("cvv={CVV}");
    for query in [
        "_method=PUT",
        "a=1&_method=put",
        "_METHOD=PUT",
        "%5Fmethod=PUT",
        "x=1;_method=PUT",
        "_method[]=PUT",
        "+_method=PUT",
    ] {
        let before = echo.received().len();
        let reply = post(addr, &format!("/methods/7?{query}"), form, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {:?}",
            reply.body
        );
        assert_eq!(code(&reply), "method_override_refused", "{query}");
        assert_eq!(echo.received().len(), before, "{query}: forwarded");
    }
    // Controls: a parameter that only looks alike, an empty one, and `_method` on a
    // path no rules route owns go as they came.
    for path in [
        "/methods/7?method=PUT",
        "/methods/7?_method=",
        "/methods/7?x_method=PUT",
        "/other?_method=PUT",
    ] {
        let before = echo.received().len();
        let reply = post(addr, path, form, body.clone()).await;
        served(&echo, before, &reply, path);
    }
}

const PROFILE_ROUTES: &str = r#"
[[routes]]
name = "q2open"
upstream = "backend"
method = "POST"
path = "/v1/payment"
profile = "q2open"

[[routes]]
name = "brm"
upstream = "backend"
method = "POST"
path = "/brm"
profile = "oracle_brm"

[[routes]]
name = "hostway"
upstream = "backend"
method = "POST"
path = "/accounts/{id}/paymentInfo"
profile = "hostway"
"#;

/// A JSON document whose root object has one member, an object, is that object to
/// a backend that unwraps a root value: Jackson's `UNWRAP_ROOT_VALUE` (with
/// `@JsonRootName`), and Rails' `params.require(:payment_info)`, which reads the
/// same fields wrapped or not (`wrap_parameters`). Before, the fields inside went
/// upstream in clear (a CVV, an IBAN; a card was still found by the leak guard).
#[tokio::test]
async fn a_root_wrapper_object_is_read_through() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), PROFILE_ROUTES)).await;
    let addr = server.proxy_addr();
    let json = "application/json";
    let iban = "DE89370400440532013000";
    let hostway = "/accounts/1/paymentInfo";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            hostway,
            format!(
                r#"{{"PaymentInfo":{{"paymentInfoType":"credit_card","accountNumber":"4242424242424242","verificationNumber":"{CVV}"}}}}"#
            ),
            CVV,
        ),
        (
            hostway,
            format!(
                r#" {{ "payment_info" : {{"paymentInfoType":"direct_debit","accountNumber":"{iban}"}} }} "#
            ),
            iban,
        ),
        (
            "/v1/payment",
            format!(r#"{{"payment":{{"paymentType":"bank","accountNumber":"{iban}"}}}}"#),
            iban,
        ),
        (
            "/v1/payment",
            format!(
                r#"{{"payment":{{"paymentType":"card","cardNumber":"4242424242424242","cardCode":"{CVV}"}}}}"#
            ),
            CVV,
        ),
        (
            "/brm",
            format!(r#"{{"paymentMethod":{{"details":{{"accountNumber":"{iban}"}}}}}}"#),
            iban,
        ),
    ];
    for (path, body, value) in &cases {
        let before = echo.received().len();
        let reply = post(addr, path, json, body.clone()).await;
        tokenized_or_refused(&echo, before, &reply, value, &format!("{path} {body}"));
    }
    // Controls: a root with more members reads as before; a nested field of the same
    // name beside the top-level one is no duplicate.
    for (path, body) in [
        (
            hostway,
            r#"{"paymentInfoType":"credit_card","accountNumber":"4242424242424242","billing":{"accountNumber":"x"}}"#,
        ),
        (
            "/brm",
            r#"{"details":{"accountNumber":"DE89370400440532013000"}}"#,
        ),
        ("/v1/payment", r#"{"meta":{"note":"hi"}}"#),
    ] {
        let before = echo.received().len();
        let reply = post(addr, path, json, body).await;
        served(&echo, before, &reply, &format!("{path} {body}"));
    }
}

/// A bracketed form key in quotes is the key inside them to Spring's `BeanWrapper`
/// (its map-key syntax: `payment_method['cvc']` and `payment_method["cvc"]` set the
/// key `cvc` of a map-typed `payment_method`). Before, such a CVV went upstream in
/// clear, in a form, a query string and a multipart part's name.
#[tokio::test]
async fn a_bracketed_key_in_quotes_is_that_key() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), FORM_ROUTES)).await;
    let addr = server.proxy_addr();
    let form = "application/x-www-form-urlencoded";
    let part = |name: &str| {
        format!(
            "--xx\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{CVV}\r\n--xx--\r\n"
        )
    };
    let cases: Vec<(String, &str, String)> = vec![
        (
            "/nested".into(),
            form,
            format!("payment_method['cvc']={CVV}"),
        ),
        (
            "/nested".into(),
            form,
            format!("payment_method[%22cvc%22]={CVV}"),
        ),
        (
            "/nested".into(),
            form,
            format!("payment_method[%27CVC%27]={CVV}"),
        ),
        (
            format!("/nested?payment_method['cvc']={CVV}"),
            form,
            "a=b".into(),
        ),
        (
            "/nested".into(),
            "multipart/form-data; boundary=xx",
            part("payment_method['cvc']"),
        ),
    ];
    for (path, ct, body) in &cases {
        let before = echo.received().len();
        let reply = post(addr, path, ct, body.clone()).await;
        tokenized_or_refused(&echo, before, &reply, CVV, &format!("{path} {body:?}"));
    }
    // Controls: quotes that do not enclose a bracketed key are part of it.
    for body in [
        format!("payment_method['cvc]={CVV}"),
        format!("payment_method'cvc'={CVV}"),
    ] {
        let before = echo.received().len();
        let reply = post(addr, "/nested", form, body.clone()).await;
        served(&echo, before, &reply, &format!("{body:?}"));
    }
}

/// A multipart part in a document type is an object to backends that bind parts by
/// their Content-Type (Spring's `@RequestPart` picks a message converter by it:
/// Jackson's XML, YAML, CBOR and Smile ones, JAXB; JAX-RS's `@FormDataParam` too), as
/// a JSON part is. Before, a part `application/xml` (or `text/json`, which ASP.NET
/// Core reads as JSON) holding the CVV went upstream in clear on a route with field
/// rules. Now a JSON-typed part is read as JSON whatever its spelling, and a part in
/// another document type is refused there (415 `unsupported_media`).
#[tokio::test]
async fn a_part_in_a_document_type_is_read_or_refused() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), FORM_ROUTES)).await;
    let addr = server.proxy_addr();
    let ct = "multipart/form-data; boundary=xx";
    let body = |part_type: &str, content: &str| {
        format!(
            "--xx\r\nContent-Disposition: form-data; name=\"card_number\"\r\n\r\n4242424242424242\r\n\
             --xx\r\nContent-Disposition: form-data; name=\"payment\"\r\nContent-Type: {part_type}\r\n\r\n{content}\r\n--xx--\r\n"
        )
    };
    let xml = format!("<payment><cvv>{CVV}</cvv></payment>");
    let json = format!("{{\"cvv\":\"{CVV}\"}}");
    let cases = [
        ("application/xml", xml.clone()),
        ("text/xml; charset=utf-8", xml.clone()),
        ("application/vnd.payment+xml", xml.clone()),
        ("application/yaml", format!("cvv: {CVV}\n")),
        ("application/x-yaml", format!("cvv: '{CVV}'\n")),
        ("application/cbor", format!("\u{a1}cvv{CVV}")),
        ("text/json", json.clone()),
        ("application/x-json", json.clone()),
        ("text/vnd.payment+json", json.clone()),
    ];
    for (part_type, content) in &cases {
        let before = echo.received().len();
        let reply = post(addr, "/form", ct, body(part_type, content)).await;
        tokenized_or_refused(&echo, before, &reply, CVV, part_type);
    }
    // Controls: files (an image, a PDF, CSV text, bytes) go as they came.
    for part_type in [
        "image/png",
        "application/pdf",
        "text/csv",
        "application/octet-stream",
    ] {
        let before = echo.received().len();
        let reply = post(addr, "/form", ct, body(part_type, "x,y\r\n1,2")).await;
        served(&echo, before, &reply, part_type);
    }
}

/// Jackson's `LOWER_DOT_CASE` naming strategy and Gson's `LOWER_CASE_WITH_DOTS` bind
/// the JSON key `card.code` to the property `cardCode`. Before, a dotted key was read
/// only as nested keys (`card` → `code`), and such a CVV or IBAN went upstream in
/// clear. Now a dotted key is also one key, its dots read as `_`.
#[tokio::test]
async fn a_dot_case_key_is_that_field() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), PROFILE_ROUTES)).await;
    let addr = server.proxy_addr();
    let json = "application/json";
    let iban = "DE89370400440532013000";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "/v1/payment",
            format!(
                r#"{{"payment.type":"card","card.number":"4242424242424242","card.code":"{CVV}"}}"#
            ),
            CVV,
        ),
        (
            "/v1/payment",
            format!(r#"{{"paymentType":"bank","account.number":"{iban}"}}"#),
            iban,
        ),
        (
            "/accounts/1/paymentInfo",
            format!(
                r#"{{"payment.info.type":"direct_debit","account.number":"{iban}","verification.number":"{CVV}"}}"#
            ),
            iban,
        ),
        (
            "/accounts/1/paymentInfo",
            format!(
                r#"{{"paymentInfoType":"credit_card","accountNumber":"4242424242424242","verification.number":"{CVV}"}}"#
            ),
            CVV,
        ),
        (
            "/brm",
            format!(r#"{{"details":{{"account.number":"{iban}"}}}}"#),
            iban,
        ),
    ];
    for (path, body, value) in &cases {
        let before = echo.received().len();
        let reply = post(addr, path, json, body.clone()).await;
        tokenized_or_refused(&echo, before, &reply, value, &format!("{path} {body}"));
    }
    // Control: other dotted keys pass as they came.
    let before = echo.received().len();
    let body = r#"{"details":{"accountNumber":"DE89370400440532013000"},"meta.source":"web"}"#;
    let reply = post(addr, "/brm", json, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(echo.received().len(), before + 1);
}
