//! Loom models of the safepoint barrier and the scheduler's parking, run
//! against the real runtime code (its `sync` module switches to loom under
//! `--cfg loom`): small runtimes (one or two workers, a task or two) so that
//! loom can explore every interleaving within the preemption bound.
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p
//! safepoint-loom-tests --release`.

#![cfg(loom)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use loom::sync::{Arc, Mutex};

fn runtime(workers: usize) -> safepoint::Runtime {
    safepoint::Builder::new_multi_thread()
        .worker_threads(workers)
        .build()
        .expect("runtime")
}

/// A one-shot event a task can await, built on loom primitives so the
/// model sees its synchronisation.
#[derive(Clone, Default)]
struct Event(Arc<Mutex<(bool, Option<Waker>)>>);

impl Event {
    fn set(&self) {
        let waker = {
            let mut s = self.0.lock().unwrap();
            s.0 = true;
            s.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
    fn wait(&self) -> EventWait {
        EventWait(self.clone())
    }
}

struct EventWait(Event);

impl Future for EventWait {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = (self.0).0.lock().unwrap();
        if s.0 {
            Poll::Ready(())
        } else {
            s.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// Lets other model threads run for a few steps.
fn let_others_run() {
    for _ in 0..3 {
        loom::thread::yield_now();
    }
}

/// A stop request racing a worker that is going to park: the request must
/// reach the stop, and no task may be polled while the world is held.
#[test]
fn stop_racing_park_polls_nothing_while_stopped() {
    loom::model(|| {
        let rt = runtime(1);
        let polls = Arc::new(AtomicUsize::new(0));
        let p = polls.clone();
        rt.spawn(async move {
            for _ in 0..2 {
                p.fetch_add(1, SeqCst);
                safepoint::safepoint().await;
                safepoint::task::yield_now().await;
            }
        });
        let world = rt.handle().stop_the_world_blocking();
        let frozen = polls.load(SeqCst);
        let_others_run();
        assert_eq!(
            polls.load(SeqCst),
            frozen,
            "a task was polled while stopped"
        );
        drop(world);
        rt.run_until_blocked();
        assert_eq!(polls.load(SeqCst), 2);
    });
}

/// A wake from another thread during a stop is kept and runs after the
/// resume, not before.
#[test]
fn wake_during_stop_runs_after_resume() {
    loom::model(|| {
        let rt = runtime(1);
        let event = Event::default();
        let ran = Arc::new(AtomicBool::new(false));
        let (e, r) = (event.clone(), ran.clone());
        rt.spawn(async move {
            e.wait().await;
            r.store(true, SeqCst);
        });
        rt.run_until_blocked();
        let world = rt.handle().stop_the_world_blocking();
        let waker = {
            let e = event.clone();
            loom::thread::spawn(move || e.set())
        };
        waker.join().unwrap();
        let_others_run();
        assert!(!ran.load(SeqCst), "a task ran while the world was stopped");
        drop(world);
        rt.run_until_blocked();
        assert!(ran.load(SeqCst), "the wake was lost");
    });
}

/// Two requesters are served one at a time.
#[test]
fn two_requesters_are_serialised() {
    loom::model(|| {
        let rt = runtime(1);
        let held = Arc::new(AtomicBool::new(false));
        let other = {
            let (handle, held) = (rt.handle().clone(), held.clone());
            loom::thread::spawn(move || {
                let world = handle.stop_the_world_blocking();
                assert!(!held.swap(true, SeqCst), "two requesters hold the world");
                held.store(false, SeqCst);
                drop(world);
            })
        };
        let world = rt.handle().stop_the_world_blocking();
        assert!(!held.swap(true, SeqCst), "two requesters hold the world");
        held.store(false, SeqCst);
        drop(world);
        other.join().unwrap();
    });
}

/// A request withdrawn (its future dropped, as a timeout does) while a
/// task is arriving at its safepoint: the task must be released and finish.
#[test]
fn withdrawal_racing_arrival_releases_the_task() {
    loom::model(|| {
        let rt = runtime(1);
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        rt.spawn(async move {
            safepoint::task::yield_now().await;
            safepoint::safepoint().await;
            d.store(true, SeqCst);
        });
        let mut request = Box::pin(rt.handle().stop_the_world());
        let mut cx = Context::from_waker(Waker::noop());
        match request.as_mut().poll(&mut cx) {
            Poll::Ready(world) => drop(world),
            Poll::Pending => drop(request),
        }
        rt.run_until_blocked();
        assert!(
            done.load(SeqCst),
            "a task stayed parked after the withdrawal"
        );
    });
}

/// A resume racing a new request from another thread, with a task at a
/// safepoint: both stops happen, the task finishes.
#[test]
fn resume_racing_new_request() {
    loom::model(|| {
        let rt = runtime(1);
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        rt.spawn(async move {
            safepoint::safepoint().await;
            d.store(true, SeqCst);
        });
        let world = rt.handle().stop_the_world_blocking();
        let other = {
            let handle = rt.handle().clone();
            loom::thread::spawn(move || drop(handle.stop_the_world_blocking()))
        };
        drop(world);
        other.join().unwrap();
        rt.run_until_blocked();
        assert!(done.load(SeqCst));
    });
}

/// Quiescence is never reported while a task is runnable.
#[test]
fn quiescence_waits_for_runnable_tasks() {
    loom::model(|| {
        let rt = runtime(2);
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        rt.spawn(async move {
            safepoint::task::yield_now().await;
            d.store(true, SeqCst);
        });
        rt.run_until_blocked();
        assert!(
            done.load(SeqCst),
            "run_until_blocked returned with a runnable task"
        );
    });
}

/// A task woken from outside while every worker goes to park is not lost
/// (the Dekker pair between `notify_parked` and `transition_to_parked`).
#[test]
fn remote_wake_racing_park_is_not_lost() {
    loom::model(|| {
        let rt = runtime(2);
        let event = Event::default();
        let done = Arc::new(AtomicBool::new(false));
        let (e, d) = (event.clone(), done.clone());
        let h = rt.spawn(async move {
            e.wait().await;
            d.store(true, SeqCst);
        });
        let t = loom::thread::spawn(move || event.set());
        // A lost wake would leave this block_on parked forever, which loom
        // reports as a deadlock.
        rt.block_on(h).unwrap();
        t.join().unwrap();
        // async-task's own atomics are invisible to loom, so the join above
        // is not a happens-before edge in the model; the census lock that
        // run_until_blocked takes is.
        rt.run_until_blocked();
        assert!(done.load(SeqCst));
    });
}

/// A requester task that holds the world and waits on an event set by
/// another thread: the wake must reach it (through the requester slot)
/// even when it races the worker going back to park, or the world stays
/// stopped forever.
#[test]
fn requester_woken_from_another_thread_while_holding_the_world() {
    loom::model(|| {
        let rt = runtime(1);
        let event = Event::default();
        let e = event.clone();
        let handle = rt.handle().clone();
        let requester = rt.spawn(async move {
            let world = handle.stop_the_world().await;
            e.wait().await;
            drop(world);
        });
        let t = loom::thread::spawn(move || event.set());
        rt.block_on(requester).unwrap();
        t.join().unwrap();
    });
}
