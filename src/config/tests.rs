use super::*;
use crate::rules::{BodyKind, LeakPolicy, profiles};

const BASE: &str = r#"
    [proxy]
    listen = "127.0.0.1:0"
    [api]
    listen = "127.0.0.1:0"
    [[upstreams]]
    name = "backend"
    url = "http://127.0.0.1:9000"
"#;

fn with(extra: &str) -> Result<Config> {
    Config::from_toml_str(&format!("{BASE}\n{extra}"))
}

fn err(extra: &str) -> String {
    match with(extra) {
        Err(Error::Config(msg)) => msg,
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn defaults_apply() {
    let c = with("").unwrap();
    assert_eq!(c.proxy.max_connections, 10_000);
    assert_eq!(c.proxy.header_read_timeout_ms, 10_000);
    assert_eq!(c.limits.max_body_bytes, 1_048_576);
    assert_eq!(c.limits.upstream_timeout_ms, 30_000);
    assert_eq!(c.limits.body_read_timeout_ms, 10_000);
    assert_eq!(c.limits.max_buffered_body_bytes, 268_435_456);
    assert_eq!(c.log.format, LogFormat::Text);
    assert_eq!(c.vault, VaultSettings::default());
}

#[test]
fn the_body_budget_holds_at_least_one_whole_body() {
    let msg = err("[limits]\nmax_body_bytes = 4096\nmax_buffered_body_bytes = 4095");
    assert!(msg.contains("limits.max_buffered_body_bytes"), "{msg}");
    with("[limits]\nmax_body_bytes = 4096\nmax_buffered_body_bytes = 4096").unwrap();
}

#[test]
fn full_route_parses_and_resolves_rules() {
    let c = with(
        r#"
        [[routes]]
        name = "cards"
        upstream = "backend"
        method = "POST"
        path = "/accounts/{id}/paymentInfo"
        content_types = ["application/json"]
        body = "json"
        fields = [{ path = "card.number", class = "pan" }]

        [[routes]]
        name = "rest"
        upstream = "backend"
        path = "/*"
        "#,
    )
    .unwrap();
    let cards = c.routes[0].rules();
    assert_eq!(cards.leak_guard, LeakPolicy::Tokenize);
    assert_eq!(cards.body, BodyKind::Json);
    assert_eq!(cards.fields.len(), 1);
    assert!(c.routes[1].rules().is_pass_through());
    assert_eq!(c.routes[1].method, "*");
}

#[test]
fn profile_route_is_not_pass_through() {
    let c = with(
        r#"
        [[routes]]
        name = "q2"
        upstream = "backend"
        path = "/v1/payment"
        profile = "q2open"
        "#,
    )
    .unwrap();
    assert!(!c.routes[0].rules().is_pass_through());
}

#[test]
fn unknown_keys_are_rejected() {
    assert!(err("[limits]\nmax_body = 3").contains("max_body"));
    let msg = err(r#"
        [[routes]]
        name = "a"
        upstream = "backend"
        path = "/x"
        fields = [{ path = "a", class = "pan", colour = "red" }]
        "#);
    assert!(msg.contains("colour"), "{msg}");
}

#[test]
fn errors_name_the_key() {
    let route = |name: &str, upstream: &str, path: &str, extra: &str| {
        format!(
            "[[routes]]\nname = \"{name}\"\nupstream = \"{upstream}\"\npath = \"{path}\"\n{extra}\n"
        )
    };
    let ok = route("a", "backend", "/a", "");
    assert!(
        err(&format!("{ok}{}", route("b", "nope", "/b", ""))).starts_with("routes[1].upstream")
    );
    assert!(err(&format!("{ok}{}", route("a", "backend", "/b", ""))).starts_with("routes[1].name"));
    assert!(
        err(&route("a", "backend", "/a", "profile = \"visa\"")).starts_with("routes[0].profile")
    );
    assert!(err(&route("a", "backend", "no-slash", "")).starts_with("routes[0].path"));
    assert!(err(&route("a", "backend", "/a/{x", "")).starts_with("routes[0].path"));
    assert!(
        err(&route("a", "backend", "/a", "method = \"PO ST\"")).starts_with("routes[0].method")
    );
    assert!(
        err(&route(
            "a",
            "backend",
            "/a",
            "fields = [{ path = \"\", class = \"pan\" }]"
        ))
        .starts_with("routes[0].fields[0].path")
    );
    assert!(err("[[upstreams]]\nname = \"x\"\nurl = \"ftp://h\"").starts_with("upstreams[1].url"));
    assert!(
        err("[[upstreams]]\nname = \"backend\"\nurl = \"http://h\"")
            .starts_with("upstreams[1].name")
    );
    let bad_listen = Config::from_toml_str("[proxy]\nlisten = \"localhost\"");
    assert!(matches!(bad_listen, Err(Error::Config(m)) if m.starts_with("proxy.listen")));
}

#[test]
fn tls_shape_parses() {
    let c = Config::from_toml_str(
        r#"
        [proxy]
        listen = "127.0.0.1:0"
        tls = { cert = "c.pem", key = "k.pem" }
        [api]
        listen = "127.0.0.1:0"
        tls = { cert = "c.pem", key = "k.pem", client_ca = "ca.pem" }
        [log]
        format = "json"
        level = "debug"
        "#,
    )
    .unwrap();
    assert_eq!(c.api.tls.unwrap().client_ca, Some(PathBuf::from("ca.pem")));
    assert_eq!(c.log.format, LogFormat::Json);
    let msg = Config::from_toml_str(
        "[proxy]\nlisten = \"127.0.0.1:0\"\ntls = { cert = \"c\", key = \"k\", client_ca = \"x\" }",
    );
    assert!(matches!(msg, Err(Error::Config(m)) if m.starts_with("proxy.tls.client_ca")));
}

#[test]
fn example_configs_validate() {
    let full = Config::from_toml_str(include_str!("../../examples/config/vaultgate.toml")).unwrap();
    assert_eq!(full.routes.len(), 5);
    assert_eq!(full.routes[2].rules().leak_guard, LeakPolicy::Reject);
    assert!(full.routes[4].rules().is_pass_through());
    Config::from_toml_str(include_str!("../../examples/config/minimal.toml")).unwrap();
    for (profile, text) in [
        ("q2open", include_str!("../../examples/config/q2open.toml")),
        (
            "oracle_brm",
            include_str!("../../examples/config/oracle_brm.toml"),
        ),
        (
            "hostway",
            include_str!("../../examples/config/hostway.toml"),
        ),
        (
            "payment_method",
            include_str!("../../examples/config/payment_method.toml"),
        ),
        ("plano", include_str!("../../examples/config/plano.toml")),
    ] {
        let c = Config::from_toml_str(text).unwrap();
        assert_eq!(c.routes[0].profile.as_deref(), Some(profile));
        assert!(!c.routes[0].rules().is_pass_through());
    }
}

#[test]
fn demo_config_validates() {
    let c = Config::demo(
        "127.0.0.1:0",
        "127.0.0.1:0",
        "http://127.0.0.1:9",
        Path::new("/tmp/x"),
    )
    .unwrap();
    c.validate().unwrap();
    assert_eq!(c.routes.len(), profiles::NAMES.len() + 1);
}

#[test]
fn outbound_routes_are_exact_and_guard_answers_by_default() {
    let route = |extra: &str| {
        let c = with(&format!(
            "[outbound]\nlisten = \"127.0.0.1:0\"\n[[outbound.routes]]\nname = \"p\"\n\
             path = \"/p\"\ndestination = \"https://processor.example\"\n{extra}"
        ))
        .unwrap();
        c.outbound.unwrap().routes.remove(0)
    };
    let r = route("");
    assert!(r.exact);
    assert!(r.swap_echoes);
    assert_eq!(r.answer_guard, AnswerGuard::Tokenize);
    let r = route("exact = false\nanswer_guard = \"refuse\"");
    assert!(!r.exact);
    assert_eq!(r.answer_guard, AnswerGuard::Refuse);
    assert_eq!(
        route("answer_guard = \"off\"").answer_guard,
        AnswerGuard::Off
    );
    let msg = err(
        "[outbound]\nlisten = \"127.0.0.1:0\"\n[[outbound.routes]]\nname = \"p\"\n\
         path = \"/p\"\ndestination = \"https://processor.example\"\nanswer_guard = \"mask\"",
    );
    assert!(msg.contains("answer_guard"), "{msg}");
}
