//! A seeded executor: tasks are boxed futures; the schedule's random stream picks which ready
//! task is polled next, so the interleaving at every await point is the seed's choice and a seed
//! replays exactly. Tasks only ever wait on the in-memory ports' yield points, which wake
//! themselves at once: there is no I/O and no real time.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// Set when the task's waker is called: the task is ready to be polled again.
struct Ready(AtomicBool);

impl Wake for Ready {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// What an invocation returned: `Err` is a function error (Lambda retries it).
pub type Invocation<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + 'a>>;

/// One running invocation.
pub struct Task<'a, J> {
    pub id: u64,
    /// What it was started for, to retry it.
    pub job: J,
    pub attempt: u32,
    pub started: i64,
    /// Lambda stops it here (the function's timeout).
    pub deadline: i64,
    future: Invocation<'a>,
    ready: Arc<Ready>,
}

impl<'a, J> Task<'a, J> {
    pub fn new(
        id: u64,
        job: J,
        attempt: u32,
        started: i64,
        deadline: i64,
        future: Invocation<'a>,
    ) -> Task<'a, J> {
        Task {
            id,
            job,
            attempt,
            started,
            deadline,
            future,
            ready: Arc::new(Ready(AtomicBool::new(true))),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.0.load(Ordering::Relaxed)
    }

    /// Polls once; `Some` when the invocation finished.
    pub fn poll(&mut self) -> Option<Result<(), String>> {
        self.ready.0.store(false, Ordering::Relaxed);
        let waker = Waker::from(self.ready.clone());
        let mut cx = Context::from_waker(&waker);
        match self.future.as_mut().poll(&mut cx) {
            Poll::Ready(result) => Some(result),
            Poll::Pending => None,
        }
    }
}
