//! A small tour: spawn work, stop the world, print what happened.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let rt = safepoint::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let t = Instant::now();
    let out = rt.block_on(async {
        let mut hs = Vec::new();
        for i in 0..100_000u64 {
            hs.push(safepoint::spawn(async move { i * 2 }));
        }
        let mut sum = 0;
        for h in hs {
            sum += h.await.unwrap();
        }
        sum
    });
    println!("100k tasks: sum {out} in {:?}", t.elapsed());
    let polls = Arc::new(AtomicU64::new(0));
    for _ in 0..8 {
        let polls = polls.clone();
        rt.spawn(async move {
            loop {
                polls.fetch_add(1, Ordering::Relaxed);
                safepoint::safepoint().await;
                safepoint::task::yield_now().await;
            }
        });
    }
    for i in 0..5 {
        std::thread::sleep(Duration::from_millis(20));
        let world = rt.handle().stop_the_world_blocking();
        let a = polls.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(5));
        let b = polls.load(Ordering::Relaxed);
        println!("stop {i}: {:?}; frozen: {}", world.report(), a == b);
    }
    let w = rt.block_on(async { safepoint::Handle::current().stop_the_world().await });
    println!("from block_on: {:?}", w.report());
    drop(w);
    rt.block_on(async { safepoint::time::sleep(Duration::from_millis(10)).await });
    println!("metrics: {:?}", rt.metrics());
}
