//! The integration tests of `roster`: one binary, so the crate graph is
//! linked once, with one module per area.

#[macro_use]
mod common;

mod bench_smoke;
mod cli;
mod e2e_a2a;
mod e2e_a2a_remote;
mod e2e_chat;
mod e2e_cli_lifecycle;
mod e2e_crash;
mod e2e_fleet;
mod e2e_governance;
mod e2e_http;
mod e2e_knowledge;
mod e2e_lifecycle;
mod e2e_local_model;
mod e2e_mcp;
mod e2e_mcp_server;
mod e2e_notify;
mod e2e_open_responses;
mod e2e_openai;
mod e2e_outage;
mod e2e_privacy;
mod e2e_sandbox;
mod e2e_sql;
mod e2e_surfaces;
mod e2e_walls;
mod readme;
