//! The macros' arguments: `key = value` pairs, checked into a [`Flavor`].
//!
//! Every mistake becomes a `syn::Error` spanned on the offending key or
//! value, so the compiler points at it; all mistakes in one attribute are
//! reported together rather than one per build.

use proc_macro2::Span;
use syn::punctuated::Punctuated;
use syn::{Expr, Lit, MetaNameValue, Token};

/// Which macro is being expanded (they accept different keys).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Main,
    Test,
}

impl Kind {
    fn attr(self) -> &'static str {
        match self {
            Kind::Main => "#[safepoint::main]",
            Kind::Test => "#[safepoint::test]",
        }
    }

    fn keys(self) -> &'static [&'static str] {
        match self {
            Kind::Main => &["flavor", "worker_threads"],
            Kind::Test => &[
                "flavor",
                "worker_threads",
                "seed",
                "seeds",
                "strategy",
                "depth",
            ],
        }
    }
}

/// PCT's depth when `strategy = "pct"` gives none.
const DEFAULT_PCT_DEPTH: u32 = 3;

/// The deterministic flavour's exploration strategy.
pub(crate) enum Strategy {
    Uniform,
    Pct { depth: u32 },
}

/// What the arguments ask for.
pub(crate) enum Flavor {
    MultiThread {
        workers: Option<usize>,
    },
    Deterministic {
        first: u64,
        count: u64,
        strategy: Strategy,
    },
}

/// One `key = value`, with spans to point at.
struct Arg {
    key: String,
    key_span: Span,
    value: Expr,
}

fn int<T: std::str::FromStr>(arg: &Arg, min: u64) -> syn::Result<T>
where
    T::Err: std::fmt::Display,
{
    match &arg.value {
        Expr::Lit(lit) => match &lit.lit {
            Lit::Int(n) => {
                let v: u64 = n.base10_parse()?;
                if v < min {
                    return Err(syn::Error::new_spanned(
                        n,
                        format!("`{}` must be at least {min}", arg.key),
                    ));
                }
                n.base10_parse()
            }
            other => Err(syn::Error::new_spanned(
                other,
                format!("`{}` takes an integer, as in `{} = 4`", arg.key, arg.key),
            )),
        },
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{}` takes an integer literal", arg.key),
        )),
    }
}

fn string(arg: &Arg) -> syn::Result<(String, Span)> {
    match &arg.value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok((s.value(), s.span())),
        other => Err(syn::Error::new_spanned(
            other,
            format!(
                "`{}` takes a string literal, as in `{} = \"...\"`",
                arg.key, arg.key
            ),
        )),
    }
}

/// Collects errors so that all of them are reported at once.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    fn at(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.push(syn::Error::new(span, msg));
    }
}

