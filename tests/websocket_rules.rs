//! B11: a peer that breaks RFC 6455 itself (reserved bits, an unmasked client frame, a
//! fragmented control frame, a text message that is not UTF-8) gets a PROTOCOL session error:
//! GOAWAY(PROTOCOL), then the WebSocket close 1002. B9: a message above the WebSocket limit is
//! refused by the WebSocket layer before it is buffered: GOAWAY(LIMIT), then the WebSocket close
//! 1009. The frames are written by hand over TCP; the server is the real one, and a
//! well-behaved session on it is untouched.
#![allow(clippy::unwrap_used)]

mod common;

use async_std::io::{ReadExt, WriteExt};
use async_std::net::TcpStream;
use bytes::Bytes;
use common::*;
use wsmux::proto::frame::Open;
use wsmux::proto::{ErrorCode, Frame, Settings};
use wsmux::server::{Server, ServerConfig};
use wsmux::{ChannelError, Error, SessionError};

/// Connects and upgrades by hand; returns the raw stream after the 101.
async fn upgraded(addr: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /mux HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: wsmux.v1\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    tcp
}

/// One client frame: `first` is the FIN/RSV/opcode byte; masked with a fixed key unless not.
fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mask_bit = if masked { 0x80 } else { 0 };
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(n as u8 | mask_bit),
        n if n <= 0xffff => {
            out.push(126 | mask_bit);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127 | mask_bit);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let key = [0x12, 0x34, 0x56, 0x78];
    if masked {
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// Reads server frames (unmasked, as RFC 6455 requires) until the close; returns the wsmux
/// GOAWAY code seen and the close code.
async fn until_close(tcp: &mut TcpStream) -> (Option<ErrorCode>, Option<u16>) {
    let mut goaway = None;
    loop {
        let mut h = [0u8; 2];
        if tcp.read_exact(&mut h).await.is_err() {
            return (goaway, None);
        }
        let len = match h[1] & 0x7f {
            126 => {
                let mut l = [0u8; 2];
                tcp.read_exact(&mut l).await.unwrap();
                usize::from(u16::from_be_bytes(l))
            }
            127 => panic!("a server frame this large is not expected here"),
            n => usize::from(n),
        };
        let mut payload = vec![0u8; len];
        tcp.read_exact(&mut payload).await.unwrap();
        match h[0] & 0x0f {
            0x2 => {
                let frames = wsmux::proto::frame::frames_of(Bytes::from(payload));
                for frame in frames.into_iter().flatten().flatten() {
                    if let Frame::GoAway { code, .. } = frame {
                        goaway = Some(code);
                    }
                }
            }
            0x8 => return (goaway, payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]))),
            _ => {}
        }
    }
}

#[test]
fn websocket_rule_breaks_end_the_session_with_protocol_and_close_1002() {
    run(async {
        let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await.unwrap();
        let addr = server.local_addr().to_string();
        let good = bystander(&server).await;
        let settings = Frame::Settings(Settings::DEFAULT).to_bytes();
        let cases: [(&str, Vec<u8>); 5] = [
            ("reserved bit RSV1 on a binary frame", frame(0xC2, &settings, true)),
            ("reserved bits RSV2+RSV3", frame(0xB2, &settings, true)),
            ("an unmasked client frame", frame(0x82, &settings, false)),
            ("a fragmented PING", frame(0x09, b"x", true)),
            ("a text message that is not UTF-8", frame(0x81, b"\xff\xfe", true)),
        ];
        for (case, bytes) in cases {
            let mut tcp = upgraded(&addr).await;
            let _session = server.accept().await.unwrap();
            tcp.write_all(&bytes).await.unwrap();
            let (goaway, close) = until_close(&mut tcp).await;
            assert_eq!(goaway, Some(ErrorCode::PROTOCOL), "{case}");
            assert_eq!(close, Some(1002), "{case}");
        }
        // The well-behaved session never noticed.
        assert_echoes(&good).await;
    });
}

#[test]
fn a_websocket_message_above_the_limit_ends_the_session_with_limit_and_close_1009() {
    run(async {
        let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await.unwrap();
        let addr = server.local_addr().to_string();
        let good = bystander(&server).await;
        let limit = wsmux::Config::default().protocol.max_ws_message();
        let settings = Frame::Settings(Settings::DEFAULT).to_bytes();
        let open = Frame::Open(Open {
            id: wsmux::ChannelId(1),
            route: "x".into(),
            metadata: Bytes::new(),
            eom: false,
            fin: false,
            payload: Bytes::new(),
        })
        .to_bytes();
        let half = limit / 2 + 1;
        let cases: [(&str, Vec<u8>); 2] = [
            ("one frame of limit + 1 bytes", frame(0x82, &vec![0; limit + 1], true)),
            (
                "two fragments of limit + 1 bytes in all, each within the limit",
                [frame(0x02, &vec![0; half], true), frame(0x80, &vec![0; limit + 1 - half], true)]
                    .concat(),
            ),
        ];
        for (case, bytes) in cases {
            let mut tcp = upgraded(&addr).await;
            let session = server.accept().await.unwrap();
            tcp.write_all(&frame(0x82, &settings, true)).await.unwrap();
            tcp.write_all(&frame(0x82, &open, true)).await.unwrap();
            let mut ch = session.accept().await.unwrap().accept();
            // The server may give up before it has read all of it.
            let _ = tcp.write_all(&bytes).await;
            let (goaway, close) = until_close(&mut tcp).await;
            assert_eq!(goaway, Some(ErrorCode::LIMIT), "{case}");
            assert_eq!(close, Some(1009), "{case}");
            let limit_error = |e: &SessionError| {
                matches!(e, SessionError::PeerViolation { code: ErrorCode::LIMIT, .. })
            };
            match session.closed().await {
                Some(e) if limit_error(&e) => {}
                other => panic!("{case}: expected a LIMIT session error, got {other:?}"),
            }
            match ch.recv().await {
                Err(Error::Channel(ChannelError::Session(e))) if limit_error(&e) => {}
                other => panic!("{case}: expected the channel to fail, got {other:?}"),
            }
        }
        // The well-behaved session never noticed.
        assert_echoes(&good).await;
    });
}
