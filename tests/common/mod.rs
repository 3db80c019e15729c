//! Loopback helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::io::{AsyncRead, AsyncWrite};

use wsmux::server::{Server, ServerConfig};
use wsmux::{Config, Error, Session};

pub mod faulty;

/// Every test body runs under this limit so a bug shows up as a failure, never a hang.
pub const LIMIT: Duration = Duration::from_secs(60);

pub fn run<F: Future<Output = ()>>(f: F) {
    async_std::task::block_on(async {
        async_std::future::timeout(LIMIT, Box::pin(f)).await.expect("test timed out");
    });
}

/// A client and a server session over one loopback WebSocket.
pub async fn pair() -> (Session, Session) {
    pair_with(Config::default(), ServerConfig::default()).await
}

pub async fn pair_with(client: Config, server: ServerConfig) -> (Session, Session) {
    let listener = Server::bind("127.0.0.1:0", server).await.expect("bind");
    let url = format!("ws://{}/mux", listener.local_addr());
    let (client_session, driver) = wsmux::client::connect(&url, client).await.expect("connect");
    wsmux::spawn(driver);
    let server_session = listener.accept().await.expect("accept");
    (client_session, server_session)
}

/// A well-behaved client of `server`, whose server side echoes (`interop::serve`): the
/// bystander a test checks with [`assert_echoes`] while or after other peers misbehave.
pub async fn bystander(server: &Server) -> Session {
    let client = client_of(server).await;
    async_std::task::spawn(wsmux::interop::serve(server.accept().await.expect("accept")));
    client
}

/// A client session connected to `server`, its driver running (the server side is left for
/// the test to accept).
pub async fn client_of(server: &Server) -> Session {
    let url = format!("ws://{}/mux", server.local_addr());
    let (client, driver) = wsmux::client::connect(&url, Config::default()).await.expect("connect");
    wsmux::spawn(driver);
    client
}

/// Asserts that `session`'s peer echoes a message on a new channel.
pub async fn assert_echoes(session: &Session) {
    let mut ch = session.open("echo").await.expect("open");
    ch.send(bytes::Bytes::from_static(b"still here")).await.expect("send");
    assert_eq!(ch.recv().await.expect("recv").as_deref(), Some(&b"still here"[..]));
}

/// A client and a server session over two transports already joined to each other (a
/// [`faulty::duplex`] pipe, say), with their drivers running as tasks.
pub async fn pair_over<C, S>(
    client_io: C,
    server_io: S,
    client: Config,
    server: ServerConfig,
) -> (Session, Session, Drivers)
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Boxed: two handshakes side by side make a large future, and debug builds copy it on the
    // test thread's stack.
    let (c, s) = futures::join!(
        Box::pin(wsmux::client::connect_on(client_io, "ws://wsmux.test/mux", client)),
        Box::pin(wsmux::server::accept(server_io, &server)),
    );
    let (client_session, client_driver) = c.expect("client handshake");
    let (server_session, server_driver) = s.expect("server handshake");
    let drivers = Drivers {
        client: async_std::task::spawn(client_driver),
        server: async_std::task::spawn(server_driver),
    };
    (client_session, server_session, drivers)
}

/// The driver tasks of a [`pair_over`].
pub struct Drivers {
    pub client: async_std::task::JoinHandle<Result<(), Error>>,
    pub server: async_std::task::JoinHandle<Result<(), Error>>,
}

/// A raw WebSocket server (it selects `wsmux.v1`, then speaks frames the test writes) and a
/// wsmux client session connected to it, its driver running.
#[allow(clippy::result_large_err)] // tungstenite's handshake callback signature
pub async fn raw_server_and_client(
) -> (async_tungstenite::WebSocketStream<async_std::net::TcpStream>, Session) {
    use async_tungstenite::tungstenite::handshake::server::{Request, Response};
    let listener = async_std::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/mux", listener.local_addr().expect("address"));
    let accept = async {
        let (tcp, _) = listener.accept().await.expect("accept");
        async_tungstenite::accept_hdr_async(tcp, |_: &Request, mut resp: Response| {
            let protocol =
                async_tungstenite::tungstenite::http::HeaderValue::from_static("wsmux.v1");
            resp.headers_mut().insert("Sec-WebSocket-Protocol", protocol);
            Ok(resp)
        })
        .await
        .expect("upgrade")
    };
    let connect = async {
        let (session, driver) =
            wsmux::client::connect(&url, Config::default()).await.expect("connect");
        wsmux::spawn(driver);
        session
    };
    futures::join!(accept, connect)
}

/// A pair whose client driver runs as a task the test can cancel: cancelling it drops the
/// TCP connection at once, with no GOAWAY and no close handshake.
pub async fn pair_with_killable_client(
) -> (Session, Session, async_std::task::JoinHandle<Result<(), wsmux::Error>>) {
    let listener = Server::bind("127.0.0.1:0", ServerConfig::default()).await.expect("bind");
    let url = format!("ws://{}/mux", listener.local_addr());
    let (client, driver) = wsmux::client::connect(&url, Config::default()).await.expect("connect");
    let driver = async_std::task::spawn(driver);
    let server = listener.accept().await.expect("accept");
    (client, server, driver)
}

/// A fast, deterministic checksum (FNV-1a 64).
pub fn checksum(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Deterministic pseudo-random bytes for channel `seed`.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Code to run once, inside a transport's next flush (see [`TestIo::flush_hook`]).
pub type FlushHook = Arc<Mutex<Option<Box<dyn FnOnce() + Send>>>>;

/// A transport for fault and behaviour tests: counts flushes, runs `flush_hook` (once, when
/// armed) at the start of a flush, and fails every write with `BrokenPipe` once
/// `write_budget` bytes have been written (if set).
pub struct TestIo<S> {
    pub inner: S,
    pub flushes: Arc<AtomicUsize>,
    pub flush_hook: FlushHook,
    pub write_budget: Option<usize>,
}

impl<S> TestIo<S> {
    pub fn new(inner: S) -> Self {
        TestIo {
            inner,
            flushes: Arc::new(AtomicUsize::new(0)),
            flush_hook: FlushHook::default(),
            write_budget: None,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TestIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TestIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let n = match self.write_budget {
            Some(0) => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            Some(left) => buf.len().min(left),
            None => buf.len(),
        };
        let written = futures::ready!(Pin::new(&mut self.inner).poll_write(cx, &buf[..n]))?;
        if let Some(left) = &mut self.write_budget {
            *left -= written;
        }
        Poll::Ready(Ok(written))
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        let hook = self.flush_hook.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(hook) = hook {
            hook();
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// The wsmux frames of one WebSocket message: the message itself, or the frames of its PACK.
pub fn frames_in(msg: bytes::Bytes) -> Vec<wsmux::proto::Frame> {
    wsmux::proto::frame::frames_of(msg)
        .and_then(|frames| frames.collect::<Result<Vec<_>, _>>())
        .expect("the endpoint sends well-formed frames")
}
