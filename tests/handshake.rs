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
fn an_allow_list_entry_that_can_never_match_is_an_error_at_bind() {
    run(async {
        let mut config = ServerConfig::default();
        config.origins = OriginPolicy::AllowList(vec!["https://app.example/".into()]);
        let err = Server::bind("127.0.0.1:0", config).await.unwrap_err();
        assert!(matches!(err, wsmux::Error::Config(_)), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("https://app.example/") && text.contains("trailing slash"), "{text}");
    });
}

#[test]
fn forwarding_headers_are_believed_from_trusted_proxies_only() {
    run(async {
        let proto = "Sec-WebSocket-Protocol: wsmux.v1\r\n";
        // What nginx sends with `proxy_set_header X-Forwarded-Host $host;` and the default
        // `Host $proxy_host`: the Host is the upstream's, the browser's host is forwarded.
        let forwarded = format!(
            "{proto}Origin: https://app.example\r\nX-Forwarded-Host: app.example\r\n\
             X-Forwarded-Proto: https\r\n"
        );
        let (untrusting, addr) = server_with(ServerConfig::default()).await;
        let answer = exchange(&untrusting, &upgrade_request(&addr, &forwarded)).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
        assert!(answer.contains(&format!("sent to {addr}")), "{answer}");

        let mut config = ServerConfig::default();
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        let (trusting, addr) = server_with(config).await;
        let mut tcp = TcpStream::connect(trusting.local_addr()).await.unwrap();
        tcp.write_all(upgrade_request(&addr, &forwarded).as_bytes()).await.unwrap();
        let mut head = [0u8; 12];
        tcp.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 101");
        // A plain-http page does not pass for the https site the proxy serves.
        let http = forwarded.replace("Origin: https://", "Origin: http://");
        let answer = exchange(&trusting, &upgrade_request(&addr, &http)).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    });
}

