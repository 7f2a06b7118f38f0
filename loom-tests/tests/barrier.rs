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

/// Spawns a task that passes one safepoint (after a yield, if asked) and
/// then raises the returned flag: raised means it was released.
fn flag_past_safepoint(rt: &safepoint::Runtime, yield_first: bool) -> Arc<AtomicBool> {
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    rt.spawn(async move {
        if yield_first {
            safepoint::task::yield_now().await;
        }
        safepoint::safepoint().await;
        d.store(true, SeqCst);
    });
    done
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
        let done = flag_past_safepoint(&rt, true);
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
        let done = flag_past_safepoint(&rt, false);
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

// ---- The census as one module (the models below cover the interleavings
// ---- the redesign is about; `runtime/PROTOCOL.md` names the points).

/// Point 2: with two workers, the stop is declared by whichever arrives
/// last, and nothing is polled while it is held.
#[test]
fn the_last_of_two_workers_to_arrive_declares() {
    loom::model(|| {
        let rt = runtime(2);
        let polls = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            let p = polls.clone();
            rt.spawn(async move {
                p.fetch_add(1, SeqCst);
                safepoint::safepoint().await;
                p.fetch_add(1, SeqCst);
            });
        }
        let world = rt.handle().stop_the_world_blocking();
        let frozen = polls.load(SeqCst);
        let_others_run();
        assert_eq!(polls.load(SeqCst), frozen, "polled while stopped");
        drop(world);
        rt.run_until_blocked();
        assert_eq!(polls.load(SeqCst), 4);
    });
}

/// Point 3: a wake from another thread racing the last arrival either
/// lands before the stop (and runs first) or is kept for the resume: it
/// never runs while the world is held, and it is never lost.
#[test]
fn a_wake_racing_the_last_arrival_is_kept_or_run_first() {
    loom::model(|| {
        let rt = runtime(1);
        let event = Event::default();
        let (ran, held) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (e, r, h) = (event.clone(), ran.clone(), held.clone());
        rt.spawn(async move {
            e.wait().await;
            assert!(!h.load(SeqCst), "ran while the world was held");
            r.store(true, SeqCst);
        });
        let waker = loom::thread::spawn(move || event.set());
        let world = rt.handle().stop_the_world_blocking();
        held.store(true, SeqCst);
        let_others_run();
        held.store(false, SeqCst);
        drop(world);
        waker.join().unwrap();
        rt.run_until_blocked();
        assert!(ran.load(SeqCst), "the wake was lost");
    });
}

/// Point 5: a request withdrawn from another thread while the last worker
/// is arriving: either the world was handed over (and is resumed) or the
/// request withdrew; either way the task at its safepoint is released.
#[test]
fn a_withdrawal_racing_the_declaration_releases_the_task() {
    loom::model(|| {
        let rt = runtime(1);
        let done = flag_past_safepoint(&rt, false);
        let mut request = Box::pin(rt.handle().stop_the_world());
        let mut cx = Context::from_waker(Waker::noop());
        let first = request.as_mut().poll(&mut cx);
        let withdraw = loom::thread::spawn(move || {
            // Dropped on another thread, whatever the census is doing.
            if let Poll::Ready(world) = first {
                drop(world);
            }
            drop(request);
        });
        withdraw.join().unwrap();
        rt.run_until_blocked();
        assert!(
            done.load(SeqCst),
            "a task stayed parked after the withdrawal"
        );
    });
}

/// Points 3 and 5: a requester task and an outside requester, in either
/// order. When the task is queued behind the outside holder, the resume on
/// the outside thread hands it the world, and the hand-over's wake of the
/// task races the worker's arrival: the task must end up holding the world
/// (in its slot, not stranded in the injector while stopped).
#[test]
fn a_queued_requester_task_is_handed_the_world() {
    loom::model(|| {
        let rt = runtime(1);
        let handle = rt.handle().clone();
        let got = Arc::new(AtomicBool::new(false));
        let g = got.clone();
        let requester = rt.spawn(async move {
            let world = handle.stop_the_world().await;
            g.store(true, SeqCst);
            drop(world);
        });
        let h2 = rt.handle().clone();
        let outside = loom::thread::spawn(move || drop(h2.stop_the_world_blocking()));
        rt.block_on(requester).unwrap();
        outside.join().unwrap();
        assert!(got.load(SeqCst));
    });
}

