//! Write coalescing: the driver writes every ready frame and flushes once, not once per frame.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;

use common::TestIo;
use wsmux::server::ServerConfig;
use wsmux::{Config, OpenOptions};

#[test]
fn frames_ready_together_leave_with_one_flush() {
    // One thread: nothing runs between our commands, so all frames are ready at once.
    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    let flushes = Arc::new(AtomicUsize::new(0));
    let counter = flushes.clone();
    let (client, server) = pool.run_until(async move {
        let listener = async_std::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = async {
            let (tcp, _) = listener.accept().await.unwrap();
            wsmux::server::accept(tcp, &ServerConfig::default()).await.unwrap()
        };
        let connect = async {
            let tcp = async_std::net::TcpStream::connect(addr).await.unwrap();
            let mut tcp = TestIo::new(tcp);
            tcp.flushes = counter;
            wsmux::client::connect_on(tcp, &format!("ws://{addr}/mux"), Config::default())
                .await
                .unwrap()
        };
        futures::join!(connect, accept)
    });
    let (client, client_driver) = client;
    let (server, server_driver) = server;
    spawner.spawn_local(async { client_driver.await.unwrap() }).unwrap();
    spawner
        .spawn_local(async {
            let _ = server_driver.await;
        })
        .unwrap();
    // A round trip proves the server's SETTINGS (its first frame) arrived: until then at most
    // 100 channels may be opened, the spec default.
    pool.run_until(client.ping()).unwrap();
    pool.run_until_stalled();
    let before = flushes.load(Ordering::SeqCst);

    // 200 requests, each an OPEN with a message and FIN: 200 frames ready at once.
    let channels: Vec<_> = (0..200)
        .map(|i| {
            let options =
                OpenOptions::new("echo").message(Bytes::from(format!("request {i}"))).finish();
            client.try_open(options).unwrap()
        })
        .collect();
    pool.run_until(async {
        for _ in 0..200 {
            let mut ch = server.accept().await.unwrap().accept();
            assert!(ch.recv().await.unwrap().is_some());
        }
    });
    let flushed = flushes.load(Ordering::SeqCst) - before;
    let frames = client.stats().frames_sent;
    assert!(frames >= 200, "{frames} frames");
    // A flush per frame would be 200; the write buffer may force a few more, not dozens.
    assert!(flushed <= 4, "{flushed} flushes for {frames} frames");
    drop(channels);
}