/// Parses and checks the attribute's arguments.
pub(crate) fn parse(kind: Kind, list: Punctuated<MetaNameValue, Token![,]>) -> syn::Result<Flavor> {
    let mut errors = Errors::default();
    let mut args: Vec<Arg> = Vec::new();
    for nv in list {
        let key_span = syn::spanned::Spanned::span(&nv.path);
        let Some(key) = nv.path.get_ident().map(|i| i.to_string()) else {
            errors.at(
                key_span,
                "expected a plain argument name, as in `worker_threads = 4`",
            );
            continue;
        };
        if !kind.keys().contains(&key.as_str()) {
            errors.at(
                key_span,
                format!(
                    "unknown argument `{key}` for {}; expected one of: {}",
                    kind.attr(),
                    kind.keys().join(", ")
                ),
            );
            continue;
        }
        if args.iter().any(|a| a.key == key) {
            errors.at(key_span, format!("`{key}` is given twice"));
            continue;
        }
        args.push(Arg {
            key,
            key_span,
            value: nv.value,
        });
    }
    let get = |key: &str| args.iter().find(|a| a.key == key);

    let deterministic = match get("flavor").map(string) {
        None => false,
        Some(Ok((f, _))) if f == "multi_thread" => false,
        Some(Ok((f, _))) if f == "deterministic" && kind == Kind::Test => true,
        Some(Ok((f, span))) if f == "deterministic" => {
            errors.at(
                span,
                "#[safepoint::main] runs the multi-thread flavour only; build a deterministic \
                 runtime with safepoint::Builder::new_deterministic(seed) instead",
            );
            false
        }
        Some(Ok((f, span))) => {
            errors.at(
                span,
                format!("unknown flavor `{f}`; expected \"multi_thread\" or \"deterministic\""),
            );
            false
        }
        Some(Err(e)) => {
            errors.push(e);
            false
        }
    };

    let flavor = if deterministic {
        if let Some(w) = get("worker_threads") {
            errors.at(
                w.key_span,
                "`worker_threads` applies to the multi-thread flavour; the deterministic \
                 flavour runs every task on the test's own thread",
            );
        }
        let mut value = |key: &str, default: u64, min: u64| match get(key).map(|a| int(a, min)) {
            None => default,
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                errors.push(e);
                default
            }
        };
        let first = value("seed", 0, 0);
        let count = value("seeds", 1, 1);
        let depth = get("depth");
        let strategy = match get("strategy").map(string) {
            None => Strategy::Uniform,
            Some(Ok((s, _))) if s == "uniform" => Strategy::Uniform,
            Some(Ok((s, _))) if s == "pct" => Strategy::Pct {
                depth: match depth.map(|a| int::<u32>(a, 1)) {
                    None => DEFAULT_PCT_DEPTH,
                    Some(Ok(d)) => d,
                    Some(Err(e)) => {
                        errors.push(e);
                        DEFAULT_PCT_DEPTH
                    }
                },
            },
            Some(Ok((s, span))) => {
                errors.at(
                    span,
                    format!("unknown strategy `{s}`; expected \"uniform\" or \"pct\""),
                );
                Strategy::Uniform
            }
            Some(Err(e)) => {
                errors.push(e);
                Strategy::Uniform
            }
        };
        if let (Some(d), Strategy::Uniform) = (depth, &strategy) {
            errors.at(
                d.key_span,
                "`depth` is PCT's: it needs `strategy = \"pct\"`",
            );
        }
        Flavor::Deterministic {
            first,
            count,
            strategy,
        }
    } else {
        for key in ["seed", "seeds", "strategy", "depth"] {
            if let Some(a) = get(key) {
                errors.at(
                    a.key_span,
                    format!(
                        "`{key}` needs `flavor = \"deterministic\"`: the multi-thread flavour \
                         is not seeded"
                    ),
                );
            }
        }
        let workers = match get("worker_threads").map(|a| int::<usize>(a, 1)) {
            None => None,
            Some(Ok(n)) => Some(n),
            Some(Err(e)) => {
                errors.push(e);
                None
            }
        };
        Flavor::MultiThread { workers }
    };
    match errors.0 {
        Some(e) => Err(e),
        None => Ok(flavor),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse, Flavor, Kind, Strategy};
    use syn::parse::Parser;
    use syn::punctuated::Punctuated;
    use syn::{MetaNameValue, Token};

    fn args(kind: Kind, tokens: proc_macro2::TokenStream) -> syn::Result<Flavor> {
        let list = Punctuated::<MetaNameValue, Token![,]>::parse_terminated
            .parse2(tokens)
            .unwrap();
        parse(kind, list)
    }

    fn error(kind: Kind, tokens: proc_macro2::TokenStream) -> String {
        match args(kind, tokens) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e
                .into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(" | "),
        }
    }

    /// The parse of `source` as a short string, to compare.
    fn parsed(kind: Kind, source: &str) -> String {
        match args(kind, source.parse().unwrap()).unwrap() {
            Flavor::MultiThread { workers } => format!("multi_thread {workers:?}"),
            Flavor::Deterministic {
                first,
                count,
                strategy: Strategy::Uniform,
            } => format!("deterministic {first}+{count} uniform"),
            Flavor::Deterministic {
                first,
                count,
                strategy: Strategy::Pct { depth },
            } => format!("deterministic {first}+{count} pct {depth}"),
        }
    }

    #[test]
    fn arguments_and_defaults() {
        let cases = [
            (Kind::Main, "", "multi_thread None"),
            (Kind::Main, "worker_threads = 4", "multi_thread Some(4)"),
            (Kind::Test, "flavor = \"multi_thread\"", "multi_thread None"),
            (
                Kind::Test,
                "flavor = \"deterministic\"",
                "deterministic 0+1 uniform",
            ),
            (
                Kind::Test,
                "flavor = \"deterministic\", seed = 7, seeds = 64, strategy = \"pct\", depth = 2",
                "deterministic 7+64 pct 2",
            ),
            (
                Kind::Test,
                "flavor = \"deterministic\", strategy = \"pct\"",
                "deterministic 0+1 pct 3",
            ),
        ];
        for (kind, source, expected) in cases {
            assert_eq!(parsed(kind, source), expected, "{source}");
        }
    }

    #[test]
    fn every_mistake_is_named() {
        const DET: &str = "flavor = \"deterministic\", ";
        let cases = [
            (Kind::Test, "seeds = 2, seeds = 3", "`seeds` is given twice"),
            (Kind::Test, &format!("{DET}depth = 2"), "`depth` is PCT's"),
            (
                Kind::Test,
                &format!("{DET}worker_threads = 2"),
                "`worker_threads` applies",
            ),
            (
                Kind::Test,
                "flavor = \"current_thread\"",
                "unknown flavor `current_thread`",
            ),
            (
                Kind::Test,
                &format!("{DET}seeds = 0"),
                "`seeds` must be at least 1",
            ),
            (
                Kind::Test,
                "worker_threads = \"4\"",
                "`worker_threads` takes an integer",
            ),
            (
                Kind::Test,
                &format!("{DET}strategy = \"random\""),
                "unknown strategy `random`",
            ),
            (
                Kind::Main,
                "seed = 1",
                "unknown argument `seed` for #[safepoint::main]",
            ),
        ];
        for (kind, source, expected) in cases {
            let msg = error(kind, source.parse().unwrap());
            assert!(
                msg.contains(expected),
                "{source}: expected {expected:?} in {msg:?}"
            );
        }
    }
}
