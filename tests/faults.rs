//! Misbehaving transports: the session ends with an error and the driver finishes; nothing
//! hangs or spins.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;

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
