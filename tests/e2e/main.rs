//! End-to-end suites: each starts the real `recourse` binary and asserts on
//! what it prints, on disk and in databases.

// Test code: a failed step should stop the test loudly, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit_anchor;
mod audit_fails_closed;
mod catalog_file;
mod crash_sweep;
mod durability;
mod effect;
mod events;
mod gate_api;
mod gate_fs;
mod gate_sql_http;
mod harness;
mod lifecycle;
mod limits;
mod multi_gate_soak;
mod oidc;
mod oidc_provider;
mod operate;
mod path_attacks;
mod postgres_store;
mod report;
mod scenarios;
mod scopes;
mod secrets;
mod soak;
mod store_faults;
mod trust;
mod vault_seal;
