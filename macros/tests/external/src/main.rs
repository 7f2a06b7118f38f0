//! `#[safepoint::main]` from outside the workspace: an echo over loopback,
//! with `?` on the way (main returns a `Result`).

use safepoint::net::{TcpListener, TcpStream};

#[safepoint::main(worker_threads = 2)]
async fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let client = safepoint::spawn(async move { TcpStream::connect(addr).await });
    let (_server_side, peer) = listener.accept().await?;
    let stream = client.await.expect("the client task")?;
    assert_eq!(stream.local_addr()?, peer);
    let workers = safepoint::Handle::current().metrics().workers;
    println!("main ran on {workers} workers and accepted {peer}");
    Ok(())
}
