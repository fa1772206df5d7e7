//! The recoverability engine, with no I/O: given the institution's state as a
//! graph (the [`catalog`]), a proposed write ([`proposal`]) and what was
//! verified at run time ([`evidence::Observations`]), [`decision::decide`]
//! says `proceed` or `hold`, with reasons a reviewer can read.
//!
//! The contract is `recoverability.md` sections 1 to 5. The CLI's `check`,
//! the gate and the tests all call the one function [`decide`].

pub mod blast_radius;
pub mod catalog;
pub mod catalog_diff;
pub mod decision;
pub mod error;
pub mod evidence;
pub mod id;
pub mod proposal;
pub mod scenario;

pub use catalog::{Bearer, Catalog, CatalogGraph, Edge, Reach, Resource};
pub use decision::{
    assess, assess_with, decide, decide_with, Assessment, Decision, Policy, Reason, ReasonCode,
    Verdict,
};
pub use error::InputError;
pub use evidence::{EvidenceKind, EvidenceStatus, Observation, Observations};
pub use proposal::{Evidence, Proposal, Rollback, Step};
pub use scenario::{CatalogCase, Scenario};
