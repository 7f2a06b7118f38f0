//! `safepoint-io`: the driver of the safepoint runtime.
//!
//! Being written; see the module docs once they land.
