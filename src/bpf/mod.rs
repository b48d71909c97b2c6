//! Schedulers as BPF programs: compile them, load and attach them, verify them.

pub mod compile;
pub mod exit;
pub mod globals;
pub mod loader;
pub mod runtime;
pub mod scx_state;
pub mod session;
pub mod verify;
