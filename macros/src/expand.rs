//! The code the macros generate.
//!
//! The function's body moves, unchanged, into an inner `async fn` with the
//! same return type, so `return`, `?` and the body's spans behave as the
//! user wrote them, and a seeded test can call it once per seed. The outer
//! function hands it to `::safepoint::entry`, which does the running (plain
//! library code: the macro stays a thin, testable shell).

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::ItemFn;

use crate::args::{Flavor, Kind, Strategy};

/// Checks that the function can be wrapped: async, no parameters, no
/// generics, and (for tests) no `#[test]` of its own.
pub(crate) fn check_fn(kind: Kind, item: &ItemFn) -> syn::Result<()> {
    let sig = &item.sig;
    let attr = match kind {
        Kind::Main => "#[safepoint::main]",
        Kind::Test => "#[safepoint::test]",
    };
    let mut errors: Vec<syn::Error> = Vec::new();
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            sig.fn_token,
            format!("the `async` keyword is missing from the function declaration ({attr} runs an `async fn`)"),
        ));
    }
    if !sig.inputs.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.inputs,
            format!("{attr} functions take no arguments"),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            format!("{attr} functions cannot be generic"),
        ));
    }
    if kind == Kind::Test {
        if let Some(a) = item.attrs.iter().find(|a| a.path().is_ident("test")) {
            errors.push(syn::Error::new_spanned(
                a,
                "remove this #[test]: #[safepoint::test] adds it",
            ));
        }
    }
    let mut errors = errors.into_iter();
    match errors.next() {
        None => Ok(()),
        Some(mut first) => {
            errors.for_each(|e| first.combine(e));
            Err(first)
        }
    }
}

/// The function with its body replaced by `unreachable!()`, emitted next to
/// a compile error so that the error is the only one reported (no "main
/// not found", no errors from the body of a function that was not async).
pub(crate) fn fallback(item: &ItemFn) -> TokenStream {
    let ItemFn {
        attrs, vis, sig, ..
    } = item;
    let ident = &sig.ident;
    let output = &sig.output;
    quote! {
        #(#attrs)*
        #[allow(dead_code, unreachable_code)]
        #vis fn #ident() #output { ::core::unreachable!() }
    }
}

fn strategy_tokens(strategy: &Strategy) -> TokenStream {
    match strategy {
        Strategy::Uniform => quote!(::safepoint::Strategy::Uniform),
        Strategy::Pct { depth } => quote!(::safepoint::Strategy::Pct { depth: #depth }),
    }
}

/// The expansion of a checked attribute on a checked function.
pub(crate) fn expand(kind: Kind, flavor: Flavor, item: ItemFn) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = item;
    let ident = &sig.ident;
    let output = &sig.output;
    let body_fn = format_ident!("__safepoint_body");
    let inner = quote_spanned! {block.span()=>
        async fn #body_fn() #output #block
    };
    let run = match (&flavor, kind) {
        (Flavor::MultiThread { workers }, Kind::Main) => {
            let workers = match workers {
                Some(n) => quote!(::core::option::Option::Some(#n)),
                None => quote!(::core::option::Option::None),
            };
            quote!(::safepoint::entry::main(#workers, #body_fn()))
        }
        (Flavor::MultiThread { workers }, Kind::Test) => {
            let workers = workers.unwrap_or(2);
            quote!(::safepoint::entry::multi_thread_test(#workers, #body_fn()))
        }
        (
            Flavor::Deterministic {
                first,
                count,
                strategy,
            },
            _,
        ) => {
            let strategy = strategy_tokens(strategy);
            let name = ident.to_string();
            let ignored = attrs.iter().any(|a| a.path().is_ident("ignore"));
            quote! {
                ::safepoint::entry::deterministic_test(
                    ::safepoint::entry::Site {
                        package: match ::core::option_env!("CARGO_PKG_NAME") {
                            ::core::option::Option::Some(p) => p,
                            ::core::option::Option::None => "<package>",
                        },
                        crate_name: match ::core::option_env!("CARGO_CRATE_NAME") {
                            ::core::option::Option::Some(c) => c,
                            ::core::option::Option::None => "<target>",
                        },
                        module_path: ::core::module_path!(),
                        name: #name,
                        integration_test: ::core::option_env!("CARGO_TARGET_TMPDIR").is_some(),
                        bin: ::core::option_env!("CARGO_BIN_NAME"),
                        ignored: #ignored,
                    },
                    ::safepoint::entry::Seeds {
                        first: #first,
                        count: #count,
                        strategy: #strategy,
                    },
                    #body_fn,
                )
            }
        }
    };
    let test_attr = match kind {
        Kind::Test => quote!(#[::core::prelude::v1::test]),
        Kind::Main => quote!(),
    };
    quote! {
        #test_attr
        #(#attrs)*
        #vis fn #ident() #output {
            #inner
            #run
        }
    }
}