#[test]
fn origin_null_is_refused_with_a_body_naming_the_setting() {
    run(async {
        let (server, addr) = server_with(ServerConfig::default()).await;
        let null = "Sec-WebSocket-Protocol: wsmux.v1\r\nOrigin: null\r\n";
        let answer = exchange(&server, &upgrade_request(&addr, null)).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
        assert!(answer.contains("ServerConfig::origins"), "{answer}");
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

/// Sends `request` in writes of `piece` bytes and returns the answer's status line.
async fn status_in_pieces(server: &Server, request: &str, piece: usize) -> String {
    let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    for part in request.as_bytes().chunks(piece) {
        tcp.write_all(part).await.unwrap();
        tcp.flush().await.unwrap();
    }
    let mut answer = Vec::new();
    // A 101 keeps the connection open: read up to the end of the status line only.
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n") && tcp.read(&mut byte).await.unwrap() == 1 {
        answer.push(byte[0]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn the_head_limit_holds_whatever_the_read_boundaries() {
    run(async {
        let mut config = ServerConfig::default();
        config.max_request_head = 16 * 1024;
        let (server, addr) = server_with(config).await;
        let base = upgrade_request(&addr, "Sec-WebSocket-Protocol: wsmux.v1\r\nX-Padding: \r\n");
        let sized = |len: usize| {
            let padding = "a".repeat(len - base.len());
            let request = base.replace("X-Padding: ", &format!("X-Padding: {padding}"));
            assert_eq!(request.len(), len);
            request
        };
        // At the limit: upgraded. One byte over it, or 17,200 bytes (the size that once went
        // through in one write and got 431 in 500-byte pieces): refused, for every split.
        for piece in [usize::MAX, 500, 1000, 4096, 7] {
            let at_limit = status_in_pieces(&server, &sized(16 * 1024), piece).await;
            assert!(at_limit.starts_with("HTTP/1.1 101"), "{piece}: {at_limit}");
            for len in [16 * 1024 + 1, 17_200] {
                let over = status_in_pieces(&server, &sized(len), piece).await;
                assert!(over.starts_with("HTTP/1.1 431"), "{len} in pieces of {piece}: {over}");
            }
        }
    });
}

#[test]
fn a_silent_client_is_dropped_after_the_handshake_timeout() {
    run(async {
        let mut config = ServerConfig::default();
        config.session.handshake_timeout = Duration::from_millis(200);
        let (server, _) = server_with(config).await;
        // Before the connection: the server's timer cannot start earlier.
        let started = std::time::Instant::now();
        let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
        tcp.write_all(b"GET /mux HTTP/1.1\r\n").await.unwrap(); // and then nothing
        let mut rest = Vec::new();
        // The server closes the connection; read_to_end returns instead of hanging.
        let _ = tcp.read_to_end(&mut rest).await;
        // Cut by the configured 200 ms: not before it, and not at the default 10 s (a loose
        // upper bound: no timing race).
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(200), "cut early, after {waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        assert!(rest.is_empty(), "no answer to a request that never ended");
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
        // ...so the next is answered 503 at once: a connection counts as pending from the
        // moment it is accepted, and the listener accepts in order.
        let answer =
            exchange(&server, &upgrade_request(&addr, "Sec-WebSocket-Protocol: wsmux.v1\r\n"))
                .await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
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

#[test]
fn a_wrong_websocket_version_gets_426_naming_version_13_and_no_session() {
    run(async {
        let (server, addr) = server_with(ServerConfig::default()).await;
        let request = upgrade_request(&addr, "Sec-WebSocket-Protocol: wsmux.v1\r\n")
            .replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 12");
        let answer = exchange(&server, &request).await;
        assert!(answer.starts_with("HTTP/1.1 426"), "{answer}");
        // RFC 6455 section 4.4: the answer names the version the server speaks.
        assert!(answer.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{answer}");
        assert_eq!(server.connections_accepted(), 1);
        assert_eq!(server.session_count(), 0);
        // The same request with version 13 upgrades: the version was the only defect.
        let good = upgrade_request(&addr, "Sec-WebSocket-Protocol: wsmux.v1\r\n");
        let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
        tcp.write_all(good.as_bytes()).await.unwrap();
        let mut head = [0u8; 12];
        tcp.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 101");
    });
}

/// A fake server that answers every upgrade with a valid 101 (the right
/// `Sec-WebSocket-Accept`) selecting `subprotocol`, or none; returns its `ws://` URL.
async fn fake_server_selecting(subprotocol: Option<&'static str>) -> String {
    let listener = async_std::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/mux", listener.local_addr().unwrap());
    async_std::task::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            tcp.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let key = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("sec-websocket-key").then(|| value.trim().to_owned())
            })
            .unwrap();
        let accept = async_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let protocol =
            subprotocol.map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n")).unwrap_or_default();
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n{protocol}\r\n"
        );
        tcp.write_all(answer.as_bytes()).await.unwrap();
        // Hold the connection until the client lets go of it.
        let mut rest = Vec::new();
        let _ = tcp.read_to_end(&mut rest).await;
    });
    url
}

// `client::connect` documents `Error::Handshake` when the server does not select wsmux.v1, but
// tungstenite's own check fires first and the error is `Error::WebSocket(Protocol(
// SecWebSocketSubProtocolError(NoSubProtocol | InvalidSubProtocol)))`: the connection is
// refused, as PROTOCOL.md section 2 requires, with the wrong variant.
#[test]
fn the_client_refuses_a_server_that_selects_no_subprotocol_or_another_one() {
    run(async {
        for selected in [None, Some("chat"), Some("wsmux.v2")] {
            let url = fake_server_selecting(selected).await;
            match wsmux::client::connect(&url, Default::default()).await {
                Err(wsmux::Error::Handshake(reason)) => {
                    assert!(reason.contains("wsmux.v1"), "{selected:?}: {reason}")
                }
                Err(other) => panic!("{selected:?}: expected Error::Handshake, got {other:?}"),
                Ok(_) => panic!("{selected:?}: the client accepted the server"),
            }
        }
    });
}

#[test]
fn a_client_dribbling_its_upgrade_a_byte_at_a_time_is_cut_and_others_still_connect() {
    run(async {
        let mut config = ServerConfig::default();
        config.session.handshake_timeout = Duration::from_millis(500);
        let (server, addr) = server_with(config).await;
        let request = upgrade_request(&addr, "Sec-WebSocket-Protocol: wsmux.v1\r\n");
        let tcp = TcpStream::connect(server.local_addr()).await.unwrap();
        let (mut reader, mut writer) = (tcp.clone(), tcp);
        // One byte every 20 ms: the whole request would take seconds. Once the server has cut
        // the connection, only the reader can end the race.
        let dribble = async move {
            for byte in request.bytes() {
                if writer.write_all(&[byte]).await.is_err() {
                    futures::future::pending::<()>().await;
                }
                async_std::task::sleep(Duration::from_millis(20)).await;
            }
        };
        let answer = async move {
            let mut answer = Vec::new();
            let _ = reader.read_to_end(&mut answer).await;
            answer
        };
        let slow = async_std::task::spawn(async move {
            futures::select! {
                () = futures::FutureExt::fuse(dribble) => None,
                answer = futures::FutureExt::fuse(answer) => Some(answer),
            }
        });
        // Meanwhile a well-behaved client connects and its session works.
        let good = bystander(&server).await;
        assert_echoes(&good).await;
        // The dribbler was dropped before its request was complete, without an upgrade.
        let answer = slow.await.unwrap_or_else(|| panic!("the whole request went through"));
        assert!(!answer.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&answer));
        assert_eq!(server.session_count(), 1, "only the well-behaved session");
    });
}
