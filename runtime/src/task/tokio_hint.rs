//! A hint for the panic tokio code most often hits on this runtime.
//!
//! `tokio::time`, `tokio::net` and `tokio::spawn` panic with "there is no
//! reactor running, must be called from the context of a Tokio 1.x
//! runtime" when no tokio runtime is entered, which is the case inside our
//! tasks unless the tokio compatibility mode is on. The message names
//! tokio, not us, so when a task dies of it the runtime prints one more
//! line saying how to turn the mode on (the panic itself still reaches the
//! task's `JoinHandle` untouched).

use std::any::Any;

use super::join::panic_message;
use super::Id;

#[cfg(feature = "tokio-compat")]
const HOW: &str = "build the runtime with `Builder::enable_tokio_compat()`";
#[cfg(not(feature = "tokio-compat"))]
const HOW: &str = "enable the `tokio-compat` feature of safepoint and build the runtime with \
                   `Builder::enable_tokio_compat()`";

/// Prints the hint if `payload` is tokio's "no runtime" panic.
pub(crate) fn after_panic(id: Id, payload: &(dyn Any + Send)) {
    let Some(msg) = panic_message(payload) else {
        return;
    };
    if !msg.contains("Tokio 1.x runtime") {
        return;
    }
    #[cfg(feature = "tokio-compat")]
    if tokio::runtime::Handle::try_current().is_ok() {
        return; // the mode is on: this is some other tokio trouble
    }
    eprintln!(
        "safepoint: task {id} called tokio outside a tokio runtime; to run tokio timers, \
         sockets and tokio::spawn inside safepoint tasks, {HOW} (see the README, \
         \"tokio compatibility mode\")"
    );
}
