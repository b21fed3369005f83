//! Python binding of s3db (`import s3db`; native part `s3db._s3db`).
//!
//! No logic lives here: values are converted (`convert`), errors mapped (`errors`) and async
//! bridged. Awaitables come from `pyo3_async_runtimes::tokio::future_into_py`; the blocking
//! twins (`Sync*`) run the same futures on the same shared tokio runtime with the GIL released.

mod aio;
mod blocking;
mod convert;
mod coordination;
mod errors;
mod generated;
mod hooks;
mod plugins;

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::task::Poll;
use std::time::Duration;

use pyo3::prelude::*;

use crate::errors::{engine_error, new_error, panic_message, Failure, Outcome, INTERNAL};

/// How often a blocking call wakes up to let Python handle signals (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// The one tokio runtime of the process (multi-threaded), shared by awaitables and blocking calls.
fn runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// Starts `fut` on the shared runtime and returns an `asyncio.Future` for its result.
/// Needs a running event loop. Cancelling the asyncio future drops the Rust future.
fn awaitable<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = s3db::Result<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        // A panic in the engine becomes S3dbError (code INTERNAL), as in the blocking API.
        let mut fut = Box::pin(fut);
        let caught = std::future::poll_fn(move |cx| {
            match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
                Ok(poll) => poll.map(Ok),
                Err(panic) => Poll::Ready(Err(panic)),
            }
        })
        .await;
        let out = match caught {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Failure::Engine(e)),
            Err(panic) => Err(Failure::Panic(panic_message(&*panic))),
        };
        Ok(Outcome(out))
    })
}

/// Runs `fut` to completion on the shared runtime with the GIL released. Wakes up every
/// `SIGNAL_POLL` to run Python's signal handlers: a KeyboardInterrupt cancels the call.
fn block<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = s3db::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let rt = runtime();
    let mut handle = rt.spawn(fut);
    loop {
        let waited = py
            .detach(|| rt.block_on(async { tokio::time::timeout(SIGNAL_POLL, &mut handle).await }));
        match waited {
            Ok(Ok(Ok(v))) => return Ok(v),
            Ok(Ok(Err(e))) => return Err(engine_error(py, &e)),
            Ok(Err(join)) => {
                let msg = if join.is_panic() {
                    panic_message(&*join.into_panic())
                } else {
                    "the call was cancelled".to_string()
                };
                return Err(new_error(py, INTERNAL, &format!("s3db panicked: {msg}")));
            }
            Err(_elapsed) => {
                if let Err(e) = py.check_signals() {
                    handle.abort();
                    return Err(e);
                }
            }
        }
    }
}

#[pymodule]
fn _s3db(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(aio::connect, m)?)?;
    m.add_function(wrap_pyfunction!(blocking::connect_sync, m)?)?;
    m.add_class::<aio::Database>()?;
    m.add_class::<aio::Resource>()?;
    m.add_class::<aio::Lock>()?;
    m.add_class::<aio::LockContext>()?;
    m.add_class::<aio::Sequence>()?;
    m.add_class::<aio::State>()?;
    m.add_class::<aio::Coordinator>()?;
    m.add_class::<aio::CoordinatorEvents>()?;
    m.add_class::<aio::PluginStorage>()?;
    m.add_class::<plugins::PluginLock>()?;
    m.add_class::<blocking::SyncDatabase>()?;
    m.add_class::<blocking::SyncResource>()?;
    m.add_class::<blocking::SyncLock>()?;
    m.add_class::<blocking::SyncSequence>()?;
    m.add_class::<blocking::SyncState>()?;
    m.add_class::<blocking::SyncCoordinator>()?;
    m.add_class::<blocking::SyncCoordinatorEvents>()?;
    m.add_class::<blocking::SyncPluginStorage>()?;
    Ok(())
}
