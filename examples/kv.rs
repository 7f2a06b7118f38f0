//! `cargo run --release --example kv -- --duration 10`: the key-value server demo.

fn main() {
    safepoint_examples::kv::main()
}

// The allocator matters to the checkpoint pause under load: see "Allocator"
// in the `safepoint_examples::kv` docs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
