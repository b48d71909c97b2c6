//! `schedgen benchmark`: default vs custom scheduler, measured in alternation, with the bound.
//!
//! `result` holds the plain data a benchmark produces; the other modules only present it, as
//! pure functions over a [`result::BenchResult`], so `schedgen analyze` can re-render any saved
//! benchmark without running anything.

pub mod budget;
pub mod charts;
pub mod driver;
pub mod efficiency;
pub mod export;
pub mod in_memory;
pub mod job;
pub mod markdown;
pub mod production;
pub mod result;
pub mod sizing;
pub mod summarize;
pub mod table;

#[cfg(test)]
pub(crate) mod fixture;
