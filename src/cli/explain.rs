//! `vaultgate explain`: read the request from the command line, explain it, print.

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::ExplainArgs;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::explain::{self, Request};

/// The exit code when the request would be refused.
pub const EXIT_REFUSED: i32 = 1;
/// The exit code for a usage or config error.
pub const EXIT_USAGE: i32 = 2;

/// Explain the request and print the explanation. `Ok(true)`: it would be forwarded.
pub fn run(args: &ExplainArgs) -> Result<bool> {
    let config = Config::load(&args.config)?;
    let req = request(args)?;
    let explanation = explain::explain(&config, &req)?;
    if args.json {
        let json = serde_json::to_string_pretty(&explanation)
            .map_err(|_| Error::Internal("the explanation does not serialize"))?;
        println!("{json}");
    } else {
        print!("{}", explain::text(&explanation));
    }
    Ok(explanation.is_forwarded())
}

/// The request the arguments describe.
pub fn request(args: &ExplainArgs) -> Result<Request> {
    let method = Method::from_bytes(args.method.as_bytes())
        .map_err(|_| usage("--method: not an HTTP method"))?;
    let body = match (&args.body_file, &args.body) {
        (Some(path), _) => {
            std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?
        }
        (None, Some(b)) => b.clone().into_bytes(),
        (None, None) => Vec::new(),
    };
    Ok(Request {
        method,
        path: args.path.clone(),
        headers: headers(&args.headers)?,
        body,
    })
}

/// `Name: value` lines as a header map.
fn headers(lines: &[String]) -> Result<HeaderMap> {
    let mut map = HeaderMap::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| usage("--header: expected `Name: value`"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| usage("--header: not a header name"))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| usage("--header: not a header value"))?;
        map.append(name, value);
    }
    Ok(map)
}

fn usage(msg: &str) -> Error {
    Error::Config(msg.to_owned())
}
