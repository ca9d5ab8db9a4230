//! Route handlers, one module per resource.

pub mod agents;
pub mod ledger;
pub mod runs;
pub mod sessions;
