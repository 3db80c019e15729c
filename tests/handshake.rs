//! The HTTP upgrade: refusals get clear HTTP answers, fast, and create no session.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use async_std::io::{ReadExt, WriteExt};
use async_std::net::TcpStream;

use common::*;
use wsmux::server::{OriginPolicy, Server, ServerConfig};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn upgrade_request(addr: &str, extra: &str) -> String {
    format!(
        "GET /mux HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n{extra}\r\n"
    )
}

/// Sends `request` raw and returns the whole answer (the server closes after a refusal).
async fn exchange(server: &Server, request: &str) -> String {
    let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

async fn server_with(config: ServerConfig) -> (Server, String) {
    let server = Server::bind("127.0.0.1:0", config).await.unwrap();
    let addr = server.local_addr().to_string();
    (server, addr)
}

#[test]
fn a_plain_http_get_gets_an_error_response_not_a_hang() {
    run(async {
        let (server, addr) = server_with(ServerConfig::default()).await;
        let answer = exchange(&server, &format!("GET /mux HTTP/1.1\r\nHost: {addr}\r\n\r\n")).await;
        assert!(answer.starts_with("HTTP/1.1 426"), "{answer}");
        assert!(answer.contains("wsmux.v1"));
        assert_eq!(server.session_count(), 0);
    });
}

#[test]
fn a_client_that_does_not_offer_wsmux_v1_is_refused_with_400() {
    run(async {
        let (server, addr) = server_with(ServerConfig::default()).await;
        let answer =
            exchange(&server, &upgrade_request(&addr, "Sec-WebSocket-Protocol: chat\r\n")).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("wsmux.v1"));
        // The same through a real WebSocket client: the handshake fails with the status.
        let tcp = TcpStream::connect(server.local_addr()).await.unwrap();
        let url = format!("ws://{addr}/mux");
        let err = async_tungstenite::client_async(url.as_str(), tcp).await.unwrap_err();
        assert!(err.to_string().contains("400"), "{err}");
        assert_eq!(server.session_count(), 0);
    });
}

#[test]
fn a_foreign_origin_is_refused_with_403_and_an_allowed_one_upgrades() {
    run(async {
        let (server, addr) = server_with(ServerConfig::default()).await;
        let proto = "Sec-WebSocket-Protocol: wsmux.v1\r\n";
        let foreign = format!("{proto}Origin: https://evil.example\r\n");
        let answer = exchange(&server, &upgrade_request(&addr, &foreign)).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
        // Same host as the Host header: allowed.
        let same = format!("{proto}Origin: http://{addr}\r\n");
        let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
        tcp.write_all(upgrade_request(&addr, &same).as_bytes()).await.unwrap();
        let mut head = [0u8; 12];
        tcp.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 101");

        let mut config = ServerConfig::default();
        config.origins = OriginPolicy::AllowList(vec!["https://app.example".into()]);
        let (listed, addr) = server_with(config).await;
        let allowed = format!("{proto}Origin: https://app.example\r\n");
        let mut tcp = TcpStream::connect(listed.local_addr()).await.unwrap();
        tcp.write_all(upgrade_request(&addr, &allowed).as_bytes()).await.unwrap();
        tcp.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 101");
        let answer = exchange(&listed, &upgrade_request(&addr, &foreign)).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    });
}

#[test]
fn a_wrong_path_gets_404_and_a_huge_head_gets_431() {
    run(async {
        let (server, addr) = server_with(ServerConfig::default()).await;
        let other = upgrade_request(&addr, "Sec-WebSocket-Protocol: wsmux.v1\r\n")
            .replace("/mux", "/other");
        let answer = exchange(&server, &other).await;
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
        let huge = format!("X-Padding: {}\r\n", "a".repeat(20_000));
        let answer = exchange(&server, &upgrade_request(&addr, &huge)).await;
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    });
}

#[test]
fn a_silent_client_is_dropped_after_the_handshake_timeout() {
    run(async {
        let mut config = ServerConfig::default();
        config.session.handshake_timeout = Duration::from_millis(200);
        let (server, _) = server_with(config).await;
        let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
        tcp.write_all(b"GET /mux HTTP/1.1\r\n").await.unwrap(); // and then nothing
        let mut rest = Vec::new();
        // The server closes the connection; read_to_end returns instead of hanging.
        let _ = tcp.read_to_end(&mut rest).await;
        assert_eq!(server.session_count(), 0);
    });
}

#[test]
fn pending_handshakes_are_bounded() {
    run(async {
        let mut config = ServerConfig::default();
        config.max_pending_handshakes = 2;
        let (server, addr) = server_with(config).await;
        // Two silent connections take both slots...
        let mut idle = Vec::new();
        for _ in 0..2 {
            let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
            tcp.write_all(b"GET /mux HTTP/1.1\r\n").await.unwrap();
            idle.push(tcp);
        }
        // ...so the next is answered 503 at once (retry until the two are registered).
        loop {
            let answer =
                exchange(&server, &upgrade_request(&addr, "Sec-WebSocket-Protocol: wsmux.v1\r\n"))
                    .await;
            if answer.starts_with("HTTP/1.1 503") {
                break;
            }
            assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
        }
        drop(idle);
    });
}

#[test]
fn busy_refusals_are_bounded_too() {
    run(async {
        let mut config = ServerConfig::default();
        config.max_pending_handshakes = 1;
        config.max_sessions = 0; // every connection is refused as busy
        let (server, _addr) = server_with(config).await;
        // A silent client gets its 503, and the server lingers on it...
        let mut first = TcpStream::connect(server.local_addr()).await.unwrap();
        let mut head = [0u8; 12];
        first.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 503");
        // ...so the next one is closed without an answer instead of lingering too.
        let mut second = TcpStream::connect(server.local_addr()).await.unwrap();
        let mut answer = Vec::new();
        let _ = second.read_to_end(&mut answer).await;
        assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
        drop(first);
        // Once the first refusal is over, busy clients get their 503 again.
        loop {
            let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
            let mut answer = Vec::new();
            let _ = tcp.read_to_end(&mut answer).await;
            if answer.starts_with(b"HTTP/1.1 503") {
                break;
            }
        }
    });
}

#[test]
fn connect_reports_a_refused_upgrade() {
    run(async {
        let mut config = ServerConfig::default();
        config.path = Some("/elsewhere".into());
        let (server, addr) = server_with(config).await;
        let err = wsmux::client::connect(&format!("ws://{addr}/mux"), Default::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("404"), "{err}");
        assert_eq!(server.session_count(), 0);
    });
}
