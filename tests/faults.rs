//! Misbehaving transports: the session ends with an error and the driver finishes; nothing
//! hangs or spins.
#![allow(clippy::unwrap_used)]

mod common;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::io::{AsyncRead, AsyncWrite};

use common::*;
use wsmux::server::ServerConfig;
use wsmux::{ChannelError, Config, Error, SessionError};

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
        let mut tcp = TestIo::new(tcp);
        tcp.write_budget = Some(200_000);
        let url = format!("ws://{addr}/mux");
        let (client, driver) =
            wsmux::client::connect_on(tcp, &url, Config::default()).await.unwrap();
        let driver = async_std::task::spawn(driver);
        server.await;
        // Many channels at once, so many frames are waiting when the writes start failing.
        let mut senders = Vec::new();
        for _ in 0..32 {
            // The session may already have died under the first senders: that is the point.
            let mut ch = match client.open("discard").await {
                Ok(ch) => ch,
                Err(Error::Open(wsmux::OpenError::Session(SessionError::ConnectionLost(_)))) => {
                    break;
                }
                Err(e) => panic!("unexpected {e:?}"),
            };
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

/// A transport that never completes a read or a write (and never wakes anyone).
struct Stuck;

impl AsyncRead for Stuck {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Pending
    }
}

impl AsyncWrite for Stuck {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Pending
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Pending
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Pending
    }
}

#[test]
fn a_peer_that_never_reads_is_detected_and_the_driver_still_finishes() {
    run(async {
        let ws = async_tungstenite::WebSocketStream::from_raw_socket(
            Stuck,
            async_tungstenite::tungstenite::protocol::Role::Client,
            None,
        )
        .await;
        let mut config = Config::default();
        config.protocol.keepalive_interval = Some(Duration::from_millis(50));
        config.protocol.keepalive_timeout = Duration::from_millis(100);
        config.close_timeout = Duration::from_millis(100);
        let (session, driver) = wsmux::Session::client(ws, config);
        let driver = async_std::task::spawn(driver);
        // Keepalive notices the silent peer although nothing we write ever leaves...
        assert!(matches!(session.closed().await, Some(SessionError::KeepaliveTimeout(_))));
        // ...and the driver gives up on its last frames instead of waiting forever.
        assert!(matches!(driver.await, Err(Error::Session(SessionError::KeepaliveTimeout(_)))));
    });
}
