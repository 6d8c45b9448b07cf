//! The tokenizing proxy end to end: forwarding, limits, logs, the five profiles,
//! transports, hostile input, upstream faults and crash consistency.
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

mod body_budget;
mod crash;
mod disk_full;
mod disk_hang;
mod explain_parity;
mod faults;
mod hostile;
mod hostile_charsets;
mod hostile_codec;
mod hostile_guard;
mod hostile_h2;
mod hostile_multipart;
mod hostile_multipart_forms;
mod hostile_percent;
mod hostile_pieces;
mod hostile_places;
mod hostile_readings;
mod hostile_round3;
mod hostile_round4;
mod hostile_round5;
mod hostile_round6;
mod hostile_round7;
mod hostile_round8;
mod hostile_round9;
mod hostile_routing;
mod hostile_slow;
mod leak_differential;
mod leak_properties;
mod ops;
mod proxy_forward;
mod proxy_limits;
mod proxy_logs;
mod proxy_profiles;
mod proxy_transport;
mod scaling;
mod upstream_conns;
