#[safepoint::main(worker_threads = 0, flavor = "deterministic")]
async fn main() {}
