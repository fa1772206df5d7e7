//! The seed's "three audits to run on Monday" as a report no peer produces,
//! computed from what the gate recorded, with no I/O:
//!
//! 1. the rollback path of every kind of write, step by step, flagging a
//!    path that resolves to a manual step or to nothing;
//! 2. the context each rollback depends on, where it lives, and whether the
//!    gate found it outside the write's own blast radius, present and
//!    fresh;
//! 3. who bears the cost when reversal fails, and so which kinds of write
//!    always need a person.
//!
//! [`build`] computes the [`Report`] from the catalog and the stored writes
//! (their masked proposals and recorded decisions); [`html::render`] and
//! [`csv::render`] turn it into a page and a spreadsheet. The gate serves
//! the report at `GET /v1/report`; `recourse report` writes the three files.

pub mod csv;
mod engine;
pub mod html;
mod model;

pub use engine::{build, LIST_CAP, WRITES_PER_KIND};
pub use model::*;

#[cfg(test)]
mod tests;
