#[safepoint::test(worker_threads = 4, seeds = 256)]
async fn seeds_without_the_deterministic_flavor() {}

fn main() {}
