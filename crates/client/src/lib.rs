//! The gate's wire types (one definition each, shared by the gate, the CLI,
//! the console and the tests) and a typed client over reqwest.

pub mod client;
pub mod effect;
pub mod permissions;
pub mod stakes;
pub mod wire;

pub use client::{ClientError, GateClient};
pub use effect::*;
pub use permissions::{Permission, MATRIX as PERMISSIONS};
pub use stakes::{approval_needs_reason, high_stakes, HighStakes};
pub use wire::*;
