//! The split hash of SPEC §3: `fmix64(fnv1a64(salt ":" key)) mod 10000`.
//!
//! Pure integer arithmetic with explicit wrapping, so wasm32 and x86_64 compute the same
//! buckets (the wasm tests prove it).

/// Number of buckets a split divides users into: one bucket is 0.01 %.
pub const BUCKETS: u16 = 10_000;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a, fed incrementally so `salt:key` never has to be concatenated.
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a64(u64);

impl Default for Fnv1a64 {
    fn default() -> Self {
        Fnv1a64(FNV_OFFSET)
    }
}

impl Fnv1a64 {
    pub fn write(mut self, bytes: &[u8]) -> Self {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
        self
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

/// MurmurHash3's 64-bit finalizer.
pub fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// The bucket in `0..10000` of `key` under `salt`.
pub fn bucket(salt: &[u8], key: &[u8]) -> u16 {
    let hash = Fnv1a64::default()
        .write(salt)
        .write(b":")
        .write(key)
        .finish();
    reduce(fmix64(hash))
}

/// A bucket from a random number, for splits that have no key.
pub fn bucket_from_random(entropy: u128) -> u16 {
    let low = u64::try_from(entropy & u128::from(u64::MAX)).unwrap_or(0);
    let high = u64::try_from(entropy >> 64).unwrap_or(0);
    reduce(fmix64(low ^ high))
}

fn reduce(hash: u64) -> u16 {
    // The remainder is < 10000, so it always fits in u16.
    u16::try_from(hash % u64::from(BUCKETS)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    // SPEC §3's test vectors are checked once, in tests/wasm_engine.rs
    // (`spec_hash_test_vectors`): natively by `cargo test` and on wasm32 by `make wasm-test`.

    #[test]
    fn fnv_reference_values() {
        // Published FNV-1a 64 values.
        assert_eq!(Fnv1a64::default().finish(), 0xcbf29ce484222325);
        assert_eq!(Fnv1a64::default().write(b"a").finish(), 0xaf63dc4c8601ec8c);
        assert_eq!(
            Fnv1a64::default().write(b"foobar").finish(),
            0x85944171f73967e8
        );
    }

    #[test]
    fn incremental_equals_concatenated() {
        let whole = Fnv1a64::default().write(b"salt:key").finish();
        let parts = Fnv1a64::default()
            .write(b"salt")
            .write(b":")
            .write(b"key")
            .finish();
        assert_eq!(whole, parts);
    }
}
