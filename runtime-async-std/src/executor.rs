//! Where the session's tasks run: any executor that can spawn a `Send` future.
//!
//! The adapter needs nothing from an executor but `spawn`: sockets and timers come from the
//! async-io reactor (which runs on its own), blocking work from the `blocking` crate's
//! thread pool. So the same code runs under async-std, smol, or anything else that spawns.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A task the session asks its executor to run to completion, detached.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// How the session spawns its tasks: the engine's task, a reader and a writer per
/// connection, the listener, tracker exchanges.
///
/// ```
/// use shoal_async_std::Executor;
///
/// // async-std's global executor (the `async-std` feature, on by default):
/// let on_async_std = Executor::async_std();
/// // smol's, or any other executor that can spawn a `Send` future:
/// let on_smol = Executor::new(|task| smol::spawn(task).detach());
/// # drop((on_async_std, on_smol));
/// ```
#[derive(Clone)]
pub struct Executor {
    spawn: Arc<dyn Fn(Task) + Send + Sync>,
}

impl Executor {
    /// An executor from a function that spawns a detached task.
    pub fn new(spawn: impl Fn(Task) + Send + Sync + 'static) -> Executor {
        Executor {
            spawn: Arc::new(spawn),
        }
    }

    /// async-std's global executor.
    #[cfg(feature = "async-std")]
    pub fn async_std() -> Executor {
        Executor::new(|task| {
            // Dropping async-std's handle detaches the task.
            async_std::task::spawn(task);
        })
    }

    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        (self.spawn)(Box::pin(task));
    }
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Executor")
    }
}
