//! The integer products on Intel's AMX tiles.
//!
//! An AMX tile product multiplies a 16 × 64 byte tile by a 64 × 16 one into 16 × 16 32-bit sums
//! in one instruction, 16,384 multiply-adds, where `vpdpwssd` does 32. The weights are single
//! bytes already; each 16-bit rounded input is split into its high byte (signed) and its low
//! byte (unsigned): `x·w = (x₁·w)·2⁸ + x₀·w`, two tile products with exact sums, so the outputs
//! are the other kernels' to the bit. A step multiplies 16 input rows by two panels of weights:
//! four tile products from four tile loads, with all eight tiles in use.
//!
//! Rust has no stable AMX intrinsics; the instructions are written as inline assembly. Linux
//! lets a process use the tiles only after it asks (`arch_prctl`), so [`available`] asks once.

use std::arch::asm;
use std::marker::PhantomData;
use std::sync::OnceLock;

/// Rows of a tile, and its width in 32-bit sums.
pub(super) const ROWS: usize = 16;
/// Inputs per tile step: a tile row of 64 bytes.
pub(super) const STEP: usize = 64;
/// Bytes of one tile.
const TILE_BYTES: usize = ROWS * STEP;

/// Whether the processor has AMX with byte products and Linux lets this process use it.
pub(super) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        // Leaf 7 exists on every processor with AVX2, which the caller checked first.
        let features = std::arch::x86_64::__cpuid_count(7, 0);
        let (tile, int8) = (features.edx >> 24 & 1 == 1, features.edx >> 25 & 1 == 1);
        tile && int8 && request_tile_data()
    })
}

/// Asks Linux for the tiles' register state (`ARCH_REQ_XCOMP_PERM` for `XFEATURE_XTILEDATA`);
/// without it the first tile instruction kills the process.
fn request_tile_data() -> bool {
    const ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let result: i64;
    // SAFETY: arch_prctl with this request only changes the process's permissions; the syscall
    // clobbers rcx and r11, declared.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") ARCH_PRCTL => result,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    result == 0
}

/// A layer's rounded weights in the tiles' layout: per panel of 16 outputs (their number made
/// even, the products take two panels at a time), per step of 64 inputs, one tile of 16 rows of
/// (16 outputs × 4 consecutive inputs).
pub(super) struct Weights {
    bytes: Vec<u8>,
    steps: usize,
}

impl Weights {
    /// `weight(output, input)` gives the rounded weights of `panels` panels over `inputs`.
    pub(super) fn new(panels: usize, inputs: usize, weight: impl Fn(usize, usize) -> i8) -> Weights {
        let steps = inputs.div_ceil(STEP);
        let mut bytes = vec![0u8; panels.next_multiple_of(2) * steps * TILE_BYTES];
        for panel in 0..panels {
            for column in 0..ROWS {
                for input in 0..inputs {
                    let (step, k) = (input / STEP, input % STEP);
                    let at = (panel * steps + step) * TILE_BYTES + k / 4 * STEP + column * 4 + k % 4;
                    bytes[at] = weight(panel * ROWS + column, input) as u8;
                }
            }
        }
        Weights { bytes, steps }
    }
}

/// Rounded input rows split into bytes in the tiles' order: per 16 rows, per step of 64
/// inputs, the high bytes' tile then the low bytes' tile, so that each step reads 2 KB in a
/// row (16 rows 1.5 KB apart were 16 streams for the prefetcher).
pub(super) struct Inputs {
    bytes: Vec<u8>,
    steps: usize,
}

impl Inputs {
    /// Room for `rows` rows (rounded up to whole tiles) of the layer's inputs.
    pub(super) fn new(rows: usize, weights: &Weights) -> Inputs {
        Inputs { bytes: vec![0; rows.div_ceil(ROWS) * weights.steps * 2 * TILE_BYTES], steps: weights.steps }
    }

    /// Sets row `row` to `values` rounded by `round` (which leaves a 16-bit value in the low
    /// bits).
    pub(super) fn set_row(&mut self, row: usize, values: &[f32], round: impl Fn(f32) -> u32) {
        for (step, values) in values.chunks(STEP).enumerate() {
            let at = ((row / ROWS * self.steps + step) * 2) * TILE_BYTES + row % ROWS * STEP;
            let (high, low) = self.bytes[at..at + TILE_BYTES + STEP].split_at_mut(TILE_BYTES);
            let mut bits = [0u32; STEP];
            bits.iter_mut().zip(values).for_each(|(b, &v)| *b = round(v));
            high[..STEP].iter_mut().zip(&bits).for_each(|(h, b)| *h = (b >> 8) as u8);
            low[..STEP].iter_mut().zip(&bits).for_each(|(l, &b)| *l = b as u8);
        }
    }
}

