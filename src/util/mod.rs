//! Small helpers the layers share, owned by none of them: the float type of the CPU ops,
//! deterministic random streams, atomic file writes, and what the system tells about memory and
//! processes.

pub mod float;
pub mod fs;
pub mod rng;
pub mod system;
