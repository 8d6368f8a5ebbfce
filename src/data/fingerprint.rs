//! A cheap content fingerprint of a panel's array files, so that a resumed run or a merge can
//! tell that the panel it is given holds the data the run was planned on (docs/protocol.md).
//!
//! Each `.npy` file is identified by its byte length and a 64-bit hash of its bytes: the whole
//! file when it is at most [`FULL_HASH_LIMIT`] bytes (`tradable`, `industry`, `size`, `oracle`,
//! `index` of all but huge panels), else [`SAMPLED_BLOCKS`] blocks of [`BLOCK`] bytes evenly
//! spaced from the first byte (the header) to the last, 16 MiB in all. A multi-GB panel is
//! fingerprinted in well under a second; a change that touches only unsampled bytes of a large
//! file goes unnoticed, but any change to the codes, the dates, or the `[T, N]` files (which a
//! swap of stocks or a re-import always touches) is seen.
//!
//! The hash is fixed here (not `std`'s, which may change between Rust versions), so run folders
//! stay comparable across builds.

use serde::{Deserialize, Serialize};

/// Files up to this many bytes are hashed whole.
pub const FULL_HASH_LIMIT: usize = 64 << 20;
/// Bytes per sampled block of a larger file.
pub const BLOCK: usize = 64 << 10;
/// Blocks sampled from a larger file.
pub const SAMPLED_BLOCKS: usize = 256;

/// One file's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFingerprint {
    /// File name inside the panel directory.
    pub name: String,
    pub bytes: u64,
    /// 16 hex digits.
    pub hash: String,
    /// Whether the hash covers sampled blocks only.
    pub sampled: bool,
}

impl FileFingerprint {
    /// The fingerprint of the bytes of the file `name`.
    pub fn of(name: &str, data: &[u8]) -> FileFingerprint {
        let sampled = data.len() > FULL_HASH_LIMIT;
        let mut h = Hasher::new(data.len() as u64);
        if sampled {
            let last = data.len() - BLOCK;
            for j in 0..SAMPLED_BLOCKS {
                let at = (j as u128 * last as u128 / (SAMPLED_BLOCKS - 1) as u128) as usize;
                h.write(&data[at..at + BLOCK]);
            }
        } else {
            h.write(data);
        }
        FileFingerprint {
            name: name.to_string(),
            bytes: data.len() as u64,
            hash: format!("{:016x}", h.finish()),
            sampled,
        }
    }
}

/// A MurmurHash3-style 64-bit mix over little-endian 8-byte words (tail zero-padded).
struct Hasher {
    h: u64,
}

impl Hasher {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;

    fn new(len: u64) -> Hasher {
        Hasher {
            h: 0x9e37_79b9_7f4a_7c15 ^ len.wrapping_mul(Self::C2),
        }
    }

    fn word(&mut self, w: u64) {
        let k = w
            .wrapping_mul(Self::C1)
            .rotate_left(31)
            .wrapping_mul(Self::C2);
        self.h = (self.h ^ k)
            .rotate_left(27)
            .wrapping_mul(5)
            .wrapping_add(0x52dc_e729);
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(last) ^ (rest.len() as u64) << 56);
        }
    }

    fn finish(&self) -> u64 {
        // fmix64 of MurmurHash3.
        let mut h = self.h;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_change_of_a_small_file_changes_the_hash() {
        let a: Vec<u8> = (0..1000u32).map(|x| (x * 7 % 251) as u8).collect();
        let fa = FileFingerprint::of("a", &a);
        assert!(!fa.sampled);
        assert_eq!(fa, FileFingerprint::of("a", &a), "deterministic");
        let mut b = a.clone();
        b.swap(10, 11);
        assert_ne!(fa.hash, FileFingerprint::of("a", &b).hash);
        let mut c = a.clone();
        c[999] ^= 1;
        assert_ne!(fa.hash, FileFingerprint::of("a", &c).hash);
        assert_ne!(fa.hash, FileFingerprint::of("a", &a[..999]).hash);
        // Fixed across builds: run folders written by older binaries stay comparable.
        assert_eq!(
            FileFingerprint::of("x", b"alphanet").hash,
            "29675fdfeaf29d82"
        );
    }

    #[test]
    fn a_large_file_is_sampled_from_header_to_end() {
        let n = FULL_HASH_LIMIT + 12_345;
        let a: Vec<u8> = (0..n).map(|x| (x % 253) as u8).collect();
        let fa = FileFingerprint::of("big", &a);
        assert!(fa.sampled);
        for at in [0, n - 1, (n - BLOCK) / (SAMPLED_BLOCKS - 1) * 7 + 100] {
            let mut b = a.clone();
            b[at] ^= 0x40;
            assert_ne!(fa.hash, FileFingerprint::of("big", &b).hash, "byte {at}");
        }
    }
}
