//! The gate as a Model Context Protocol server (issue 6).
//!
//! Agents reach tools through MCP. Here the tools are the gate's connector
//! operations (`fs_delete`, `sql_update`, `http_request`, …), each call a
//! proposal the gate decides: executed (with its rollback handle), held for
//! a person, or refused. `write_status` waits for a held write; `explain`
//! is the dry run. MCP's own `destructiveHint` is a hint the server sets;
//! the decision each call gets is the gate's, verified.
//!
//! Two transports over one handler ([`McpServer`]) and one small trait
//! ([`Backend`]): stdio as one agent over the gate's HTTP API
//! ([`serve_stdio`], `recourse mcp`), and streamable HTTP inside the gate
//! at `/mcp` ([`serve_gate`], `recourse serve`), each request acting as the
//! agent its bearer token names.

pub mod backend;
pub mod http;
pub mod server;
pub mod stdio;
pub mod tools;

pub use backend::{Backend, BackendError, GateBackend, HttpBackend};
pub use http::{router, serve_gate, serve_gate_with_limits, serve_gate_with_sign_in};
pub use server::McpServer;
pub use stdio::{serve_stdio, StdioError};
