//! Real signals, raised by the test process itself. Kept in their own test
//! binary so the handlers they install do not affect other tests; each test
//! uses a different signal because tests run in parallel threads.

mod common;

use std::time::Duration;

use futures::StreamExt;
use safepoint_io::signal::unix::{signal, SignalKind};
use safepoint_io::signal::{ctrl_c, terminate};
use safepoint_io::time::timeout;

use common::block_on;

fn raise(sig: libc::c_int) {
    // SAFETY: raise only sends a signal to this thread; the listener installed
    // beforehand replaced the default action, so the process is not killed.
    assert_eq!(unsafe { libc::raise(sig) }, 0);
}

#[test]
fn terminate_resolves_on_sigterm() {
    block_on(async {
        let term = terminate();
        raise(libc::SIGTERM);
        timeout(Duration::from_secs(5), term)
            .await
            .expect("SIGTERM not delivered")
            .unwrap();
    });
}

#[test]
fn ctrl_c_resolves_on_sigint() {
    block_on(async {
        let c = ctrl_c();
        raise(libc::SIGINT);
        timeout(Duration::from_secs(5), c).await.unwrap().unwrap();
    });
}

#[test]
fn every_listener_is_notified() {
    block_on(async {
        let mut a = signal(SignalKind::user_defined1()).unwrap();
        let mut b = signal(SignalKind::user_defined1()).unwrap();
        raise(libc::SIGUSR1);
        let both = futures::future::join(a.recv(), b.recv());
        let (ra, rb) = timeout(Duration::from_secs(5), both).await.unwrap();
        assert_eq!((ra, rb), (Some(()), Some(())));
        // And again: deliveries keep coming, as a stream too.
        raise(libc::SIGUSR1);
        assert_eq!(
            timeout(Duration::from_secs(5), a.next()).await.unwrap(),
            Some(())
        );
        assert_eq!(
            timeout(Duration::from_secs(5), b.next()).await.unwrap(),
            Some(())
        );
    });
}

#[test]
fn uncatchable_signal_is_an_error() {
    block_on(async {
        assert!(signal(SignalKind::from_raw(libc::SIGKILL)).is_err());
    });
}
