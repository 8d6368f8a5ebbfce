//! What each command does, callable from tests; `main.rs` only parses and dispatches.

pub mod args;
pub mod bench;
pub mod commands;
pub mod demo;
pub mod enhance;
pub mod eval;
pub mod fit;
pub mod gradcheck;
pub mod import;
pub mod merge;
pub mod panel_info;
pub mod run;
