//! What the in-process services log during one test, captured as text.
//!
//! The tests of one binary share a process, so a global subscriber would
//! mix every test's lines. Instead the test gets a runtime of its own whose
//! threads (workers and blocking ones) each take the capturing subscriber as
//! their default: a service started on that runtime logs into the buffer,
//! the other tests' services do not.

use std::{
    future::Future,
    io::Write,
    sync::{Arc, Mutex},
};

use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Runs `test` on a two-worker runtime of its own, every line its services
/// log at debug level or above captured; returns them with its result.
pub fn capturing<F, T>(test: impl FnOnce(Captured) -> F) -> T
where
    F: Future<Output = T>,
{
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .finish();
    let dispatch = tracing::Dispatch::new(subscriber);
    let for_threads = dispatch.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            // For the thread's whole life: it is this runtime's.
            std::mem::forget(tracing::dispatcher::set_default(&for_threads));
        })
        .build()
        .unwrap();
    let _default = tracing::dispatcher::set_default(&dispatch);
    let result = runtime.block_on(test(captured));
    runtime.shutdown_timeout(std::time::Duration::from_secs(10));
    result
}
