/// Sets how many CPU threads the models use. Call it once, before any model runs.
///
/// candle's quantized kernels size their pool by `CANDLE_NUM_THREADS` (else `RAYON_NUM_THREADS`),
/// its other kernels and rayon's global pool by `RAYON_NUM_THREADS`. The quantized pool's workers
/// meet at a barrier after every matrix product, so on a busy machine fewer threads can decode
/// much faster, which is why this is a setting.
pub fn set_threads(threads: usize) {
    let threads = threads.max(1);
    // SAFETY: called at start-up, before this process starts any other thread.
    unsafe {
        std::env::set_var("CANDLE_NUM_THREADS", threads.to_string());
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
    // An error only means the pool exists already; it keeps its size.
    let _ = rayon::ThreadPoolBuilder::new().num_threads(threads).build_global();
}
