//! The network layer: listeners, TLS, bodies, header hygiene, route matching, the
//! upstream client and the one `forward`.
//!
//! `net` takes its own settings types ([`ListenerSettings`], [`TlsFiles`],
//! [`UpstreamConfig`]) and never imports the config file, a handler or the app.

pub mod body;
pub mod budget;
pub mod conns;
pub mod forward;
pub mod h1pool;
pub mod headers;
pub mod linger;
pub mod listener;
pub mod matcher;
pub mod shard;
pub mod tls;
pub mod trace;
pub mod upstream;

pub use listener::{ConnInfo, ListenerOptions, ListenerSettings};
pub use shard::Workers;
pub use tls::TlsFiles;
pub use upstream::{UpstreamConfig, UpstreamUrl};
