//! The vault API, the audit log, the OpenAPI contract, the outbound reveal proxy and
//! two instances sharing PostgreSQL.
//!
//! One test binary per area, its files as modules, so that the suite links a few
//! binaries instead of one per file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../common/mod.rs"]
mod common;

mod api_audit;
mod api_clients;
mod api_conventions;
mod api_openapi;
mod api_oracle;
mod api_reveal;
mod audit_log;
mod demo;
mod key_lifecycle;
mod ops;
mod ops_round6;
mod outbound;
mod outbound_answers;
mod outbound_echo;
mod outbound_round2;
mod redteam_channels;
mod two_instances;
