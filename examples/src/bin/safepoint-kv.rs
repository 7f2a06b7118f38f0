//! The `safepoint-kv` server binary; see `safepoint_examples::kv`.

fn main() {
    safepoint_examples::kv::main()
}
