//! Helpers shared by the integration tests; each test file uses only some of them.
#![allow(dead_code)]

pub mod fake_openai;
pub mod vm;
