//! Handles that write inline (while the driver is idle) never strand another handle's frames.
#![allow(clippy::unwrap_used)]

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::executor::{block_on, LocalPool};
use futures::io::{AsyncRead, AsyncWrite};
use futures::task::LocalSpawnExt;

use wsmux::server::ServerConfig;
use wsmux::{Config, OpenOptions, Session};

type Hook = Arc<Mutex<Option<Box<dyn FnOnce() + Send>>>>;

/// Runs `hook` (once) inside the first poll_flush after it is armed: the moment a writer has
/// taken its last frame from proto but not yet re-parked the driver's waker.
struct HookIo<S> {
    inner: S,
    hook: Hook,
}

impl<S: AsyncRead + Unpin> AsyncRead for HookIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, b)
    }
}
impl<S: AsyncWrite + Unpin> AsyncWrite for HookIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, b)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let hook = self.hook.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

fn settled_pair(pool: &mut LocalPool, hook: Hook) -> (Session, Session) {
    let spawner = pool.spawner();
    let (client, server) = pool.run_until(async move {
        let listener = async_std::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = async {
            let (tcp, _) = listener.accept().await.unwrap();
            wsmux::server::accept(tcp, &ServerConfig::default()).await.unwrap()
        };
        let connect = async {
            let tcp = async_std::net::TcpStream::connect(addr).await.unwrap();
            let tcp = HookIo { inner: tcp, hook };
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
    pool.run_until(client.ping()).unwrap();
    pool.run_until_stalled();
    (client, server)
}

/// Handle B queues a frame while handle A's inline write is between its last look at proto
/// and re-parking the driver's waker (here: inside A's flush; on a multi-threaded runtime:
/// another thread at that moment). B finds `inner.driver` empty, so nobody is told; A's
/// write_inline returns "done" and does not wake the driver either.
#[test]
fn a_frame_queued_during_an_inline_flush_is_not_stranded() {
    let hook: Hook = Arc::new(Mutex::new(None));
    let mut pool = LocalPool::new();
    let (client, server) = settled_pair(&mut pool, hook.clone());
    let mut a = client.try_open(OpenOptions::new("a")).unwrap();
    let b = client.try_open(OpenOptions::new("b")).unwrap();
    // Driver polls again (resets wrote_inline), OPENs delivered.
    pool.run_until(client.ping()).unwrap();
    pool.run_until_stalled();

    let b = Arc::new(Mutex::new(Some(b)));
    let b2 = b.clone();
    *hook.lock().unwrap() = Some(Box::new(move || {
        // Another thread, at exactly this moment.
        std::thread::spawn(move || {
            let mut guard = b2.lock().unwrap();
            guard.as_mut().unwrap().start_send(Bytes::from_static(b"from b")).unwrap();
        })
        .join()
        .unwrap();
    }));
    // The pool is not run: A writes inline.
    block_on(a.send(Bytes::from_static(b"from a"))).unwrap();
    assert!(hook.lock().unwrap().is_none(), "hook ran");

    let got = pool.run_until(async {
        let recv = async {
            let mut x = server.accept().await.unwrap().accept();
            let mut y = server.accept().await.unwrap().accept();
            let m1 = x.recv().await.unwrap().unwrap();
            let m2 = y.recv().await.unwrap().unwrap();
            (m1, m2)
        };
        let timeout = futures_timer::Delay::new(Duration::from_secs(2));
        futures::pin_mut!(recv);
        match futures::future::select(recv, timeout).await {
            futures::future::Either::Left((v, _)) => Some(v),
            futures::future::Either::Right(_) => None,
        }
    });
    let (m1, m2) = got.expect("B's message never left: the driver was not woken");
    assert_eq!(&m1[..], b"from a");
    assert_eq!(&m2[..], b"from b");
    drop(b);
}
