//! Write coalescing: the driver writes every ready frame and flushes once, not once per frame;
//! a handle that sends while the driver is idle writes at once, at most once per driver poll.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::executor::block_on;
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;

use common::TestIo;
use wsmux::server::ServerConfig;
use wsmux::{Config, OpenOptions, Session};

/// A client and a server session whose drivers run in `pool` (one thread: nothing runs between
/// our commands unless we run the pool), settled, with the client's flush counter.
fn settled_pair(pool: &mut LocalPool) -> (Session, Session, Arc<AtomicUsize>) {
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
    (client, server, flushes)
}

#[test]
fn frames_ready_together_leave_with_one_flush() {
    let mut pool = LocalPool::new();
    let (client, server, flushes) = settled_pair(&mut pool);
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

#[test]
fn a_message_sent_while_the_driver_is_idle_leaves_at_once_and_the_next_ones_are_batched() {
    let mut pool = LocalPool::new();
    let (client, server, flushes) = settled_pair(&mut pool);
    let mut ch = client.try_open(OpenOptions::new("echo")).unwrap();
    // The OPEN was the handle's write since the driver's last poll; a round trip has the
    // driver poll again (as any frame from the peer does).
    pool.run_until(client.ping()).unwrap();
    pool.run_until_stalled();
    let before = flushes.load(Ordering::SeqCst);

    // The pool is not run: only the sending handle can write.
    block_on(ch.send(Bytes::from_static(b"one"))).unwrap();
    assert_eq!(flushes.load(Ordering::SeqCst), before + 1, "the first message left at once");
    block_on(ch.send(Bytes::from_static(b"two"))).unwrap();
    block_on(ch.send(Bytes::from_static(b"three"))).unwrap();
    assert_eq!(flushes.load(Ordering::SeqCst), before + 1, "the next ones wait for the driver");
    pool.run_until_stalled();
    assert_eq!(flushes.load(Ordering::SeqCst), before + 2, "the driver flushed them together");

    let got = pool.run_until(async {
        let mut ch = server.accept().await.unwrap().accept();
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(ch.recv().await.unwrap().unwrap());
        }
        got
    });
    assert_eq!(got, [&b"one"[..], b"two", b"three"]);
}