/// The tiles configured on this thread for the products; released when dropped. Not `Send`:
/// the configuration belongs to the thread.
pub(super) struct Tiles(PhantomData<*const ()>);

impl Tiles {
    /// # Safety
    /// [`available`] must have returned true.
    pub(super) unsafe fn configure() -> Tiles {
        // Palette 1; every tile 16 rows of 64 bytes.
        #[repr(C, align(64))]
        struct Config([u8; 64]);
        let mut config = Config([0; 64]);
        config.0[0] = 1;
        for tile in 0..8 {
            config.0[16 + 2 * tile] = STEP as u8;
            config.0[48 + tile] = ROWS as u8;
        }
        // SAFETY: the caller checked AMX; the configuration is 64 valid bytes.
        unsafe { asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr(), options(nostack, readonly)) };
        Tiles(PhantomData)
    }

    /// The exact sums of the 16 input rows of tile `tile` times panels `2·pair` and `2·pair + 1`
    /// of the weights, into `sums`.
    pub(super) fn product(&self, inputs: &Inputs, tile: usize, weights: &Weights, pair: usize, sums: &mut Sums) {
        let (tile_bytes, panel_bytes) = (inputs.steps * 2 * TILE_BYTES, weights.steps * TILE_BYTES);
        assert!(inputs.steps == weights.steps && inputs.bytes.len() >= (tile + 1) * tile_bytes);
        assert!(weights.bytes.len() >= (2 * pair + 2) * panel_bytes);
        // SAFETY: the tiles are configured on this thread (`self`); the assertions bound the
        // 16 rows read from each input and the two panels' steps of weights; the sums hold four
        // tiles of 16 rows of 64 bytes.
        unsafe {
            let first = weights.bytes.as_ptr().add(2 * pair * panel_bytes);
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                "2:",
                "tileloadd tmm4, [{inputs} + {row_bytes} * 1]",
                "tileloadd tmm5, [{inputs} + {row_bytes} * 1 + 1024]",
                "tileloadd tmm6, [{first} + {row_bytes} * 1]",
                "tileloadd tmm7, [{second} + {row_bytes} * 1]",
                "tdpbssd tmm0, tmm4, tmm6",
                "tdpbusd tmm1, tmm5, tmm6",
                "tdpbssd tmm2, tmm4, tmm7",
                "tdpbusd tmm3, tmm5, tmm7",
                "add {inputs}, 2048",
                "add {first}, 1024",
                "add {second}, 1024",
                "dec {steps}",
                "jnz 2b",
                "tilestored [{sums} + {row_bytes} * 1], tmm0",
                "tilestored [{sums} + {row_bytes} * 1 + 1024], tmm1",
                "tilestored [{sums} + {row_bytes} * 1 + 2048], tmm2",
                "tilestored [{sums} + {row_bytes} * 1 + 3072], tmm3",
                inputs = inout(reg) inputs.bytes.as_ptr().add(tile * tile_bytes) => _,
                first = inout(reg) first => _,
                second = inout(reg) first.add(panel_bytes) => _,
                steps = inout(reg) weights.steps => _,
                row_bytes = in(reg) STEP,
                sums = in(reg) sums.0.as_mut_ptr(),
                options(nostack),
            );
        }
    }
}

/// A product's four tiles of sums: the first panel's high inputs by weights and low inputs by
/// weights, then the second panel's.
pub(super) struct Sums([[[i32; ROWS]; ROWS]; 4]);

impl Sums {
    pub(super) fn new() -> Sums {
        Sums([[[0; ROWS]; ROWS]; 4])
    }

    /// Row `r`'s exact sums for panel `panel` (0 or 1) of the pair.
    #[inline]
    pub(super) fn row(&self, panel: usize, r: usize) -> [i32; ROWS] {
        let (high, low) = (&self.0[2 * panel], &self.0[2 * panel + 1]);
        std::array::from_fn(|c| (high[r][c] << 8).wrapping_add(low[r][c]))
    }
}

impl Drop for Tiles {
    fn drop(&mut self) {
        // SAFETY: the tiles were configured by `configure`, which required AMX.
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }
}
