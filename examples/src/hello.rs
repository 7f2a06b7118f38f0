//! The `Hello, World!` service of the `http` example, shared with its tokio
//! twin in `benches/http/tokio_http.rs` so that wrk compares the runtimes on
//! exactly the same service.

use std::convert::Infallible;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

/// `GET /` answers exactly `Hello, World!` (`text/plain`); anything else is
/// a 404. Runtime-agnostic: it never awaits anything.
///
/// # Examples
///
/// ```
/// let svc = hyper::service::service_fn(safepoint_examples::hello::hello);
/// # drop(svc);
/// ```
pub async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() == Method::GET && req.uri().path() == "/" {
        let mut resp = Response::new(Full::new(Bytes::from_static(b"Hello, World!")));
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        return Ok(resp);
    }
    let mut resp = Response::new(Full::new(Bytes::from_static(b"not found\n")));
    *resp.status_mut() = StatusCode::NOT_FOUND;
    Ok(resp)
}
