//! The runtimes the bench runs on, behind one trait so every case is written once.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::OnceLock;

use futures::io::{AsyncRead, AsyncWrite};

/// A runtime with TCP: what every system in the bench is built on.
pub(crate) trait Net: Send + Sync + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    type Listener: Send + Sync + 'static;
    const NAME: &'static str;
    /// `wsmux::Config::caller_reads` as its default is when this is the runtime the features
    /// select (the bench is built with both).
    const CALLER_READS: bool;
    fn block_on<F: Future>(f: F) -> F::Output;
    fn spawn<F: Future<Output = ()> + Send + 'static>(f: F);
    fn bind() -> impl Future<Output = Self::Listener> + Send;
    fn local_addr(l: &Self::Listener) -> SocketAddr;
    fn accept(l: &Self::Listener) -> impl Future<Output = Self::Stream> + Send;
    fn connect(addr: SocketAddr) -> impl Future<Output = Self::Stream> + Send;
}

pub(crate) struct AsyncStd;

impl Net for AsyncStd {
    type Stream = async_std::net::TcpStream;
    type Listener = async_std::net::TcpListener;
    const NAME: &'static str = "async-std";
    const CALLER_READS: bool = true;

    fn block_on<F: Future>(f: F) -> F::Output {
        async_std::task::block_on(f)
    }
    fn spawn<F: Future<Output = ()> + Send + 'static>(f: F) {
        async_std::task::spawn(f);
    }
    async fn bind() -> Self::Listener {
        async_std::net::TcpListener::bind("127.0.0.1:0").await.expect("bind")
    }
    fn local_addr(l: &Self::Listener) -> SocketAddr {
        l.local_addr().expect("local addr")
    }
    async fn accept(l: &Self::Listener) -> Self::Stream {
        let (s, _) = l.accept().await.expect("accept");
        s.set_nodelay(true).expect("nodelay");
        s
    }
    async fn connect(addr: SocketAddr) -> Self::Stream {
        let s = async_std::net::TcpStream::connect(addr).await.expect("connect");
        s.set_nodelay(true).expect("nodelay");
        s
    }
}

pub(crate) struct Tokio;

/// Whether the tokio runtime should be single-threaded (`WSMUX_BENCH_CURRENT_THREAD=1`), to
/// see what cross-thread hand-offs cost.
fn current_thread() -> bool {
    std::env::var("WSMUX_BENCH_CURRENT_THREAD").is_ok_and(|v| v == "1")
}

fn tokio_runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        let mut builder = if current_thread() {
            tokio::runtime::Builder::new_current_thread()
        } else {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(2);
            b
        };
        builder.enable_all().build().expect("tokio runtime")
    })
}

impl Net for Tokio {
    type Stream = tokio_util::compat::Compat<tokio::net::TcpStream>;
    type Listener = tokio::net::TcpListener;
    const NAME: &'static str = "tokio";
    const CALLER_READS: bool = false;

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio_runtime().block_on(f)
    }
    fn spawn<F: Future<Output = ()> + Send + 'static>(f: F) {
        tokio_runtime().spawn(f);
    }
    async fn bind() -> Self::Listener {
        tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind")
    }
    fn local_addr(l: &Self::Listener) -> SocketAddr {
        l.local_addr().expect("local addr")
    }
    async fn accept(l: &Self::Listener) -> Self::Stream {
        use tokio_util::compat::TokioAsyncReadCompatExt;
        let (s, _) = l.accept().await.expect("accept");
        s.set_nodelay(true).expect("nodelay");
        s.compat()
    }
    async fn connect(addr: SocketAddr) -> Self::Stream {
        use tokio_util::compat::TokioAsyncReadCompatExt;
        let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.set_nodelay(true).expect("nodelay");
        s.compat()
    }
}
