//! `vaultgate demo`: the proxy with all five profiles in front of an embedded echo
//! upstream, on a throwaway keyring and store in a temp dir.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use zeroize::Zeroizing;

use super::echo::{EchoHandle, EchoUpstream};
use super::reveal::{self, TokenRef};
use crate::app;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::vault::keys::keyring::{self, KdfParams, Passphrase};
use crate::vault::{Vault, keys::crypto};

/// Where the demo listens.
pub struct DemoOptions {
    pub proxy_listen: String,
    pub api_listen: String,
}

/// The documented example requests, as (name, path, content type, body). The bodies
/// are the APIs' own examples, kept in `examples/requests/` (well-known test card
/// numbers only), so they can also be sent with `curl -d @examples/requests/…`.
pub fn examples() -> Vec<(&'static str, &'static str, &'static str, String)> {
    let body = |text: &str| text.trim_end().to_owned();
    vec![
        (
            "q2open card",
            "/v1/payment",
            "application/json",
            body(include_str!("../../examples/requests/q2open-card.json")),
        ),
        (
            "q2open bank",
            "/v1/payment",
            "application/json",
            body(include_str!("../../examples/requests/q2open-bank.json")),
        ),
        (
            "Oracle BRM",
            "/brm/paymentMethods/v1/paymentMethod",
            "application/json",
            body(include_str!("../../examples/requests/oracle-brm.json")),
        ),
        (
            "Hostway credit card",
            "/accounts/1042/paymentInfo",
            "application/json",
            body(include_str!("../../examples/requests/hostway-card.json")),
        ),
        (
            "stripe-backed payment method (no card: passes through untouched)",
            "/payment-method",
            "application/json",
            body(include_str!("../../examples/requests/stripe-backed.json")),
        ),
        (
            "Plano (base64 sensitive params)",
            "/payment-methods",
            "text/plain",
            base64::engine::general_purpose::STANDARD
                .encode(include_str!("../../examples/requests/plano-params.json").trim_end()),
        ),
    ]
}

/// A running demo: the proxy, the API, the echo upstream and the throwaway vault.
pub struct Demo {
    dir: tempfile::TempDir,
    handle: app::ServerHandle,
    vault: Arc<Vault>,
    echo: EchoHandle,
    upstream: SocketAddr,
    api_key: Zeroizing<String>,
    audit_log: PathBuf,
}

/// One documented example, sent through the proxy by the demo itself.
pub struct ExampleRun {
    pub name: &'static str,
    /// The `curl` that sends it through the proxy.
    pub send: String,
    /// The body the backend received.
    pub received: String,
    /// The tokens in it, CVV tokens with their scope.
    pub tokens: Vec<TokenRef>,
    /// The `curl` that reveals them (none when nothing was tokenized).
    pub reveal: Option<String>,
}

