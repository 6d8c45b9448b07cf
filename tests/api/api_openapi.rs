//! `openapi.json` stays true to the running server: every documented operation
//! answers with documented statuses and the documented required fields, and every
//! route the server answers is documented.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common::*;
use http::StatusCode;
use serde_json::{Value, json};

const SPEC: &str = include_str!("../../openapi.json");

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// Check required fields and types of objects and arrays, recursively.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = resolve(doc, schema);
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for key in required {
            let key = key.as_str().unwrap();
            assert!(
                value.get(key).is_some(),
                "{at}: missing required field {key} in {value}"
            );
        }
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {
            assert!(value.is_object(), "{at}: expected an object, got {value}");
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, s) in props {
                    if let Some(v) = value.get(k) {
                        check(doc, s, v, &format!("{at}.{k}"));
                    }
                }
            }
        }
        Some("array") => {
            for (i, v) in value.as_array().expect("array").iter().enumerate() {
                check(doc, &schema["items"], v, &format!("{at}[{i}]"));
            }
        }
        Some("string") => assert!(value.is_string(), "{at}: expected a string"),
        Some("integer") => assert!(
            value.is_u64() || value.is_i64(),
            "{at}: expected an integer"
        ),
        Some("boolean") => assert!(value.is_boolean(), "{at}: expected a boolean"),
        _ => {}
    }
}

/// The documented path template a concrete path falls under.
fn documented_template(paths: &serde_json::Map<String, Value>, path: &str) -> String {
    if path.starts_with("/v1/tokens/") && path.len() > "/v1/tokens/".len() {
        "/v1/tokens/{token}".to_owned()
    } else {
        assert!(
            paths.contains_key(path),
            "405 for an undocumented path {path}"
        );
        path.to_owned()
    }
}

/// A valid request body for an operation.
fn body_for(path: &str, method: &str, token: &str) -> Value {
    match (path, method) {
        ("/v1/detokenize", "post") => json!({ "tokens": [token, "no-such-token"] }),
        ("/v1/tokenize", "post") => {
            json!({ "values": [{ "class": "pan", "value": "5555555555554444" }] })
        }
        _ => Value::Null,
    }
}

#[tokio::test]
async fn openapi_matches_the_server() {
    let doc: Value = serde_json::from_str(SPEC).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = api_client(
        "all",
        "reveal = [\"pan\", \"cvv\", \"bank_account\", \"secret\"]\ntokenize = [\"pan\"]\ndelete = true",
    );
    let toml = config_toml(
        "http://127.0.0.1:9",
        &format!("{}{}", audit_toml(&dir.path().join("audit.log")), c.toml),
    );
    let handle = start(&toml).await;
    let addr = handle.api_addr();
    let fresh_token = || async {
        let r = api(
            addr,
            "POST",
            "/v1/tokenize",
            &c.key,
            json!({ "values": [{ "class": "pan", "value": "4000056655665556", "deterministic": false }] }),
        )
        .await;
        r.json()["results"][0]["token"].as_str().unwrap().to_owned()
    };

    let paths = doc["paths"].as_object().unwrap();
    let mut documented = Vec::new();
    for (template, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            documented.push((template.clone(), method.to_uppercase()));
            let token = fresh_token().await;
            let path = template.replace("{token}", &token);
            let responses = op["responses"].as_object().unwrap();
            let body = body_for(template, method, &token);
            let m = method.to_uppercase();

            // Authenticated, valid: 200 with the documented fields.
            let r = api(addr, &m, &path, &c.key, body.clone()).await;
            assert_eq!(r.status, StatusCode::OK, "{m} {template}: {:?}", r.body);
            let ok = &responses["200"];
            if let Some(schema) = ok["content"]["application/json"]["schema"].as_object() {
                check(
                    &doc,
                    &Value::Object(schema.clone()),
                    &r.json(),
                    &format!("{m} {template}"),
                );
            }

            // Without a credential: 401 if the operation is secured.
            if op.get("security").is_some() {
                let r = call(addr, &m, &path, None, body.clone()).await;
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{m} {template}");
                assert!(
                    responses.contains_key("401"),
                    "{m} {template}: 401 undocumented"
                );
                check(
                    &doc,
                    &responses["401"]["content"]["application/json"]["schema"],
                    &r.json(),
                    "401",
                );
            }
            // A malformed body: a documented 4xx.
            if !body.is_null() {
                let r = api(addr, &m, &path, &c.key, json!({ "nope": 1 })).await;
                assert!(
                    responses.contains_key(r.status.as_str()),
                    "{m} {template}: {} undocumented",
                    r.status
                );
            }
            // An unknown token: a documented status.
            if template.contains("{token}") {
                let r = api(
                    addr,
                    &m,
                    &template.replace("{token}", "tok_nope"),
                    &c.key,
                    Value::Null,
                )
                .await;
                assert!(
                    responses.contains_key(r.status.as_str()),
                    "{m} {template}: {} undocumented",
                    r.status
                );
            }
        }
    }

    // Every route the server answers is documented: probe every method on every
    // documented path and a few others; anything but `no_route` (unknown path) or
    // `method_not_allowed` (a documented path, another method) must be in the file.
    let token = fresh_token().await;
    let mut probes: Vec<String> = paths.keys().map(|p| p.replace("{token}", &token)).collect();
    probes.extend(
        [
            "/v1/tokens",
            "/v1/tokens/",
            "/v1/reveal",
            "/v2/detokenize",
            "/",
        ]
        .map(String::from),
    );
    for path in &probes {
        for m in ["GET", "POST", "PUT", "PATCH", "DELETE", "TRACE", "OPTIONS"] {
            let r = api(addr, m, path, &c.key, json!({ "tokens": ["x"] })).await;
            let no_route = r.status == StatusCode::NOT_FOUND
                && r.json()["error"]["code"].as_str() == Some("no_route");
            if r.status == StatusCode::METHOD_NOT_ALLOWED {
                let allow = r.headers["allow"].to_str().unwrap();
                let template = documented_template(paths, path);
                let mut want: Vec<String> = documented
                    .iter()
                    .filter(|(t, _)| *t == template)
                    .map(|(_, m)| m.clone())
                    .collect();
                want.sort();
                let mut got: Vec<String> = allow.split(", ").map(str::to_owned).collect();
                got.sort();
                assert_eq!(got, want, "{m} {path}: Allow: {allow}");
                assert!(
                    !want.contains(&m.to_owned()),
                    "{m} {path}: 405 but documented"
                );
                continue;
            }
            if !no_route {
                let template =
                    if path.starts_with("/v1/tokens/") && path.len() > "/v1/tokens/".len() {
                        "/v1/tokens/{token}".to_owned()
                    } else {
                        path.clone()
                    };
                assert!(
                    documented.contains(&(template.clone(), m.to_owned())),
                    "{m} {template} answers {} but is not in openapi.json",
                    r.status
                );
            }
        }
    }
    handle.stop().await;
}
