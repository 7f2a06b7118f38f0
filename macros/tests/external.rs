//! The macros from a crate outside the workspace (`tests/external/`, a
//! path dependency on `safepoint` and nothing else): its `main` runs, its
//! tests pass, and a failing seed's printed replay command, run verbatim
//! in that crate, fails again at the same seed.
//!
//! It builds in trybuild's target directory, next to the ui tests' build,
//! so the dependencies compiled for one serve the other.

use std::path::{Path, PathBuf};
use std::process::Command;

fn external_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/external")
}

fn target_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("tests/trybuild")
}

/// Runs `sh -c script` in the external crate, with its target directory
/// set; returns success and stdout + stderr.
fn sh(script: &str) -> (bool, String) {
    let out = Command::new("sh")
        .args(["-c", script])
        .current_dir(external_dir())
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("SAFEPOINT_SEED")
        .env_remove("SAFEPOINT_SEEDS")
        .env_remove("SAFEPOINT_CHECK_DETERMINISM")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn macros_work_from_a_crate_outside_the_workspace() {
    let (ok, text) = sh("cargo run -q");
    assert!(ok, "{text}");
    assert!(text.contains("main ran on 2 workers"), "{text}");

    let (ok, text) = sh("cargo test -q");
    assert!(ok, "{text}");
    assert!(
        text.contains("2 passed") && text.contains("1 ignored"),
        "{text}"
    );

    let (ok, text) = sh("cargo test -q --test races -- check_then_act --exact --include-ignored");
    assert!(!ok, "the race must be found:\n{text}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("SAFEPOINT_SEED="))
        .unwrap_or_else(|| panic!("no replay command in:\n{text}"))
        .trim();
    let seed = &line["SAFEPOINT_SEED=".len()..line.find(' ').unwrap()];
    assert_eq!(
        &line[line.find(' ').unwrap()..],
        " cargo test -p safepoint-macro-user --test races -- check_then_act --exact \
         --include-ignored"
    );
    let (ok, replay) = sh(line);
    assert!(!ok, "the replay must fail:\n{replay}");
    assert!(
        replay.contains(&format!("failed with seed {seed} (seed 1 of 1")),
        "{replay}"
    );
    assert!(
        replay.contains("check-then-act: key 7 loaded 2 times"),
        "{replay}"
    );
}
