//! `cargo run --release --example kv -- --duration 10`: the key-value server demo.

fn main() {
    safepoint_examples::kv::main()
}
