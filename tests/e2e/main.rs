//! End-to-end suites: each starts the real `recourse` binary and asserts on
//! what it prints, on disk and in databases.

mod gate_api;
mod gate_fs;
mod harness;
mod scenarios;
