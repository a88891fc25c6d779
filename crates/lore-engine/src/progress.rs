//! How long work tells a front end how far it is, without the engine knowing how it is shown.

/// Receives the progress of long work (ingesting, evaluating, answering a dataset): a terminal
/// shows a progress bar, a server could send events. Work may run several tasks in a row;
/// each begins with [`Progress::start`] and ends with [`Progress::finish`].
pub trait Progress: Sync {
    /// A task of `total` steps begins; `what` names it ("ingesting into notes").
    fn start(&self, what: &str, total: usize);
    /// `done` of the task's steps are done; `detail` says more (rates, counts) or is empty.
    fn update(&self, done: usize, detail: &str);
    /// The task is over.
    fn finish(&self);
    /// A line worth showing between tasks ("contender dense: done").
    fn note(&self, message: &str);
}

/// Shows nothing: for tests, scripts and callers that do not care.
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: &str, _: usize) {}
    fn update(&self, _: usize, _: &str) {}
    fn finish(&self) {}
    fn note(&self, _: &str) {}
}
