//! Parameters, Adam, and the tape that records a forward pass and replays it backward.

pub mod adam;
pub mod params;
pub mod tape;
