//! The pieces of `schedgen generate` that talk to a model and read what it wrote.
//!
//! The generate loop (profile → prompt → model → compile → verify → benchmark → keep) is built
//! from small stages. This module holds the ones that face the model:
//!
//! - [`llm`]: a [`llm::ChatProvider`] trait (a conversation in, reply text and token usage out)
//!   and its OpenAI-compatible implementation, with timeouts, retries and a key that never leaks;
//! - [`extract`]: pulls exactly one sched_ext scheduler source out of a reply, with typed errors
//!   the repair loop can send back to the model;
//! - [`cost`]: turns token counts into an estimated price from a small table the user can
//!   override;
//! - [`contribution`]: tells a reply that copies a shown reference from the model's own code.
//!
//! Everything here is synchronous from the caller's point of view, like the rest of schedgen.

pub mod checks;
pub mod contribution;
pub mod cost;
pub mod extract;
pub mod keep;
pub mod llm;
pub mod offline;
pub mod pipeline;
pub mod prompt;
