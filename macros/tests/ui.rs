//! Compile errors for wrong macro arguments, pinned with trybuild: each
//! file under `ui/` must fail to build with exactly its `.stderr`.
//! (`TRYBUILD=overwrite cargo test -p safepoint-macros --test ui` rewrites
//! them after a deliberate change of wording.)

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
