//! schedgen: write Linux sched_ext CPU schedulers with an LLM and prove them before anyone
//! trusts them.
//!
//! The library holds every stage as plain functions over serde types; `main.rs` only parses the
//! command line and prints.

pub mod bench;
pub mod bpf;
pub mod case;
pub mod classify;
pub mod cli;
pub mod commands;
pub mod generate;
pub mod interrupt;
pub mod kernel;
pub mod library;
pub mod model;
pub mod paths;
pub mod port;
pub mod profile;
pub mod report;
pub mod sandbox;
pub mod stats;
pub mod system;
pub mod tree;
pub mod workload;
