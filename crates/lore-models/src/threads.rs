/// Sets how many CPU threads the models use. Call it once, before any model runs.
///
/// candle sizes its kernels by `RAYON_NUM_THREADS`, and rayon's global pool serves the rest;
/// on a busy machine fewer threads can decode faster, which is why this is a setting.
pub fn set_threads(threads: usize) {
    let threads = threads.max(1);
    // SAFETY: called at start-up, before this process starts any other thread.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    // An error only means the pool exists already; it keeps its size.
    let _ = rayon::ThreadPoolBuilder::new().num_threads(threads).build_global();
}
