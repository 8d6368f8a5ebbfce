//! What each command does, callable from tests; `main.rs` only parses and dispatches.

pub mod args;
pub mod bench;
pub mod commands;
pub mod demo;
pub mod fit;
pub mod gradcheck;