/// Point 11: a `block_on` future woken from another thread while a stop is
/// requested keeps the world from stopping until its poll is over, and a
/// `block_on` future held during a stop runs after the resume.
#[test]
fn block_on_as_a_non_requester_during_a_stop() {
    loom::model(|| {
        let rt = Arc::new(runtime(1));
        let event = Event::default();
        let (polled, held) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (rt2, e, p, h) = (rt.clone(), event.clone(), polled.clone(), held.clone());
        let blocker = loom::thread::spawn(move || {
            rt2.block_on(async move {
                e.wait().await;
                assert!(!h.load(SeqCst), "block_on polled while the world was held");
                p.store(true, SeqCst);
            })
        });
        let setter = loom::thread::spawn(move || event.set());
        let world = rt.handle().stop_the_world_blocking();
        held.store(true, SeqCst);
        let_others_run();
        held.store(false, SeqCst);
        drop(world);
        setter.join().unwrap();
        blocker.join().unwrap();
        assert!(polled.load(SeqCst));
    });
}

/// Point 11: the `block_on` future as the requester: it holds the world,
/// nothing else runs, and it resumes it.
#[test]
fn block_on_as_the_requester() {
    loom::model(|| {
        let rt = runtime(1);
        let polls = Arc::new(AtomicUsize::new(0));
        let p = polls.clone();
        rt.spawn(async move {
            p.fetch_add(1, SeqCst);
            safepoint::safepoint().await;
            p.fetch_add(1, SeqCst);
        });
        let handle = rt.handle().clone();
        let (frozen, after) = rt.block_on(async {
            let world = handle.stop_the_world().await;
            let frozen = polls.load(SeqCst);
            let_others_run();
            let after = polls.load(SeqCst);
            drop(world);
            (frozen, after)
        });
        assert_eq!(
            frozen, after,
            "polled while the block_on requester held the world"
        );
        rt.run_until_blocked();
        assert_eq!(polls.load(SeqCst), 2);
    });
}

/// Point 8: quiescence is not reported while a wake kept during a stop
/// waits for the resume.
#[test]
fn quiescence_during_a_stop_waits_for_kept_wakes() {
    loom::model(|| {
        let rt = Arc::new(runtime(1));
        let event = Event::default();
        let ran = Arc::new(AtomicBool::new(false));
        let (e, r) = (event.clone(), ran.clone());
        rt.spawn(async move {
            e.wait().await;
            r.store(true, SeqCst);
        });
        rt.run_until_blocked();
        let world = rt.handle().stop_the_world_blocking();
        event.set(); // kept
        let (rt2, r2) = (rt.clone(), ran.clone());
        let waiter = loom::thread::spawn(move || {
            rt2.run_until_blocked();
            assert!(r2.load(SeqCst), "quiescence reported over a kept wake");
        });
        let_others_run();
        drop(world);
        waiter.join().unwrap();
    });
}

/// Point 15: shutdown racing a request from another thread: the request
/// completes (exiting workers count as arrived) and nothing hangs.
#[test]
fn shutdown_racing_a_request() {
    loom::model(|| {
        let rt = runtime(1);
        rt.spawn(async {
            safepoint::task::yield_now().await;
        });
        let handle = rt.handle().clone();
        let requester = loom::thread::spawn(move || drop(handle.stop_the_world_blocking()));
        drop(rt);
        requester.join().unwrap();
    });
}

/// `abort()` from another thread racing a stop: the aborted task is
/// dropped (before or after the resume), the stop completes, its handle
/// reports cancellation.
#[test]
fn abort_racing_a_stop() {
    loom::model(|| {
        let rt = runtime(1);
        let h = rt.spawn(async {
            safepoint::safepoint().await;
            std::future::pending::<()>().await;
        });
        let h = Arc::new(Mutex::new(Some(h)));
        let h2 = h.clone();
        let aborter = loom::thread::spawn(move || {
            if let Some(h) = h2.lock().unwrap().as_ref() {
                h.abort();
            }
        });
        let world = rt.handle().stop_the_world_blocking();
        drop(world);
        aborter.join().unwrap();
        let h = h.lock().unwrap().take().unwrap();
        assert!(rt.block_on(h).unwrap_err().is_cancelled());
    });
}

