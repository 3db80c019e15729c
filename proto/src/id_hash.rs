//! A fast, seeded hash for channel-id tables.
//!
//! Channel ids are chosen by the peer, so the table's hash must not let it pick ids that
//! collide: a plain multiplicative hash sends ids that differ only in high bits to the same
//! bucket. The folded multiply (the 128-bit product's halves XORed, as in foldhash and ahash)
//! makes every output bit depend on every input bit, and the seed, secret per session, keeps
//! the peer from computing collisions. It costs a few cycles where SipHash costs tens.

use std::hash::{BuildHasher, Hasher};

/// Builds [`IdHasher`]s with one seed: the hash of channel-id tables (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct IdHash {
    seed: u64,
}

impl IdHash {
    /// A builder whose hashers start from `seed`.
    pub fn new(seed: u64) -> Self {
        IdHash { seed }
    }
}

impl BuildHasher for IdHash {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher { state: self.seed }
    }
}

/// The hasher: folds each written integer into its state with a folded multiply.
#[derive(Debug)]
pub struct IdHasher {
    state: u64,
}

const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    (full as u64) ^ ((full >> 64) as u64)
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.state = folded_multiply(self.state ^ n, MULTIPLIER);
    }

    fn finish(&self) -> u64 {
        folded_multiply(self.state, MULTIPLIER ^ 0xA5A5_A5A5_A5A5_A5A5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differing_in_high_bits_spread_over_buckets() {
        let build = IdHash::new(0x1234_5678);
        let buckets: std::collections::HashSet<u64> =
            (0..64u32).map(|k| build.hash_one(1 + (k << 20)) & 63).collect();
        // 64 ids that agree in their low 20 bits land in many of 64 buckets, not one.
        assert!(buckets.len() > 30, "{} buckets", buckets.len());
    }

    #[test]
    fn the_seed_changes_the_hash() {
        assert_ne!(IdHash::new(1).hash_one(7u32), IdHash::new(2).hash_one(7u32));
    }
}
