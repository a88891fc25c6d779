/// A running FNV-1a 64-bit hash: stable across Rust versions, platforms and runs, unlike std's
/// hasher, so it can name content on disk; fast (about 1 GB/s), not for adversaries.
///
/// ```
/// use lore_core::Fnv1a;
///
/// let mut hash = Fnv1a::new();
/// hash.write(b"lo");
/// hash.write(b"re");
/// assert_eq!(hash.finish(), Fnv1a::of(b"lore"));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a(u64);

impl Fnv1a {
    /// The hash of nothing.
    pub fn new() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    /// Feeds `bytes`.
    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// The hash of everything fed so far.
    pub fn finish(&self) -> u64 {
        self.0
    }

    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> u64 {
        let mut hash = Fnv1a::new();
        hash.write(bytes);
        hash.finish()
    }
}

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a::new()
    }
}
