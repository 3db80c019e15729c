//! A raw WebSocket peer that sends and checks exact frames against a wsmux client.
#![allow(clippy::unwrap_used, clippy::result_large_err)]

mod common;

use std::collections::VecDeque;

use async_tungstenite::tungstenite::Message;
use async_tungstenite::WebSocketStream;
use bytes::Bytes;
use futures::StreamExt;

use common::*;
use wsmux::proto::frame::{Data, Open};
use wsmux::proto::{ErrorCode, Frame, Settings};
use wsmux::{OpenOptions, SessionError};

/// The next wsmux frame the client sends (WebSocket control messages skipped): from `pending`,
/// the rest of a PACK already read, or from the next message.
async fn next_frame(
    ws: &mut WebSocketStream<async_std::net::TcpStream>,
    pending: &mut VecDeque<Frame>,
) -> Frame {
    loop {
        if let Some(frame) = pending.pop_front() {
            return frame;
        }
        match ws.next().await.unwrap().unwrap() {
            Message::Binary(b) => pending.extend(frames_in(b)),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A raw peer that sent its SETTINGS, its client, and a channel the client opened with
/// `options` whose OPEN the peer has read (a peer can only answer a channel it has seen).
async fn opened(
    options: OpenOptions,
) -> (WebSocketStream<async_std::net::TcpStream>, wsmux::Session, wsmux::Channel) {
    let (mut ws, client) = raw_server_and_client().await;
    ws.send(Message::Binary(Frame::Settings(Settings::DEFAULT).to_bytes())).await.unwrap();
    let ch = client.open_with(options).await.unwrap();
    let mut pending = VecDeque::new();
    while !matches!(next_frame(&mut ws, &mut pending).await, Frame::Open(_)) {}
    (ws, client, ch)
}

#[test]
fn open_with_a_message_and_fin_is_one_websocket_message() {
    run(async {
        let (mut ws, client) = raw_server_and_client().await;
        let mut pending = VecDeque::new();
        assert!(matches!(next_frame(&mut ws, &mut pending).await, Frame::Settings(_)));
        let ping = next_frame(&mut ws, &mut pending).await;
        assert!(matches!(ping, Frame::Ping { ack: false, .. }));
        let options = OpenOptions::new("kv.get").metadata("m").message("key").finish();
        let _ch = client.open_with(options).await.unwrap();
        let frame = next_frame(&mut ws, &mut pending).await;
        assert_eq!(
            frame,
            Frame::Open(Open {
                id: wsmux::ChannelId(1),
                route: "kv.get".into(),
                metadata: Bytes::from_static(b"m"),
                eom: true,
                fin: true,
                payload: Bytes::from_static(b"key"),
            })
        );
    });
}

#[test]
fn the_reply_to_a_request_arrives_as_one_message() {
    run(async {
        let (mut ws, _client, mut ch) = opened(OpenOptions::new("r").message("q").finish()).await;
        // Answer with data + EOM + FIN in ONE frame.
        let reply = Frame::Data(Data {
            id: wsmux::ChannelId(1),
            eom: true,
            fin: true,
            payload: Bytes::from_static(b"answer"),
        });
        ws.send(Message::Binary(reply.to_bytes())).await.unwrap();
        assert_eq!(ch.recv().await.unwrap().unwrap(), "answer");
        assert_eq!(ch.recv().await.unwrap(), None);
    });
}

#[test]
fn a_text_message_ends_the_session_with_protocol_and_close_1002() {
    run(async {
        let (mut ws, client) = raw_server_and_client().await;
        ws.send(Message::Binary(Frame::Settings(Settings::DEFAULT).to_bytes())).await.unwrap();
        ws.send(Message::Text("hello".into())).await.unwrap();
        match client.closed().await {
            Some(SessionError::PeerViolation { code, .. }) => assert_eq!(code, ErrorCode::PROTOCOL),
            other => panic!("expected a protocol violation, got {other:?}"),
        }
        // The peer sees GOAWAY(PROTOCOL), then the WebSocket close with 1002.
        let mut saw_goaway = false;
        while let Some(Ok(msg)) = ws.next().await {
            match msg {
                Message::Binary(b) => {
                    for frame in frames_in(b) {
                        if let Frame::GoAway { code, .. } = frame {
                            assert_eq!(code, ErrorCode::PROTOCOL);
                            saw_goaway = true;
                        }
                    }
                }
                Message::Close(Some(frame)) => {
                    assert_eq!(u16::from(frame.code), 1002);
                    break;
                }
                _ => {}
            }
        }
        assert!(saw_goaway);
    });
}

#[test]
fn a_websocket_ping_is_answered_with_its_payload_and_never_reaches_a_channel() {
    run(async {
        let (mut ws, client, mut ch) = opened(OpenOptions::new("r").message("q")).await;
        // The Ping's payload is a valid wsmux frame for the open channel: had it reached
        // wsmux, the channel would read "leaked".
        let leak = Frame::Data(Data {
            id: wsmux::ChannelId(1),
            eom: true,
            fin: false,
            payload: Bytes::from_static(b"leaked"),
        })
        .to_bytes();
        ws.send(Message::Ping(leak.clone())).await.unwrap();
        loop {
            match ws.next().await.unwrap().unwrap() {
                Message::Pong(payload) => {
                    assert_eq!(payload, leak);
                    break;
                }
                Message::Binary(_) => {} // the client's keepalive PING, say
                other => panic!("unexpected {other:?}"),
            }
        }
        let reply = Frame::Data(Data {
            id: wsmux::ChannelId(1),
            eom: true,
            fin: true,
            payload: Bytes::from_static(b"answer"),
        });
        ws.send(Message::Binary(reply.to_bytes())).await.unwrap();
        assert_eq!(ch.recv().await.unwrap().unwrap(), "answer");
        assert_eq!(ch.recv().await.unwrap(), None);
        // wsmux received SETTINGS and the reply, nothing else; the session goes on.
        assert_eq!(client.stats().frames_received, 2);
        assert!(!client.is_closed());
    });
}

#[test]
fn a_drain_that_ends_with_a_later_write_batch_closes_at_once() {
    // The last FIN of a draining session leaves in a later write batch than the first (more
    // than 16 KiB were ready): the driver must see the session end there and close the
    // WebSocket, not wait for the drain deadline (10 s by default).
    run(async {
        let (mut ws, client, mut ch) = opened(OpenOptions::new("bulk")).await;
        // The peer finishes its side first.
        let fin = Frame::Data(Data { id: ch.id(), eom: false, fin: true, payload: Bytes::new() });
        ws.send(Message::Binary(fin.to_bytes())).await.unwrap();
        assert_eq!(ch.recv().await.unwrap(), None);
        // 48 KiB (within the spec's default window: three full frames, three write batches),
        // a graceful close, and FIN last: the drain ends when the FIN leaves.
        ch.send(Bytes::from(vec![7u8; 48 * 1024])).await.unwrap();
        client.close(ErrorCode::NO_ERROR, "done");
        ch.finish().await.unwrap();
        let started = std::time::Instant::now();
        let (mut data, mut fin_seen) = (0, false);
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => {
                    for frame in frames_in(b) {
                        if let Frame::Data(d) = frame.clone() {
                            if d.id == ch.id() {
                                data += d.payload.len();
                                fin_seen |= d.fin;
                            }
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            }
        }
        assert!(fin_seen && data == 48 * 1024, "{data} bytes, FIN {fin_seen}");
        let waited = started.elapsed();
        assert!(waited < std::time::Duration::from_secs(3), "closed after {waited:?}");
    });
}
