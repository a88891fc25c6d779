//! How many CPU threads the local models use.
//!
//! candle 0.11 takes its thread counts from the environment only, and reads it when its pools
//! are first used:
//!
//! - the barrier pool of the quantized matrix products (GGUF chat models, E5S1 embedders) is
//!   sized once by `CANDLE_NUM_THREADS`, else `RAYON_NUM_THREADS`, else the number of physical
//!   cores;
//! - candle's private rayon pool (`Device::with_context`) is sized once by `RAYON_NUM_THREADS`,
//!   and the float matrix products split their work by the same variable, read at every call;
//! - rayon's global pool, which the other kernels and Lore's own parallel loops run on, is
//!   sized by `RAYON_NUM_THREADS` when it starts, unless it was built explicitly.
//!
//! Setting an environment variable is only sound while the process has a single thread
//! (`std::env::set_var` is `unsafe` for that reason), which a library cannot know. So the
//! program's `main` sets [`THREAD_VARIABLES`] itself, before it starts any thread, and may
//! then call [`set_threads`], which is safe at any time.

/// The environment variables that set candle's thread counts; a program sets both to the same
/// number, at the start of `main`, before any thread exists.
pub const THREAD_VARIABLES: [&str; 2] = ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"];

/// Builds rayon's global pool with `threads` threads (at least 1). Returns false, changing
/// nothing, when the pool exists already (it keeps its size).
///
/// This sizes only rayon's global pool. candle's own pools follow [`THREAD_VARIABLES`],
/// which the program sets at the start of `main` (see [Threads](crate#threads)).
///
/// The quantized pool's workers meet at a barrier after every matrix product, so on a busy
/// machine fewer threads can decode much faster, which is why this is a setting.
pub fn set_threads(threads: usize) -> bool {
    rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).build_global().is_ok()
}
