//! The multipart codec through [`crate::codec::extract`]. Compiled only for tests:
//! `#[cfg(test)] mod tests;` in `codec/multipart.rs`.

use ::base64::Engine as _;
use ::base64::engine::general_purpose::STANDARD;

use crate::codec::{Extraction, FindingKind, RequestParts, extract};
use crate::error::Error;
use crate::rules::{BodyKind, RouteRules, profiles};
use crate::sensitive::DataClass;

const CARD: &str = "4242424242424242";
const B: &str = "XyZzY-boundary";
const CT: &str = "multipart/form-data; boundary=XyZzY-boundary";

/// A multipart body from (headers, content) parts.
fn body(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"preamble\r\n".to_vec();
    for (head, content) in parts {
        out.extend_from_slice(format!("--{B}\r\n{head}\r\n\r\n").as_bytes());
        out.extend_from_slice(content);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{B}--\r\n").as_bytes());
    out
}

fn field(name: &str) -> String {
    format!("Content-Disposition: form-data; name=\"{name}\"")
}

fn req(body: &[u8]) -> RequestParts<'_> {
    RequestParts {
        content_type: Some(CT),
        content_encoding: None,
        query: None,
        body,
        max_body: 1 << 20,
    }
}

/// The q2open rules reading any body type (multipart included).
fn q2_auto() -> RouteRules {
    let mut r = profiles::get("q2open").unwrap();
    r.body = BodyKind::Auto;
    r
}

fn guard() -> RouteRules {
    profiles::get("payment_method").unwrap()
}

fn apply(x: Extraction) -> Vec<u8> {
    let n = x.findings().len();
    let toks: Vec<Option<String>> = (0..n).map(|i| Some(format!("tok{i}"))).collect();
    x.apply(&toks).unwrap().body.unwrap().to_vec()
}

fn parts_of(out: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(out).into_owned();
    text.split(&format!("--{B}"))
        .map(str::to_owned)
        .filter(|p| !p.is_empty())
        .collect()
}

#[test]
fn form_fields_follow_the_rules() {
    let b = body(&[
        (&field("paymentType"), b"card"),
        (&field("CardNumber"), CARD.as_bytes()),
        (&field("cardCode"), b"739"),
        (&field("note"), b"card 4111 1111 1111 1111 here"),
    ]);
    let x = extract(&q2_auto(), req(&b)).unwrap();
    let kinds: Vec<_> = x
        .findings()
        .iter()
        .map(|f| (f.kind, f.class, f.location.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (
                FindingKind::Rule { rule: 0 },
                DataClass::Pan,
                "body:CardNumber".into()
            ),
            (
                FindingKind::Rule { rule: 1 },
                DataClass::Cvv,
                "body:cardCode".into()
            ),
            (FindingKind::Leak, DataClass::Pan, "body:note".into()),
        ]
    );
    assert_eq!(x.findings()[1].scope, Some(0));
    let out = apply(x);
    let want = body(&[
        (&field("paymentType"), b"card"),
        (&field("CardNumber"), b"tok0"),
        (&field("cardCode"), b"tok1"),
        (&field("note"), b"card tok2 here"),
    ]);
    // Emitted anew with the same boundary (header names as HTTP reads them, in
    // lower case); the preamble is dropped.
    let want = want.strip_prefix(b"preamble\r\n".as_slice()).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(want).replace("Content-Disposition", "content-disposition")
    );
}

