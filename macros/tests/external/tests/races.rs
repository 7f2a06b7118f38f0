//! `#[safepoint::test]` from outside the workspace.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use safepoint::task::yield_now;

#[safepoint::test]
async fn multi_thread_by_default() {
    assert_eq!(safepoint::Handle::current().metrics().workers, 2);
    assert_eq!(safepoint::spawn(async { 6 * 7 }).await.unwrap(), 42);
}

/// A correct version of the cache below: the check and the insert happen
/// without an await in between. Passes on every seed.
#[safepoint::test(flavor = "deterministic", seeds = 64, strategy = "pct")]
async fn check_and_insert_under_one_lock() {
    let loads = Arc::new(Mutex::new(HashMap::<u32, u32>::new()));
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let loads = loads.clone();
            safepoint::spawn(async move {
                yield_now().await;
                *loads.lock().unwrap().entry(7).or_insert(0) += 1;
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(loads.lock().unwrap()[&7], 3);
}

/// Check-then-act across an await: two tasks may both miss the cache and
/// both load the value.
#[safepoint::test(flavor = "deterministic", seeds = 1000)]
#[ignore = "fails on purpose: run by safepoint-macros's tests/external.rs"]
async fn check_then_act() {
    let cache = Arc::new(Mutex::new(HashMap::<u32, u32>::new()));
    let loads = Arc::new(Mutex::new(0u32));
    let tasks: Vec<_> = (0..2)
        .map(|i| {
            let (cache, loads) = (cache.clone(), loads.clone());
            safepoint::spawn(async move {
                for _ in 0..i {
                    yield_now().await;
                }
                let missing = !cache.lock().unwrap().contains_key(&7);
                if missing {
                    *loads.lock().unwrap() += 1;
                    yield_now().await; // the load
                    cache.lock().unwrap().insert(7, 49);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let loads = *loads.lock().unwrap();
    assert_eq!(loads, 1, "check-then-act: key 7 loaded {loads} times");
}
