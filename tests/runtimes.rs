//! The core is runtime-agnostic: sessions run on smol and tokio through the generic entry
//! points, and the runtime features' endpoints work on their own runtime.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use futures::StreamExt;

use common::pattern;
use wsmux::server::ServerConfig;
use wsmux::{Config, Session};

async fn echo_round_trip(client: Session) {
    let mut ch = client.open("echo").await.unwrap();
    let data = Bytes::from(pattern(5, 200_000));
    ch.send(data.clone()).await.unwrap();
    assert_eq!(ch.recv().await.unwrap().unwrap(), data);
    ch.finish().await.unwrap();
    assert_eq!(ch.recv().await.unwrap(), None);
}

#[test]
fn smol_drives_a_session_through_the_generic_entry_points() {
    smol::block_on(async {
        let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/mux", listener.local_addr().unwrap());
        let server = smol::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let (session, driver) =
                wsmux::server::accept(tcp, &ServerConfig::default()).await.unwrap();
            smol::spawn(driver).detach();
            let incoming = session.accept().await.unwrap();
            wsmux::interop::handle(incoming).await.unwrap();
        });
        let tcp =
            smol::net::TcpStream::connect(url.trim_start_matches("ws://").trim_end_matches("/mux"))
                .await
                .unwrap();
        let (client, driver) =
            wsmux::client::connect_on(tcp, &url, Config::default()).await.unwrap();
        smol::spawn(driver).detach();
        echo_round_trip(client).await;
        server.await;
    });
}

#[test]
fn tokio_drives_a_session_through_the_generic_entry_points() {
    use tokio_util::compat::TokioAsyncReadCompatExt;
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let url = format!("ws://{addr}/mux");
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let (session, driver) =
                wsmux::server::accept(tcp.compat(), &ServerConfig::default()).await.unwrap();
            tokio::spawn(driver);
            let incoming = session.accept().await.unwrap();
            wsmux::interop::handle(incoming).await.unwrap();
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (client, driver) =
            wsmux::client::connect_on(tcp.compat(), &url, Config::default()).await.unwrap();
        tokio::spawn(driver);
        echo_round_trip(client).await;
        server.await.unwrap();
    });
}

const ADD: wsmux::rpc::Unary<(u32, u32), u32> = wsmux::rpc::Unary::new("add");
const SLOW: wsmux::rpc::Unary<u32, u32> = wsmux::rpc::Unary::new("slow");

/// The test's hold on the `slow` method: it says when the call started, and waits for
/// `release` before it answers.
struct Hold {
    started: futures::channel::mpsc::UnboundedSender<()>,
    release: futures::channel::oneshot::Receiver<()>,
}

/// A router whose `slow` method waits for the test (see [`Hold`]).
fn router(hold: Hold) -> wsmux::rpc::Router {
    let hold = std::sync::Arc::new(std::sync::Mutex::new(Some(hold)));
    wsmux::rpc::Router::new().unary(ADD, |(a, b): (u32, u32), _| async move { Ok(a + b) }).unary(
        SLOW,
        move |n: u32, _| {
            let hold = hold.lock().unwrap().take().expect("one slow call");
            async move {
                hold.started.unbounded_send(()).unwrap();
                hold.release.await.unwrap();
                Ok(n + 1)
            }
        },
    )
}

/// Calls answered at once, and one that waits while others are answered, then the end.
async fn calls_round(
    client: Session,
    mut started: futures::channel::mpsc::UnboundedReceiver<()>,
    release: futures::channel::oneshot::Sender<()>,
) {
    let client = wsmux::rpc::Client::new(client);
    for i in 0..100 {
        assert_eq!(client.unary(&ADD, &(i, 1)).await, Ok(i + 1));
    }
    let slow = {
        let client = client.clone();
        async move { client.unary(&SLOW, &41).await }
    };
    let others = async {
        started.next().await.expect("the slow call started");
        for i in 0..10 {
            assert_eq!(client.unary(&ADD, &(i, i)).await, Ok(2 * i), "served while one waits");
        }
        release.send(()).unwrap();
    };
    let (slow, ()) = futures::join!(slow, others);
    assert_eq!(slow, Ok(42));
    client.session().close(wsmux::ErrorCode::NO_ERROR, "done");
}

/// `Router::serve_connection_with` on tokio's multi-threaded runtime: a server connection and
/// its calls in one tokio task, a call that waits in a task of its own.
#[test]
fn tokio_serves_a_connection_and_its_calls_in_one_task() {
    tokio_serves_a_connection(|router, session, driver| {
        Box::pin(router.serve_connection_with(session, driver, |call| drop(tokio::spawn(call))))
    });
}

/// With only the `tokio` feature, `Router::serve_connection` runs the calls that wait as tokio
/// tasks.
#[cfg(all(feature = "tokio", not(any(feature = "async-std", feature = "smol"))))]
#[test]
fn tokio_feature_serve_connection_spawns_waiting_calls_on_tokio() {
    tokio_serves_a_connection(|router, session, driver| {
        Box::pin(router.serve_connection(session, driver))
    });
}

type Connection =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), wsmux::Error>> + Send>>;

fn tokio_serves_a_connection(
    serve: impl FnOnce(wsmux::rpc::Router, Session, wsmux::Driver) -> Connection + Send + 'static,
) {
    use tokio_util::compat::TokioAsyncReadCompatExt;
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let test = async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (release_tx, release) = futures::channel::oneshot::channel();
        let (started, started_rx) = futures::channel::mpsc::unbounded();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let (session, driver) =
                wsmux::server::accept(tcp.compat(), &ServerConfig::default()).await.unwrap();
            serve(router(Hold { started, release }), session, driver).await
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let url = format!("ws://{addr}/mux");
        let (client, driver) =
            wsmux::client::connect_on(tcp.compat(), &url, Config::default()).await.unwrap();
        tokio::spawn(driver);
        calls_round(client, started_rx, release_tx).await;
        server.await.unwrap().expect("the connection ends cleanly");
    };
    rt.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(60), test).await.expect("in time")
    });
}

/// With only the `tokio` feature (`--no-default-features --features tokio`), `Server`,
/// `connect` and `spawn` run on tokio.
#[cfg(all(feature = "tokio", not(any(feature = "async-std", feature = "smol"))))]
#[test]
fn tokio_feature_endpoints_serve_and_connect() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(endpoints_serve_and_connect());
}

/// With only the `smol` feature (`--no-default-features --features smol`), the endpoints run
/// on smol.
#[cfg(all(feature = "smol", not(feature = "async-std")))]
#[test]
fn smol_feature_endpoints_serve_and_connect() {
    smol::block_on(endpoints_serve_and_connect());
}

#[cfg(any(feature = "async-std", feature = "smol", feature = "tokio"))]
#[allow(dead_code)]
async fn endpoints_serve_and_connect() {
    let server = wsmux::server::Server::bind("127.0.0.1:0", ServerConfig::default()).await.unwrap();
    let url = format!("ws://{}/mux", server.local_addr());
    let (client, driver) = wsmux::client::connect(&url, Config::default()).await.unwrap();
    wsmux::spawn(driver);
    let session = server.accept().await.unwrap();
    let serve = async {
        let incoming = session.accept().await.unwrap();
        wsmux::interop::handle(incoming).await.unwrap();
    };
    futures::join!(serve, echo_round_trip(client));
}
