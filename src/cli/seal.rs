//! `vaultgate unseal | seal | seal-status`: one call to a running server's API
//! listener (`/v1/sys/…`).

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::args::{ApiArgs, Global};
use super::context::{read_share, runtime};
use crate::error::{Error, Result};
use crate::net::tls;

/// A JSON call to the API listener. Returns the response's JSON, or the server's
/// error message as an error.
async fn call(api: &ApiArgs, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
    let builder = match &api.api_ca {
        Some(ca) => HttpsConnectorBuilder::new().with_tls_config(
            rustls::ClientConfig::builder_with_provider(tls::provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| Error::Config(format!("--api-ca: {e}")))?
                .with_root_certificates(tls::root_store("--api-ca", ca)?)
                .with_no_client_auth(),
        ),
        None => HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(tls::provider())
            .map_err(|e| Error::Config(format!("--api-url: {e}")))?,
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    let connector = builder.https_or_http().enable_http1().wrap_connector(http);
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);

    let url = format!("{}{path}", api.api_url.trim_end_matches('/'));
    let mut req = Request::builder()
        .method(method)
        .uri(&url)
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(key) = api_key(api)? {
        req = req.header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", key.as_str()),
        );
    }
    let bytes = Zeroizing::new(match body {
        Some(v) => serde_json::to_vec(v).map_err(|_| Error::Internal("request JSON"))?,
        None => Vec::new(),
    });
    let req = req
        .body(Full::new(Bytes::copy_from_slice(&bytes)))
        .map_err(|_| Error::Config("--api-url: not a valid URL".into()))?;
    let res = tokio::time::timeout(Duration::from_secs(60), client.request(req))
        .await
        .map_err(|_| Error::UpstreamTimeout)?
        .map_err(|e| Error::Config(format!("cannot reach the API at {url}: {e}")))?;
    let status = res.status();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|_| Error::UpstreamUnavailable)?
        .to_bytes();
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if status != StatusCode::OK {
        let message = value
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        return Err(Error::BadRequest(format!(
            "the server answered {status}: {message}"
        )));
    }
    Ok(value)
}

fn api_key(api: &ApiArgs) -> Result<Option<Zeroizing<String>>> {
    if let Some(path) = &api.api_key_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("read the API key file {}", path.display()), e))?;
        return Ok(Some(Zeroizing::new(text.trim().to_owned())));
    }
    Ok(std::env::var("VAULTGATE_API_KEY")
        .ok()
        .map(|k| Zeroizing::new(k.trim().to_owned())))
}

/// Print a seal status on stderr.
fn report(status: &Value) {
    let sealed = status
        .get("sealed")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let kind = status.get("kind").and_then(Value::as_str).unwrap_or("?");
    if !sealed {
        eprintln!("unsealed (seal: {kind})");
        return;
    }
    match (
        status.get("received").and_then(Value::as_u64),
        status.get("threshold").and_then(Value::as_u64),
    ) {
        (Some(got), Some(need)) => {
            eprintln!("sealed (seal: {kind}): {got} of {need} shares received")
        }
        _ => eprintln!("sealed (seal: {kind})"),
    }
}

/// `vaultgate unseal`: one share (or, for an HSM seal, a request to use it).
pub(super) fn unseal(global: &Global, api: &ApiArgs) -> Result<()> {
    runtime()?.block_on(async {
        let status = call(api, Method::GET, "/v1/sys/seal-status", None).await?;
        let body = match status.get("kind").and_then(Value::as_str) {
            Some("shamir") => {
                if global.share_file.len() > 1 {
                    return Err(Error::Config(
                        "vaultgate unseal sends one share per call: give one --share-file".into(),
                    ));
                }
                let share = read_share(global.share_file.first(), "unseal share: ")?;
                let text = share.text();
                json!({ "share": text.expose() })
            }
            Some("passphrase") => {
                let pass = global.passphrase()?;
                json!({ "passphrase": pass.expose_str() })
            }
            _ => json!({}),
        };
        let status = call(api, Method::POST, "/v1/sys/unseal", Some(&body)).await?;
        report(&status);
        Ok(())
    })
}

/// `vaultgate seal`.
pub(super) fn seal(api: &ApiArgs) -> Result<()> {
    runtime()?.block_on(async {
        let status = call(api, Method::POST, "/v1/sys/seal", None).await?;
        report(&status);
        Ok(())
    })
}

/// `vaultgate seal-status`: JSON on stdout, a summary on stderr.
pub(super) fn status(api: &ApiArgs) -> Result<()> {
    runtime()?.block_on(async {
        let status = call(api, Method::GET, "/v1/sys/seal-status", None).await?;
        println!("{status}");
        report(&status);
        Ok(())
    })
}
