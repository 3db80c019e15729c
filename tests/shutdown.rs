//! Graceful server shutdown: the listener stops, every session gets GOAWAY, channels in flight
//! finish within the drain deadline, then every WebSocket closes and `shutdown` returns.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;

use common::*;
use wsmux::server::{Server, ServerConfig};
use wsmux::{ChannelError, Error, OpenError, Session};

#[test]
fn shutdown_lets_channels_in_flight_finish_then_closes_every_session() {
    run(async {
        let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await.unwrap();
        let addr = server.local_addr();
        let mut clients = Vec::new();
        let mut in_flight = Vec::new();
        let mut served = Vec::new();
        // The application keeps its session handles: shutdown does not need them.
        let mut sessions = Vec::new();
        for _ in 0..2 {
            // One client at a time, its server side accepted before the next connects: each
            // upgrade is served by a task of its own, so two clients' sessions may come out of
            // `accept` in either order.
            let client = client_of(&server).await;
            in_flight.push(client.open("upload").await.unwrap());
            let session = server.accept().await.unwrap();
            served.push(session.accept().await.unwrap().accept());
            sessions.push(session);
            clients.push(client);
        }

        let shutdown = async_std::task::spawn(async move {
            server.shutdown(Duration::from_secs(30)).await;
            server
        });
        // Every client hears GOAWAY: nothing new may be opened...
        for client in &clients {
            loop {
                match client.open("late").await {
                    Err(Error::Open(OpenError::GoingAway | OpenError::Session(_))) => break,
                    Err(e) => panic!("unexpected {e:?}"),
                    // The GOAWAY may still be on its way; what opened before it is refused.
                    Ok(mut ch) => assert!(ch.recv().await.is_err()),
                }
            }
        }
        // ...but the channels already open go on, both ways, to a clean end.
        for (client_end, server_end) in in_flight.iter_mut().zip(&mut served) {
            let data = Bytes::from(pattern(7, 100_000));
            client_end.send(data.clone()).await.unwrap();
            client_end.finish().await.unwrap();
            assert_eq!(server_end.recv().await.unwrap().unwrap(), data);
            assert_eq!(server_end.recv().await.unwrap(), None);
            server_end.send(Bytes::from_static(b"stored")).await.unwrap();
            server_end.finish().await.unwrap();
            assert_eq!(client_end.recv().await.unwrap().unwrap(), "stored");
            assert_eq!(client_end.recv().await.unwrap(), None);
        }
        drop((in_flight, served));
        // The drain completes, every session ends cleanly, and shutdown returns.
        for client in &clients {
            assert_eq!(client.closed().await, None);
        }
        let server = shutdown.await;
        assert_eq!(server.session_count(), 0);
        assert!(sessions.iter().all(Session::is_closed));
        assert!(server.accept().await.is_none(), "accept ends after a shutdown");
        // The port was released before `shutdown` returned.
        assert!(async_std::net::TcpStream::connect(addr).await.is_err(), "the port still listens");
    });
}

#[test]
fn shutdown_fails_what_is_still_open_at_the_drain_deadline() {
    run(async {
        let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await.unwrap();
        let client = client_of(&server).await;
        let mut stuck = client.open("stuck").await.unwrap();
        let session = server.accept().await.unwrap();
        let mut held = session.accept().await.unwrap().accept();

        // Nobody finishes the channel: the drain deadline cuts it, and shutdown still returns.
        server.shutdown(Duration::from_millis(200)).await;
        assert_eq!(server.session_count(), 0);
        assert!(matches!(held.recv().await, Err(Error::Channel(ChannelError::Session(_)))));
        // The client's end fails too: an error, never a clean end of stream.
        assert!(stuck.recv().await.is_err());
        assert!(client.is_closed());
    });
}

#[test]
fn shutdown_of_an_idle_server_returns_at_once() {
    run(async {
        let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await.unwrap();
        let client = client_of(&server).await;
        let _session = server.accept().await.unwrap();
        // Nothing to drain: no waiting for the 30 s drain deadline.
        let shutdown = server.shutdown(Duration::from_secs(30));
        async_std::future::timeout(Duration::from_secs(5), shutdown).await.expect("at once");
        assert_eq!(client.closed().await, None, "a clean end for a session with no channels");
    });
}
