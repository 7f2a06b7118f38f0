//! Where a test lives, read at compile time from cargo's environment, and
//! the command line that runs exactly that test again.
//!
//! The harness names a test by its module path without the crate name
//! (`tests::it_works`). The cargo target is an integration test when cargo
//! set `CARGO_TARGET_TMPDIR` (it does only for integration tests and
//! benches), a binary when it set `CARGO_BIN_NAME`, the library otherwise.

/// A test's place, as `#[safepoint::test]` records it.
///
/// # Examples
///
/// ```
/// let site = safepoint::entry::Site {
///     package: "app",
///     crate_name: "races",
///     module_path: "races::maps",
///     name: "check_then_act",
///     integration_test: true,
///     bin: None,
///     ignored: false,
/// };
/// assert_eq!(site.test_path(), "maps::check_then_act");
/// assert_eq!(
///     site.replay_command("SAFEPOINT_SEED=3"),
///     "SAFEPOINT_SEED=3 cargo test -p app --test races -- maps::check_then_act --exact"
/// );
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Site {
    /// `CARGO_PKG_NAME`.
    pub package: &'static str,
    /// `CARGO_CRATE_NAME`: the test target's crate.
    pub crate_name: &'static str,
    /// `module_path!()` where the test function is.
    pub module_path: &'static str,
    /// The test function's name.
    pub name: &'static str,
    /// Whether `CARGO_TARGET_TMPDIR` was set: an integration test target.
    pub integration_test: bool,
    /// `CARGO_BIN_NAME`, for tests inside a binary.
    pub bin: Option<&'static str>,
    /// Whether the test is `#[ignore]`d (the replay command then passes
    /// `--include-ignored`, or the harness would skip it).
    pub ignored: bool,
}

impl Site {
    /// The name the test harness gives the test: its module path without
    /// the crate, then the function.
    ///
    /// # Examples
    ///
    /// ```
    /// # let site = safepoint::entry::Site { package: "p", crate_name: "p", module_path: "p",
    /// #     name: "t", integration_test: false, bin: None, ignored: false };
    /// assert_eq!(site.test_path(), "t");
    /// ```
    pub fn test_path(&self) -> String {
        let inner = self
            .module_path
            .split_once("::")
            .map(|(_, rest)| rest)
            .unwrap_or("");
        if inner.is_empty() {
            self.name.to_owned()
        } else {
            format!("{inner}::{}", self.name)
        }
    }

    /// The shell command that runs only this test, with `env` (for example
    /// `SAFEPOINT_SEED=3`) in front.
    ///
    /// # Examples
    ///
    /// ```
    /// # let site = safepoint::entry::Site { package: "p", crate_name: "p", module_path: "p::tests",
    /// #     name: "t", integration_test: false, bin: None, ignored: false };
    /// assert_eq!(site.replay_command("X=1"), "X=1 cargo test -p p --lib -- tests::t --exact");
    /// ```
    pub fn replay_command(&self, env: &str) -> String {
        let target = if self.integration_test {
            format!("--test {}", self.crate_name)
        } else if let Some(bin) = self.bin {
            format!("--bin {bin}")
        } else {
            "--lib".to_owned()
        };
        let ignored = if self.ignored {
            " --include-ignored"
        } else {
            ""
        };
        format!(
            "{env} cargo test -p {} {target} -- {} --exact{ignored}",
            self.package,
            self.test_path()
        )
    }
}
