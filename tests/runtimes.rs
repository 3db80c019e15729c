//! The core is runtime-agnostic: sessions run on smol and tokio through the generic entry
//! points, and the runtime features' endpoints work on their own runtime.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;

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