/// Points 3 and 12: a parked worker's driver turn (here the models'
/// stand-in reactor) wakes a task while a stop is declared and resumed. The
/// task never runs while the world is held, and is never stranded: if the
/// world stopped after the turn, the worker moves its wakes to the injector
/// under the census lock, so the resume either sees them or comes first.
#[test]
fn a_driver_turn_racing_a_stop_keeps_its_wakes_until_the_resume() {
    loom::model(|| {
        let rt = runtime(1);
        let reactor = rt.handle().loom_reactor();
        let (ran, held) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (r, h, wait) = (
            ran.clone(),
            held.clone(),
            safepoint::Reactor::wait(&reactor, 1),
        );
        rt.spawn(async move {
            wait.await;
            assert!(
                !h.load(SeqCst),
                "a driver wake ran while the world was held"
            );
            r.store(true, SeqCst);
        });
        rt.run_until_blocked();
        let firer = loom::thread::spawn(move || reactor.fire(1));
        let world = rt.handle().stop_the_world_blocking();
        held.store(true, SeqCst);
        let_others_run();
        held.store(false, SeqCst);
        drop(world);
        firer.join().unwrap();
        // A stranded wake would leave this waiting forever (loom reports
        // the deadlock).
        while !ran.load(SeqCst) {
            rt.run_until_blocked();
            loom::thread::yield_now();
        }
    });
}

/// Spawns a task that awaits reactor event 1, already delivered (so the
/// await completes at once unless its gate parks it), then raises the
/// returned flag.
fn flag_past_delivered_event(
    rt: &safepoint::Runtime,
    reactor: &Arc<safepoint::Reactor>,
) -> Arc<AtomicBool> {
    let ran = Arc::new(AtomicBool::new(false));
    let (r, wait) = (ran.clone(), safepoint::Reactor::wait(reactor, 1));
    rt.spawn(async move {
        wait.await;
        r.store(true, SeqCst);
    });
    ran
}

/// Delivers reactor event 1 before any task waits for it: the worker's
/// park turns the reactor.
fn deliver_event_1(rt: &safepoint::Runtime, reactor: &Arc<safepoint::Reactor>) {
    let probe = safepoint::Reactor::wait(reactor, 1);
    reactor.fire(1);
    rt.block_on(probe);
}

/// A resource poll that would complete racing a stop's declaration
/// (protocol point 10): the task either completes before the request (and
/// the stop sees it done) or parks at the resource's gate, and nothing it
/// awaited is lost: after the resume it completes.
#[test]
fn a_resource_poll_racing_the_declaration_completes_before_or_parks_at_its_gate() {
    loom::model(|| {
        let rt = runtime(1);
        let reactor = rt.handle().loom_reactor();
        deliver_event_1(&rt, &reactor);
        let ran = flag_past_delivered_event(&rt, &reactor);
        let world = rt.handle().stop_the_world_blocking();
        let at_stop = ran.load(SeqCst);
        let_others_run();
        assert_eq!(
            ran.load(SeqCst),
            at_stop,
            "the task ran while the world was held"
        );
        drop(world);
        while !ran.load(SeqCst) {
            rt.run_until_blocked();
            loom::thread::yield_now();
        }
    });
}

/// A task parked at a resource's gate, released, and a new stop requested
/// at once: it passes that gate once (the pass the release gave it), so by
/// the time the second stop holds the world it has completed. Back-to-back
/// stops cannot pin a task at the same await.
#[test]
fn a_task_released_from_its_gate_passes_it_before_the_next_stop() {
    loom::model(|| {
        let rt = runtime(1);
        let reactor = rt.handle().loom_reactor();
        deliver_event_1(&rt, &reactor);
        let ran = flag_past_delivered_event(&rt, &reactor);
        drop(rt.handle().stop_the_world_blocking());
        let world = rt.handle().stop_the_world_blocking();
        assert!(
            ran.load(SeqCst),
            "a task released from its gate was pinned there by the next stop"
        );
        drop(world);
    });
}

/// Bumps its counter when dropped: tells when a task's future is dropped.
struct DropToken(Arc<AtomicUsize>);

impl Drop for DropToken {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// A task enters the live-task registry when a poll first returns
/// `Pending`, inside that poll. A wake from another thread racing that
/// first poll (before, during or after it) must not lose the task or count
/// it twice: once every task has blocked, exactly one is live, and
/// shutdown drops it exactly once.
#[test]
fn a_first_block_racing_a_wake_is_registered_once_and_dropped_at_shutdown() {
    loom::model(|| {
        let rt = runtime(1);
        let event = Event::default();
        let dropped = Arc::new(AtomicUsize::new(0));
        let token = DropToken(dropped.clone());
        let e = event.clone();
        rt.spawn(async move {
            let _t = token;
            e.wait().await;
            std::future::pending::<()>().await;
        });
        let setter = loom::thread::spawn(move || event.set());
        setter.join().unwrap();
        rt.run_until_blocked();
        assert_eq!(rt.metrics().live_tasks, 1);
        assert_eq!(dropped.load(SeqCst), 0);
        drop(rt);
        assert_eq!(dropped.load(SeqCst), 1);
    });
}