impl Demo {
    /// Start everything on a throwaway keyring and store in a temp dir.
    pub async fn start(opts: &DemoOptions) -> Result<Demo> {
        let dir = tempfile::Builder::new()
            .prefix("vaultgate-demo-")
            .tempdir()
            .map_err(|e| Error::io("create the demo's temp dir", e))?;
        let (upstream, echo) = EchoUpstream::start().await?;
        let mut config = Config::demo(
            &opts.proxy_listen,
            &opts.api_listen,
            &format!("http://{upstream}"),
            dir.path(),
        )?;
        let api_key = crate::demo::clients::add_demo_client(&mut config)?;
        config.validate()?;
        let audit_log = config
            .audit
            .path
            .clone()
            .ok_or(Error::Internal("the demo has no audit log"))?;

        // A throwaway passphrase that nobody needs to know: the keyring dies with the demo.
        let pass = Passphrase::new(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crypto::random_bytes::<24>()),
        )?;
        let keys = keyring::init(&config.vault.keyring, &pass, KdfParams::MINIMUM)?;
        let vault = Arc::new(Vault::open_async(&config.vault, keys).await?);
        let handle = app::start(&config, Arc::clone(&vault)).await?;
        Ok(Demo {
            dir,
            handle,
            vault,
            echo,
            upstream,
            api_key,
            audit_log,
        })
    }

    /// The API listener's address.
    pub fn api_addr(&self) -> SocketAddr {
        self.handle.api_addr()
    }

    /// The proxy listener's address.
    pub fn proxy_addr(&self) -> SocketAddr {
        self.handle.proxy_addr()
    }

    /// The demo client's API key.
    pub fn api_key(&self) -> &str {
        self.api_key.as_str()
    }

    /// Where the audit log is written.
    pub fn audit_log(&self) -> &std::path::Path {
        &self.audit_log
    }

    /// Send every documented example through the proxy and work out, from what the
    /// echo upstream received, a reveal command for its tokens (CVVs with their scope).
    pub async fn run_examples(&self) -> Result<Vec<ExampleRun>> {
        let proxy = self.proxy_addr();
        let api = self.api_addr().to_string();
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let mut out = Vec::new();
        for (name, path, ctype, body) in examples() {
            let req = Request::post(format!("http://{proxy}{path}"))
                .header(http::header::CONTENT_TYPE, ctype)
                .body(Full::new(Bytes::from(body.clone())))
                .map_err(|_| Error::Internal("building a demo request"))?;
            let before = self.echo.received().len();
            let res = client
                .request(req)
                .await
                .map_err(|_| Error::Internal("the demo could not reach its own proxy"))?;
            let _ = res.into_body().collect().await;
            let received = self
                .echo
                .received()
                .get(before)
                .map(|r| r.body.clone())
                .unwrap_or_default();
            let tokens =
                reveal::with_scopes(&self.vault, &reveal::tokens_in(&body, &received)).await;
            let reveal =
                (!tokens.is_empty()).then(|| reveal::reveal_command(&api, self.api_key(), &tokens));
            out.push(ExampleRun {
                name,
                send: format!(
                    "curl -s http://{proxy}{path} -H 'Content-Type: {ctype}' -d '{}'",
                    reveal::shell_quoted(&body)
                ),
                received: String::from_utf8_lossy(&received).into_owned(),
                tokens,
                reveal,
            });
        }
        Ok(out)
    }

    /// What the demo prints: addresses, the API key, the audit log, and for each
    /// example the request, what the backend got and how to reveal it.
    pub fn render(&self, runs: &[ExampleRun]) -> String {
        let (proxy, api, upstream) = (self.proxy_addr(), self.api_addr(), self.upstream);
        let key = self.api_key();
        let mut o = String::new();
        let mut line = |s: &str| {
            o.push_str(s);
            o.push('\n');
        };
        line("vaultgate demo");
        line("");
        line(&format!(
            "Proxy:     http://{proxy}   (all five profiles, in front of an echo upstream)"
        ));
        line(&format!(
            "Upstream:  http://{upstream}   (answers with exactly what it received)"
        ));
        line(&format!(
            "API:       http://{api}   (/healthz, /readyz, /metrics, /openapi.json, /v1/...)"
        ));
        line(&format!(
            "Data:      {}   (throwaway; removed on exit)",
            self.dir.path().display()
        ));
        line(&format!(
            "Audit log: {}   (every reveal, tokenize and refusal; `vaultgate audit verify` checks it)",
            self.audit_log.display()
        ));
        line(&format!("API key:   {key}"));
        line("");
        line("Requests are logged below as they arrive (method, route, status, latency).");
        line("");
        line("Each documented example, as the demo just sent it through the proxy:");
        for run in runs {
            line("");
            line(&format!("# {}", run.name));
            line(&run.send);
            line(&format!("#   the backend got: {}", run.received));
            match &run.reveal {
                Some(cmd) => {
                    if run.tokens.iter().any(|t| t.scope.is_some()) {
                        line(
                            "#   reveal its tokens (a CVV token goes with its card token as `scope`, and reveals once):",
                        );
                    } else {
                        line("#   reveal its tokens:");
                    }
                    line(cmd);
                }
                None => line("#   nothing was tokenized"),
            }
        }
        line("");
        line(
            "# Sending an example again gives the same card token and a new CVV token. Reveal any",
        );
        line("# token from an echoed body (a CVV token with its card token as scope):");
        line(&format!(
            "curl -s http://{api}/v1/detokenize -H 'Authorization: Bearer {key}' \
             -H 'Content-Type: application/json' \
             -d '{{\"tokens\":[\"CARD_TOKEN\",{{\"token\":\"CVV_TOKEN\",\"scope\":\"CARD_TOKEN\"}}]}}'"
        ));
        line("");
        line("# Its metadata only (class, last four, created):");
        line(&format!(
            "curl -s http://{api}/v1/tokens/CARD_TOKEN -H 'Authorization: Bearer {key}'"
        ));
        line("");
        line("Press Ctrl-C to stop.");
        o
    }

    /// Serve until SIGINT or SIGTERM, then flush and clean up.
    pub async fn run_until_signal(self) -> Result<()> {
        let Demo {
            dir,
            handle,
            vault,
            echo,
            ..
        } = self;
        handle.run_until_signal().await?;
        finish(dir, &vault, echo).await
    }

    /// Stop now (tests), then flush and clean up.
    pub async fn stop(self) -> Result<()> {
        let Demo {
            dir,
            handle,
            vault,
            echo,
            ..
        } = self;
        handle.stop().await;
        finish(dir, &vault, echo).await
    }
}

async fn finish(dir: tempfile::TempDir, vault: &Vault, echo: EchoHandle) -> Result<()> {
    vault.flush().await?;
    echo.stop().await;
    drop(dir);
    Ok(())
}

/// Run the demo until SIGINT or SIGTERM.
pub async fn run(opts: DemoOptions) -> Result<()> {
    let demo = Demo::start(&opts).await?;
    let runs = demo.run_examples().await?;
    print!("{}", demo.render(&runs));
    demo.run_until_signal().await
}
