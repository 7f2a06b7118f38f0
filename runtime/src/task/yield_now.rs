//! `yield_now`: give the worker to other tasks once.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Yields once to the scheduler: the task goes to the back of its worker's
/// queue (not the LIFO slot), so every other runnable task on that worker
/// gets a turn first.
///
/// A yield is not a safepoint: a task that only yields keeps the world from
/// stopping. Call [`crate::safepoint()`] where a stop may take place.
///
/// # Examples
///
/// ```
/// let rt = safepoint::Runtime::new().unwrap();
/// rt.block_on(async {
///     for _ in 0..3 {
///         safepoint::task::yield_now().await;
///     }
/// });
/// ```
pub async fn yield_now() {
    YieldNow { yielded: false }.await
}

struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        // Waking while running is what async-task reports as
        // `woken_while_running`; the scheduler sends such tasks to the back
        // of the queue.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
