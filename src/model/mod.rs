//! Models v1, v2, v3 built on the tape.
