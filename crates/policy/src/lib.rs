//! Roster's authorisation: Cedar policies per tenant, validated against one
//! documented schema ([`SCHEMA`]) when they are written, and evaluated before
//! every action they govern.
//!
//! A tenant's policies form one [`TenantPolicies`]. Each kind of action is
//! open until a policy names it (or leaves its action unconstrained); from
//! then on Cedar decides it, and what no policy permits is denied. A permit
//! policy annotated `@approval("why")` that applies makes the action wait for
//! a human.
//!
//! This crate knows nothing of storage, HTTP or runs: callers describe the
//! actor, the action and the resource, and act on the [`Decision`].

mod context;
mod error;
mod set;

pub use error::PolicyError;
pub use set::{Action, Actor, Decision, PolicyRequest, Resource, TenantPolicies};

/// The Cedar schema every tenant's policies are validated against.
pub const SCHEMA: &str = include_str!("roster.cedarschema");