#[test]
fn parts_go_through_their_codec_and_transfer_encoding() {
    let json = format!(r#"{{"paymentType":"card","cardNumber":"{CARD}","cardCode":"739"}}"#);
    let b64 = STANDARD.encode(&json);
    let qp = format!("note=3D{CARD}");
    let b = body(&[
        (
            &format!("{}\r\nContent-Type: application/json", field("a")),
            json.as_bytes(),
        ),
        (
            &format!(
                "{}\r\nContent-Type: application/json\r\nContent-Transfer-Encoding: base64",
                field("b")
            ),
            b64.as_bytes(),
        ),
        (
            &format!(
                "{}\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable",
                field("c")
            ),
            qp.as_bytes(),
        ),
    ]);
    // On a guard-only route the JSON parts' cards are leaks; the CVVs mean nothing.
    let x = extract(&guard(), req(&b)).unwrap();
    assert_eq!(x.findings().len(), 3);
    let out = apply(x);
    let parts = parts_of(&out);
    assert!(parts[0].contains(r#""cardNumber":"tok0""#), "{}", parts[0]);
    let b64_out = parts[1].rsplit("\r\n\r\n").next().unwrap().trim();
    let decoded = String::from_utf8(STANDARD.decode(b64_out).unwrap()).unwrap();
    assert!(decoded.contains(r#""cardNumber":"tok1""#), "{decoded}");
    assert!(parts[2].contains("note=3Dtok2"), "{}", parts[2]);
    assert!(!String::from_utf8_lossy(&out).contains(CARD));
}

#[test]
fn binary_parts_are_scanned_at_the_byte_level() {
    let mut png = vec![0x89, b'P', b'N', b'G', 0xff];
    png.extend_from_slice(CARD.as_bytes());
    png.push(0);
    let file =
        "Content-Disposition: form-data; name=\"f\"; filename=\"a.png\"\r\nContent-Type: image/png";
    let b = body(&[(file, &png)]);
    let x = extract(&guard(), req(&b)).unwrap();
    assert_eq!(x.findings().len(), 1);
    let out = apply(x);
    assert!(!out.windows(16).any(|w| w == CARD.as_bytes()));
    assert!(out.windows(9).any(|w| w == b"PNG\xfftok0\0"));

    // UTF-16 digits cannot be replaced in place: hidden, so refused unless a token of
    // ours.
    let utf16: Vec<u8> = CARD.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let b = body(&[(file, &utf16)]);
    assert!(crate::codec::tests_hostile::stopped(
        extract(&guard(), req(&b)),
        CARD
    ));
}

#[test]
fn what_cannot_be_rewritten_is_refused() {
    // A card in a part's headers.
    let head = format!("Content-Disposition: form-data; name=\"f\"; filename=\"{CARD}.txt\"");
    let b = body(&[(&head, b"x")]);
    assert!(matches!(
        extract(&guard(), req(&b)),
        Err(Error::LeakRejected(_))
    ));
    // A card in the preamble, nothing in the parts.
    let mut b = format!("{CARD}\r\n").into_bytes();
    b.extend(body(&[(&field("a"), b"1")]));
    assert!(matches!(
        extract(&guard(), req(&b)),
        Err(Error::LeakRejected(_))
    ));
    // A card in an escape in a text part.
    let esc: String = CARD
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let b = body(&[(&field("a"), esc.as_bytes())]);
    assert!(crate::codec::tests_hostile::stopped(
        extract(&guard(), req(&b)),
        CARD
    ));
}

#[test]
fn malformed_bodies_are_refused() {
    let mut unterminated = body(&[(&field("a"), b"1")]);
    unterminated.truncate(unterminated.len() - 4);
    let unknown_cte = body(&[(
        &format!("{}\r\nContent-Transfer-Encoding: x-uuencode", field("a")),
        b"1",
    )]);
    let bad_b64 = body(&[(
        &format!("{}\r\nContent-Transfer-Encoding: base64", field("a")),
        b"!!!",
    )]);
    // No Content-Disposition; and an empty header block whose content holds a blank
    // line, which multer would read as the end of the part's headers (found by the
    // fuzz smoke).
    let no_disposition = body(&[("Content-Type: text/plain", CARD.as_bytes())]);
    let mut empty_head = format!("--{B}\r\n\r\nnote\r\n").into_bytes();
    empty_head.extend_from_slice(field("x").as_bytes());
    empty_head.extend_from_slice(format!("\r\n\r\n{CARD}\r\n--{B}--\r\n").as_bytes());
    for b in [
        unterminated,
        unknown_cte,
        bad_b64,
        no_disposition,
        empty_head,
    ] {
        let e = extract(&guard(), req(&b)).err().unwrap();
        assert_eq!(e.code(), "invalid_body", "{e}");
    }
    let no_boundary = RequestParts {
        content_type: Some("multipart/form-data"),
        ..req(b"x")
    };
    assert!(extract(&guard(), no_boundary).is_err());
}

#[test]
fn nothing_found_means_unchanged() {
    let b = body(&[(&field("a"), b"hello"), (&field("b"), b"1234")]);
    let x = extract(&guard(), req(&b)).unwrap();
    assert!(x.findings().is_empty());
    assert!(
        x.apply(&Vec::<Option<String>>::new())
            .unwrap()
            .body
            .is_none()
    );
    // Rule fields across parts: duplicates and conditions.
    let dup = body(&[
        (&field("paymentType"), b"card"),
        (&field("cardCode"), b"739"),
        (&field("cardcode"), b"740"),
    ]);
    let e = extract(&q2_auto(), req(&dup)).err().unwrap();
    assert_eq!(e.code(), "duplicate_sensitive_field");
    let amb = body(&[
        (&field("paymentType"), b"paypal"),
        (&field("cardCode"), b"739"),
    ]);
    let e = extract(&q2_auto(), req(&amb)).err().unwrap();
    assert_eq!(e.code(), "ambiguous_sensitive_field");
}

/// A body of one quoted-printable part that no codec reads (scanned as bytes).
fn qp_body(content: &[u8]) -> Vec<u8> {
    body(&[(
        &format!(
            "{}\r\nContent-Type: application/octet-stream\r\n\
             Content-Transfer-Encoding: quoted-printable",
            field("note")
        ),
        content,
    )])
}

/// Rewrite every finding in `b` with a token, expecting a refusal: how many findings
/// there were, and the error.
fn refused_rewrite(b: &[u8]) -> (usize, Error) {
    let x = extract(&guard(), req(b)).unwrap();
    let n = x.findings().len();
    let toks: Vec<Option<String>> = (0..n).map(|i| Some(format!("tok{i}"))).collect();
    let Err(e) = x.apply(&toks) else {
        panic!("the rewrite went through");
    };
    (n, e)
}

#[test]
fn a_rewrite_that_would_not_read_back_is_refused() {
    // A quoted-printable part whose content has a bare `\n` before a line that looks
    // like the boundary, and a base64 "part" after it holding a card. Read here, it is
    // one part. Re-encoded, the `\n` becomes a line break, so an upstream would read
    // a second part and decode the card from its base64. A bare `\n` is not
    // quoted-printable as RFC 2045 writes it: such a part is now refused as it is
    // read, before any rewrite.
    let hidden = STANDARD.encode(CARD);
    let content = format!(
        "card {CARD}\n--{B}\r\nContent-Disposition: form-data; name=\"evil\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{hidden}"
    );
    let e = extract(&guard(), req(&qp_body(content.as_bytes())))
        .err()
        .unwrap();
    assert_eq!(e.code(), "invalid_body", "{e}");
}

#[test]
fn quoted_printable_that_is_not_crlf_lines_of_7bit_text_is_refused() {
    // Found by the leak differential (`tests/proxy/leak_differential`): a bare `\n`
    // decodes to CRLF here, so `4242424242\n  42424=EF=BC=92` held four separators
    // between two groups to the guard and three to Python's `quopri`, a card. Bytes
    // outside 7-bit text were dropped here and kept there.
    for content in [
        b"4242424242\n  42424=EF=BC=92".as_slice(),
        b"4242 4242\r4242 4242",
        "4242 4242 4242 424\u{0662}".as_bytes(),
        b"card 4242\x004242",
    ] {
        let e = extract(&guard(), req(&qp_body(content))).err().unwrap();
        assert_eq!(e.code(), "invalid_body", "{content:?}");
    }
    // CRLF lines of printable text, tabs, soft breaks and escapes still read.
    let ok = b"note =3D 1=\r\n2\tthree\r\nfour=C3=A9";
    assert!(extract(&guard(), req(&qp_body(ok))).is_ok());
}

#[test]
fn quoted_printable_is_written_without_soft_line_breaks() {
    // A long digit run: a soft line break inside it would leave a card-shaped piece
    // (here 2422222222222222) for a reader that does not decode the part.
    let long = format!("card {CARD} then {}", "2".repeat(120));
    let out = apply(extract(&guard(), req(&qp_body(long.as_bytes()))).unwrap());
    let text = String::from_utf8_lossy(&out);
    assert!(!text.contains("=\r\n"), "{text}");
    assert!(text.contains(&"2".repeat(120)), "{text}");
    assert!(!text.contains(CARD), "{text}");
}

#[test]
fn a_rewrite_that_would_show_a_new_card_number_is_refused() {
    // Byte 0xD4 is written `=D4`; its last hex digit leads the twelve digits after
    // it, so a reader that does not decode the part sees 4242424142424, a 13-digit
    // Visa number that the decoded content does not hold. In the input a soft line
    // break keeps them apart; the rewrite writes none.
    let content = format!("card {CARD} x=D42424241=\r\n42424");
    let (n, e) = refused_rewrite(&qp_body(content.as_bytes()));
    assert_eq!(n, 1, "the card written as it is");
    assert_eq!(e.code(), "invalid_body", "{e}");
}

// === hostile parts: per-part charsets and Content-Disposition readings ===

use crate::codec::disposition::{self, Disposition, Refusal};
use crate::rules::{FieldPath, FieldRule, Location, RouteRules as Rules};

/// The red team's custom field route: `card_number` (PAN) and `cvv` (CVV).
fn custom() -> Rules {
    let rule = |path: &str, class| FieldRule {
        path: FieldPath::parse(path).unwrap(),
        class,
        format: None,
        deterministic: None,
        when: None,
        scope: None,
        location: Location::Body,
    };
    Rules {
        fields: vec![
            rule("card_number", DataClass::Pan),
            rule("cvv", DataClass::Cvv),
        ],
        ..Rules::default()
    }
}

/// A body with a `card_number` part and one more part (`head`, `content`).
fn with_card(head: &str, content: &[u8]) -> Vec<u8> {
    body(&[(&field("card_number"), CARD.as_bytes()), (head, content)])
}

fn name(header: &str) -> Option<String> {
    disposition::parse(header.as_bytes()).unwrap().name
}

fn refusal(header: &str) -> Refusal {
    disposition::parse(header.as_bytes()).unwrap_err()
}

#[test]
fn disposition_parameters_are_tokenized() {
    for (header, want) in [
        (r#"form-data; name="cvv""#, "cvv"),
        (r#"form-data; Name="cvv""#, "cvv"),
        ("form-data; NAME=cvv", "cvv"),
        (r#"form-data; foo="a;name=x"; name="cvv""#, "cvv"),
        (r#"form-data; foo="a\";name=x"; name="cvv""#, "cvv"),
        (r#"form-data; name="a;b"; filename="x\"y.txt""#, "a;b"),
        (r#"form-data; filename="C:\dir\a.txt"; name="f""#, "f"),
        (" form-data ;\tname = \"cvv\" ;", "cvv"),
        ("form-data;;name=cvv", "cvv"),
        ("form-data; name=card[number]", "card[number]"),
        ("form-data; filename*=UTF-8''a%20b.txt; name=f", "f"),
        ("form-data; name=\"\"", ""),
        ("form-data; name=\"你好\"", "你好"),
    ] {
        assert_eq!(name(header).as_deref(), Some(want), "{header}");
    }
    assert_eq!(
        disposition::parse(b"form-data; filename=\"a.txt\""),
        Ok(Disposition { name: None })
    );
    assert_eq!(name("form-data"), None);
    // A name that is not UTF-8 cannot match a rule key, nor read as one.
    assert_eq!(
        disposition::parse(b"form-data; name=\"c\xffv\"")
            .unwrap()
            .name
            .as_deref(),
        Some("c\u{fffd}v")
    );
}

#[test]
fn dispositions_backends_read_differently_are_refused() {
    let extended = "has an extended or continued name parameter (name*)";
    let twice = "has more than one name parameter";
    let backslash = "has a backslash in its quoted name";
    let unterminated = "has an unterminated quoted string";
    let due = "has bytes where a ';' or its end was due";
    for (header, what, at) in [
        ("form-data; name*=UTF-8''cvv", extended, 11),
        ("form-data; name*=UTF-8''c%76v", extended, 11),
        ("form-data; name*=us-ascii'en'cvv", extended, 11),
        (r#"form-data; name*0="c"; name*1="vv""#, extended, 11),
        (r#"form-data; NAME*=UTF-8''cvv; name="x""#, extended, 11),
        (r#"form-data; name="x"; name*=UTF-8''cvv"#, extended, 21),
        (r#"form-data; name="x"; name="cvv""#, twice, 21),
        (r#"form-data; name="x"; Name=cvv"#, twice, 21),
        (r#"form-data; name="c\vv""#, backslash, 11),
        (r#"form-data; name="c\"vv""#, backslash, 11),
        (r#"form-data; name="cvv"#, unterminated, 16),
        (r#"form-data; name="cvv\"#, unterminated, 16),
        (r#"form-data; filename="a; name="cvv""#, due, 30),
        (r#"form-data; name="cvv"x"#, due, 21),
        (r#"form-data name="cvv""#, due, 10),
        (
            r#"form-data; na me="cvv""#,
            "has a parameter without a value",
            14,
        ),
        (
            r#"form-data; "name"="cvv""#,
            "has a parameter name that is not a token",
            11,
        ),
        ("form-data; name", "has a parameter without a value", 15),
        (
            r#"form-data; name=c"vv"#,
            "has a quote or backslash in an unquoted value",
            17,
        ),
        (
            r"form-data; name=c\vv",
            "has a quote or backslash in an unquoted value",
            17,
        ),
    ] {
        assert_eq!(refusal(header), Refusal { what, at }, "{header}");
    }
}

#[test]
fn parts_whose_disposition_backends_read_differently_are_refused() {
    let rules = custom();
    // Read as the backends read them: the CVV is a finding, never forwarded as sent.
    for disp in [
        r#"form-data; Name="cvv""#,
        "form-data; NAME=cvv",
        r#"form-data; foo="a;name=x"; name="cvv""#,
    ] {
        let b = with_card(&format!("Content-Disposition: {disp}"), b"218");
        let x = extract(&rules, req(&b)).unwrap();
        let classes: Vec<_> = x.findings().iter().map(|f| f.class).collect();
        assert_eq!(classes, [DataClass::Pan, DataClass::Cvv], "{disp}");
        let out = apply(x);
        assert!(!out.windows(3).any(|w| w == b"218"), "{disp}");
    }
    // Read differently by different backends: refused, the message naming the part,
    // the problem and a byte, never the content.
    for disp in [
        "form-data; name*=UTF-8''cvv",
        "form-data; name*=UTF-8''c%76v",
        "form-data; name*=us-ascii'en'cvv",
        r#"form-data; name*0="c"; name*1="vv""#,
        r#"form-data; name*=UTF-8''cvv; name="x""#,
        r#"form-data; name="c\vv""#,
        r#"form-data; name="cvv"#,
        r#"form-data; name="x"; name="cvv""#,
    ] {
        let b = with_card(&format!("Content-Disposition: {disp}"), b"218");
        let e = extract(&rules, req(&b)).err().unwrap();
        assert_eq!(e.code(), "invalid_body", "{disp}: {e}");
        let msg = e.to_string();
        assert!(msg.contains("part 2's Content-Disposition"), "{msg}");
        assert!(msg.contains("byte"), "{msg}");
        assert!(!msg.contains("cvv") && !msg.contains("218"), "{msg}");
    }
}

#[test]
fn a_part_a_rule_names_is_that_field_whatever_its_type() {
    let rules = custom();
    for extra in [
        "\r\nContent-Type: application/octet-stream",
        "; filename=\"a.txt\"\r\nContent-Type: application/octet-stream",
        "; filename=\"a.bin\"",
        "\r\nContent-Type: application/json",
        "\r\nContent-Type: application/x-www-form-urlencoded",
        "\r\nContent-Type: image/png",
        "\r\nContent-Type: text/html; charset=utf-8",
    ] {
        let head = format!("Content-Disposition: form-data; name=\"cvv\"{extra}");
        let b = with_card(&head, b"218");
        let x = extract(&rules, req(&b)).unwrap();
        let classes: Vec<_> = x.findings().iter().map(|f| f.class).collect();
        assert_eq!(classes, [DataClass::Pan, DataClass::Cvv], "{extra}");
        let out = apply(x);
        let text = String::from_utf8_lossy(&out);
        assert!(
            !text.contains("218") && !text.contains(CARD),
            "{extra}: {text}"
        );
        assert!(text.contains("\r\n\r\ntok1\r\n"), "{extra}: {text}");
    }
    // Content that is not UTF-8 cannot be read as the field: refused.
    let head = "Content-Disposition: form-data; name=\"cvv\"; filename=\"a.bin\"\r\n\
                Content-Type: application/octet-stream";
    let b = with_card(head, b"21\xff8");
    let e = extract(&rules, req(&b)).err().unwrap();
    assert_eq!(e.code(), "invalid_body", "{e}");
    assert!(e.to_string().contains("part 2"), "{e}");
    // A file part no rule names is still scanned as bytes.
    let head = "Content-Disposition: form-data; name=\"doc\"; filename=\"a.bin\"";
    let x = extract(&rules, req(&with_card(head, b"21\xff8"))).unwrap();
    assert_eq!(x.findings().len(), 1);
}

/// The text in UTF-16BE.
fn utf16be(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

#[test]
fn part_charsets_that_are_not_ascii_transparent_are_refused() {
    let spaced = "4242 - 4242 - 4242 - 4242";
    let utf7 = b"+ADQAMgA0ADIANAAyADQAMgA0ADIANAAyADQAMgA0ADI-".to_vec();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "Content-Type: text/plain; charset=utf-16be",
            utf16be(spaced),
        ),
        ("Content-Type: text/plain; charset=utf-7", utf7.clone()),
        (
            "Content-Type: text/plain; charset=iso-2022-jp",
            b"x".to_vec(),
        ),
        ("Content-Type: text/html; charset=utf-16be", utf16be("218")),
        ("Content-Type: text/csv; charset=utf-7", utf7.clone()),
        (
            "Content-Type: text/plain; CHARSET=\"UTF-16BE\"",
            utf16be(spaced),
        ),
        ("Content-Type: text/plain; Charset = utf-7", utf7.clone()),
        ("Content-Type: charset=utf-16be", utf16be(spaced)),
        ("content-type: ;charset=utf-7", utf7.clone()),
        (
            "Content-Type: application/octet-stream; charset=utf-16le",
            b"x".to_vec(),
        ),
        (
            "Content-Type: text/plain; charset*=''utf-16be",
            utf16be(spaced),
        ),
        ("Content-Type: text/plain;\r\n charset=utf-7", utf7.clone()),
        // Several Content-Type headers: every one is read.
        (
            "Content-Type: text/plain; charset=utf-16be\r\nContent-Type: text/plain",
            utf16be(spaced),
        ),
        (
            "Content-Type: text/plain\r\nContent-Type: text/plain; charset=utf-7",
            utf7.clone(),
        ),
    ];
    for rules in [guard(), custom(), q2_auto()] {
        for (ct, content) in &cases {
            for name in ["n", "cvv"] {
                let b = with_card(&format!("{}\r\n{ct}", field(name)), content);
                let e = extract(&rules, req(&b)).err().unwrap();
                assert_eq!(e.code(), "unsupported_media", "{ct}: {e}");
                assert!(e.to_string().contains("byte"), "{e}");
            }
        }
    }
    // ASCII-transparent charsets keep working.
    for cs in [
        "utf-8",
        "UTF-8",
        "\"utf-8\"",
        "us-ascii",
        "iso-8859-1",
        "ISO-8859-15",
        "windows-1252",
    ] {
        let b = with_card(
            &format!("{}\r\nContent-Type: text/plain; charset={cs}", field("cvv")),
            b"218",
        );
        let x = extract(&custom(), req(&b)).unwrap();
        assert_eq!(x.findings().len(), 2, "{cs}");
        let out = apply(x);
        assert!(!out.windows(3).any(|w| w == b"218"), "{cs}");
    }
}

#[test]
fn a_second_disposition_type_or_transfer_encoding_is_refused() {
    let rules = custom();
    for head in [
        // multer keeps the last of each; busboy and Python read the first.
        "Content-Disposition: form-data; name=\"cvv\"\r\nContent-Disposition: form-data; name=\"x\"",
        "Content-Disposition: form-data; name=\"x\"\r\ncontent-disposition: form-data; name=\"cvv\"",
        "Content-Disposition: form-data; name=\"x\"\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Transfer-Encoding: 7bit",
        "Content-Disposition: form-data; name=\"x\"\r\nContent-Type: application/json\r\n\
         Content-Type: text/plain",
    ] {
        let b = with_card(head, b"MjE4");
        let e = extract(&rules, req(&b)).err().unwrap();
        assert_eq!(e.code(), "invalid_body", "{head}: {e}");
        let msg = e.to_string();
        assert!(msg.contains("second") && msg.contains("byte"), "{msg}");
    }
}

#[test]
fn header_blocks_are_read_in_linear_time() {
    // Delimiters on every line and no blank line: each line is read a bounded number
    // of times (a scan per delimiter to the end of the body would take minutes).
    let mut b = Vec::new();
    for _ in 0..50_000 {
        b.extend_from_slice(format!("x--{B}--{B}\r\nX: y\r\n").as_bytes());
    }
    let start = std::time::Instant::now();
    assert!(extract(&guard(), req(&b)).is_err());
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}
