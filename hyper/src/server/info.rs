//! [`ConnectionInfo`]: the addresses of the connection a request came on.
//!
//! hyper services see only the request, so [`serve`](super::serve) wraps the
//! service once per connection and inserts the connection's info into each
//! request's extensions, where a hyper service reads it with
//! `req.extensions().get::<ConnectionInfo>()` and an axum handler with the
//! `Extension<ConnectionInfo>` extractor (axum's own `ConnectInfo` exists
//! only with axum's `tokio` feature, which brings tokio's runtime in).

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::service::Service;
use hyper::Request;

/// The local and peer address of the connection a request arrived on.
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use http_body_util::Full;
/// use hyper::{body::Bytes, service::service_fn, Request, Response};
/// use safepoint_hyper::ConnectionInfo;
///
/// let whoami = service_fn(|req: Request<hyper::body::Incoming>| async move {
///     let info = req.extensions().get::<ConnectionInfo>().expect("set by serve");
///     let body = format!("you are {}", info.peer_addr);
///     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
/// });
/// # drop(whoami);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The client's address.
    pub peer_addr: SocketAddr,
    /// The address the connection was accepted on.
    pub local_addr: SocketAddr,
}

impl ConnectionInfo {
    /// Info for a connection from `peer_addr` accepted on `local_addr`.
    ///
    /// # Examples
    ///
    /// ```
    /// let info = safepoint_hyper::ConnectionInfo::new(
    ///     "10.0.0.1:5000".parse().unwrap(),
    ///     "10.0.0.2:80".parse().unwrap(),
    /// );
    /// assert_eq!(info.peer_addr.port(), 5000);
    /// ```
    pub fn new(peer_addr: SocketAddr, local_addr: SocketAddr) -> ConnectionInfo {
        ConnectionInfo {
            peer_addr,
            local_addr,
        }
    }
}

/// A connection's service: `inner`, with `info` (when on) added to every
/// request.
#[derive(Clone, Debug)]
pub(crate) struct WithInfo<S> {
    pub(crate) inner: S,
    pub(crate) info: Option<ConnectionInfo>,
}

impl<S: Service<Request<Incoming>>> Service<Request<Incoming>> for WithInfo<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut req: Request<Incoming>) -> S::Future {
        if let Some(info) = self.info {
            req.extensions_mut().insert(info);
        }
        self.inner.call(req)
    }
}
