//! `vaultgate demo`: every reveal command it prints works for the tokens its echo
//! shows, CVVs included, and it says where the audit log is.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common::*;
use http::StatusCode;
use serde_json::Value;
use vaultgate::demo::run::{Demo, DemoOptions};

/// The JSON body of a printed `curl … -d '…'` command, as the shell would pass it.
fn body_of(cmd: &str) -> Value {
    let quoted = cmd
        .split_once("-d '")
        .unwrap()
        .1
        .strip_suffix('\'')
        .unwrap();
    serde_json::from_str(&quoted.replace("'\\''", "'")).unwrap()
}

#[tokio::test]
async fn the_printed_reveal_commands_reveal_every_token_cvvs_included() {
    let demo = Demo::start(&DemoOptions {
        proxy_listen: "127.0.0.1:0".into(),
        api_listen: "127.0.0.1:0".into(),
    })
    .await
    .unwrap();
    let runs = demo.run_examples().await.unwrap();
    let text = demo.render(&runs);
    assert!(
        text.contains(&format!("Audit log: {}", demo.audit_log().display())),
        "{text}"
    );

    let with_cvv = runs
        .iter()
        .filter(|r| r.tokens.iter().any(|t| t.scope.is_some()))
        .count();
    assert!(with_cvv >= 3, "q2open, Hostway and Plano carry a CVV");
    let curl = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok();
    let mut revealed = 0;
    for run in &runs {
        let Some(cmd) = &run.reveal else {
            assert!(
                run.name.contains("stripe"),
                "{}: nothing tokenized",
                run.name
            );
            continue;
        };
        assert!(
            text.contains(cmd.as_str()),
            "{}: command not printed",
            run.name
        );
        let results: Value = if curl {
            // Exactly as a user pastes it.
            // Async: the demo serves on this test's runtime.
            let out = tokio::process::Command::new("sh")
                .args(["-c", cmd])
                .output()
                .await
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice(&out.stdout).unwrap()
        } else {
            let r = api(
                demo.api_addr(),
                "POST",
                "/v1/detokenize",
                demo.api_key(),
                body_of(cmd),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK);
            r.json()
        };
        let results = results["results"].as_array().unwrap().clone();
        assert_eq!(results.len(), run.tokens.len(), "{}", run.name);
        for item in &results {
            assert!(item.get("error").is_none(), "{}: {item}", run.name);
            assert!(item["value"].is_string(), "{}: {item}", run.name);
            revealed += 1;
        }
    }
    assert!(revealed >= 8);
    let audit = std::fs::read_to_string(demo.audit_log()).unwrap();
    assert!(audit.contains(r#""action":"reveal""#));
    demo.stop().await.unwrap();
}
