//! `#[safepoint::main]` and `#[safepoint::test]`: entry points for the
//! safepoint runtime, and seeded exploration of task interleavings.
//!
//! Use them through the `safepoint` crate, which re-exports both; the
//! generated code names the runtime as `::safepoint`. This crate only parses
//! and checks the arguments (`args`) and wraps the function (`expand`); what
//! runs is `safepoint::entry`, ordinary library code.

use proc_macro::TokenStream;
use syn::punctuated::Punctuated;
use syn::{ItemFn, MetaNameValue, Token};

mod args;
mod expand;

use args::Kind;

fn entry(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let item = syn::parse_macro_input!(item as ItemFn);
    let list = match syn::parse::Parser::parse(
        Punctuated::<MetaNameValue, Token![,]>::parse_terminated,
        args,
    ) {
        Ok(list) => list,
        Err(e) => {
            let mut out = e.to_compile_error();
            out.extend(expand::fallback(&item));
            return out.into();
        }
    };
    let checked = expand::check_fn(kind, &item);
    match (args::parse(kind, list), checked) {
        (Ok(flavor), Ok(())) => expand::expand(kind, flavor, item).into(),
        (Err(mut e), Err(f)) => {
            e.combine(f);
            let mut out = e.to_compile_error();
            out.extend(expand::fallback(&item));
            out.into()
        }
        (Err(e), _) | (_, Err(e)) => {
            let mut out = e.to_compile_error();
            out.extend(expand::fallback(&item));
            out.into()
        }
    }
}

/// Runs `async fn main` on a multi-thread safepoint runtime.
///
/// `#[safepoint::main]` builds a runtime with one worker per CPU (or
/// `worker_threads = N`) and `block_on`s the body, which may return `()`
/// or a `Result` (as `fn main` can). It is exactly the hand-written
/// `Builder::new_multi_thread().build()?.block_on(...)`, no more.
///
/// # Examples
///
/// ```
/// #[safepoint::main(worker_threads = 2)]
/// async fn main() -> std::io::Result<()> {
///     let listener = safepoint::net::TcpListener::bind("127.0.0.1:0").await?;
///     let addr = listener.local_addr()?;
///     let client = safepoint::spawn(async move { safepoint::net::TcpStream::connect(addr).await });
///     let (_server_side, _) = listener.accept().await?;
///     client.await.unwrap()?;
///     Ok(())
/// }
/// ```
///
/// # Errors
///
/// Compile errors, pointing at the mistake, for: a function that is not
/// `async`, has parameters or generics; an unknown argument;
/// `worker_threads = 0`; `flavor = "deterministic"` (use
/// `Builder::new_deterministic(seed)` for a seeded program).
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    entry(Kind::Main, args, item)
}

/// Runs an `async fn` test on a safepoint runtime, multi-thread or
/// deterministic; a deterministic test can explore many seeds.
///
/// | arguments | runs |
/// |---|---|
/// | (none) | a multi-thread runtime with 2 workers |
/// | `worker_threads = N` | N workers |
/// | `flavor = "deterministic"` | one seed (0) of the deterministic flavour |
/// | `..., seed = S` | seed S |
/// | `..., seeds = N` | seeds S, S+1, ... S+N-1, each on a fresh runtime; stops at the first failure |
/// | `..., strategy = "pct"` | PCT scheduling (see `safepoint::Strategy`), `depth = D` (default 3) |
///
/// A failing seed is named in the failure message as `SAFEPOINT_SEED=N`
/// with the cargo command that runs that seed alone; it fails the same way
/// every time. The environment steers a run without recompiling:
/// `SAFEPOINT_SEED=N` runs only seed N; `SAFEPOINT_SEEDS=N` runs N seeds
/// (explore more in a nightly job); `SAFEPOINT_CHECK_DETERMINISM=1` runs
/// each seed twice and fails at the first round where the schedules differ.
///
/// The body may return `()` or a `Result`; other attributes
/// (`#[should_panic]`, `#[ignore]`) apply as with `#[test]`.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
///
/// #[safepoint::test(flavor = "deterministic", seeds = 64)]
/// async fn increments_are_not_lost() {
///     let n = Arc::new(AtomicU32::new(0));
///     let tasks: Vec<_> = (0..4)
///         .map(|_| {
///             let n = n.clone();
///             safepoint::spawn(async move {
///                 n.fetch_add(1, Ordering::SeqCst);
///             })
///         })
///         .collect();
///     for t in tasks {
///         t.await.unwrap();
///     }
///     assert_eq!(n.load(Ordering::SeqCst), 4);
/// }
/// # fn main() {}
/// ```
///
/// # Errors
///
/// Compile errors, pointing at the mistake, for: a function that is not
/// `async`, has parameters or generics, or carries its own `#[test]`; an
/// unknown argument or flavor or strategy; `seed`, `seeds`, `strategy` or
/// `depth` without `flavor = "deterministic"`; `worker_threads` with it;
/// `seeds = 0`, `worker_threads = 0`.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    entry(Kind::Test, args, item)
}
