//! Deterministic random streams. Every consumer derives its own stream from (seed, purpose) so
//! that adding a draw in one place never shifts the numbers drawn in another.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub type Rng = ChaCha8Rng;

/// A stream for `purpose` under `seed` (e.g. `stream(seed, "init")`, `stream(seed, "shuffle")`).
pub fn stream(seed: u64, purpose: &str) -> Rng {
    // FNV-1a of the purpose, mixed into the seed; collisions would only correlate two streams.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in purpose.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ChaCha8Rng::seed_from_u64(seed ^ h.rotate_left(17))
}
