//! Misbehaving transports: the session ends with an error and the driver finishes; nothing
//! hangs or spins.
#![allow(clippy::unwrap_used)]

mod common;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::io::{AsyncRead, AsyncWrite};

use common::*;
use wsmux::server::ServerConfig;
use wsmux::{ChannelError, Config, Error, SessionError};

/// A transport whose writes fail with `BrokenPipe` once `budget` bytes have been written.
struct FailingWrites<S> {
    inner: S,
    budget: usize,
}

impl<S: AsyncRead + Unpin> AsyncRead for FailingWrites<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FailingWrites<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.budget == 0 {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let n = buf.len().min(self.budget);
        let written = futures::ready!(Pin::new(&mut self.inner).poll_write(cx, &buf[..n]))?;
        self.budget -= written;
        Poll::Ready(Ok(written))
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[test]
fn a_transport_whose_writes_fail_ends_the_session_and_the_driver() {
    run(async {
        let listener = async_std::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = async_std::task::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let (session, driver) =
                wsmux::server::accept(tcp, &ServerConfig::default()).await.unwrap();
            async_std::task::spawn(driver);
            async_std::task::spawn(wsmux::interop::serve(session));
        });
        let tcp = async_std::net::TcpStream::connect(addr).await.unwrap();
        // Enough for the upgrade and a few frames, then every write fails.
        let tcp = FailingWrites { inner: tcp, budget: 200_000 };
        let url = format!("ws://{addr}/mux");
        let (client, driver) =
            wsmux::client::connect_on(tcp, &url, Config::default()).await.unwrap();
        let driver = async_std::task::spawn(driver);
        server.await;
        // Many channels at once, so many frames are waiting when the writes start failing.
        let mut senders = Vec::new();
        for _ in 0..32 {
            let mut ch = client.open("discard").await.unwrap();
            senders.push(async_std::task::spawn(async move {
                let block = Bytes::from(vec![7u8; 64 * 1024]);
                loop {
                    if let Err(e) = ch.send(block.clone()).await {
                        return e.error;
                    }
                }
            }));
        }
        for sender in senders {
            let err = sender.await;
            let lost = matches!(
                err,
                Error::Channel(ChannelError::Session(SessionError::ConnectionLost(_)))
            );
            assert!(lost, "{err:?}");
        }
        // The driver finishes with the error instead of waiting forever.
        assert!(matches!(driver.await, Err(Error::Session(SessionError::ConnectionLost(_)))));
        assert!(client.is_closed());
    });
}
