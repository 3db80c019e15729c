//! Every session vector of `proto/vectors/sessions.json`, replayed by a raw WebSocket peer
//! over TCP against the real endpoints: a raw client against a wsmux `Server` for the
//! server-side cases, a raw server against `wsmux::client::connect` for the client-side ones.
//! The peer sends the vector's exact frames and checks exactly what comes back: the GOAWAY
//! code and the WebSocket close code of a session error, the RESETs of a channel error, or
//! nothing at all. Throughout, a well-behaved session on the same server keeps working.
//! The same raw client also sends a message just above the server's MAX_MESSAGE_SIZE.
#![allow(clippy::unwrap_used, clippy::result_large_err)]

mod common;

use std::time::Duration;

use async_std::net::TcpStream;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::WebSocketStream;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde_json::Value;

use common::*;
use wsmux::proto::frame::{Data, Open};
use wsmux::proto::{ChannelId, ErrorCode, Frame, Settings};
use wsmux::server::{Server, ServerConfig};
use wsmux::{ChannelError, Error};

type Ws = WebSocketStream<TcpStream>;

const MIB: usize = 1024 * 1024;

/// The session vectors for an endpoint with the default config: a vector with a `config` of
/// its own (a fixed session window) is run by proto's vector test, which sets it.
fn vectors() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/proto/vectors/sessions.json");
    let all: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all.into_iter().filter(|v| v.get("config").is_none()).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn code_named(name: &str) -> ErrorCode {
    ErrorCode::from_name(name).unwrap_or_else(|| panic!("no error code is named {name:?}"))
}

/// The WebSocket close code PROTOCOL.md gives a session error with `code`.
fn close_code_for(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::NO_ERROR => 1000,
        ErrorCode::PROTOCOL | ErrorCode::FLOW_CONTROL | ErrorCode::VERSION => 1002,
        ErrorCode::LIMIT => 1008,
        _ => 1011,
    }
}

/// A PING the peer sends after the vector's frames: its answer marks the end of what the
/// endpoint said about them (an endpoint handles its input in order).
const SENTINEL: [u8; 8] = *b"sentinel";

/// Sends the vector's frames, then checks the endpoint's answer against `expect`.
async fn replay(ws: &mut Ws, v: &Value) {
    let name = v["name"].as_str().unwrap();
    // All frames in one burst, as the vectors are fed to a session at one instant: budgets
    // that refill with time (resets: 100 a second) see them together.
    for hex in v["peer_frames"].as_array().unwrap() {
        let msg = Bytes::from(unhex(hex.as_str().unwrap()));
        ws.feed(Message::Binary(msg)).await.unwrap();
    }
    let expect = &v["expect"];
    let sentinel = Frame::Ping { ack: false, payload: SENTINEL };
    let session_error = expect["goaway"].as_str().map(code_named);
    // At most one answer to PINGs is pending at a time (the latest): with PINGs among the
    // vector's frames, the sentinel goes only once their answers are in.
    let want_acks = expect.get("ping_acks").and_then(Value::as_u64);
    if session_error.is_none() && want_acks.unwrap_or(0) == 0 {
        ws.feed(Message::Binary(sentinel.to_bytes())).await.unwrap();
    }
    ws.flush().await.unwrap();
    let (mut resets, mut acks, mut goaway, mut close) = (Vec::new(), 0, None, None);
    let mut saw_sentinel = false;
    let read = async {
        'read: while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Binary(b)) => {
                    for frame in frames_in(b) {
                        match frame {
                            Frame::Ping { ack: true, payload } if payload == SENTINEL => {
                                saw_sentinel = true;
                                break 'read;
                            }
                            Frame::Ping { ack: true, .. } => {
                                acks += 1;
                                if Some(acks) == want_acks {
                                    ws.send(Message::Binary(sentinel.to_bytes())).await.unwrap();
                                }
                            }
                            Frame::Reset { id, code, .. } => resets.push((id, code)),
                            Frame::GoAway { code, .. } => goaway = Some(code),
                            _ => {}
                        }
                    }
                }
                Ok(Message::Close(frame)) => {
                    close = frame.map(|f| u16::from(f.code));
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    };
    async_std::future::timeout(Duration::from_secs(10), read)
        .await
        .unwrap_or_else(|_| panic!("{name}: no answer within 10 s"));
    if let Some(code) = session_error {
        assert_eq!(goaway, Some(code), "{name}: GOAWAY");
        assert_eq!(close, Some(close_code_for(code)), "{name}: WebSocket close code");
    } else if let Some(reset) = expect.get("reset") {
        let want = (
            ChannelId(reset["id"].as_u64().unwrap() as u32),
            code_named(reset["code"].as_str().unwrap()),
        );
        assert!(resets.contains(&want), "{name}: no RESET {want:?} in {resets:?}");
        assert_eq!(goaway, None, "{name}: GOAWAY");
    } else {
        assert!(expect["ignored"].as_bool().unwrap(), "{name}: unknown expectation");
        assert!(resets.is_empty() && goaway.is_none(), "{name}: answered {resets:?} {goaway:?}");
    }
    if session_error.is_none() {
        // The session lived through the vector: it answered the sentinel and did not close.
        assert!(saw_sentinel, "{name}: no answer to the sentinel PING");
        assert_eq!(close, None, "{name}: WebSocket closed");
    }
    if let Some(n) = want_acks {
        assert_eq!(acks, n, "{name}: PING ACKs");
    }
}

/// A raw client that speaks WebSocket with subprotocol wsmux.v1 to `addr`.
async fn raw_client(addr: &str) -> Ws {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut request = format!("ws://{addr}/mux").into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", "wsmux.v1".parse().unwrap());
    async_tungstenite::client_async(request, tcp).await.unwrap().0
}

#[test]
fn every_server_side_session_vector_over_a_real_websocket() {
    run(async {
        // The vectors are fed to a session at one instant; over a socket time passes, and on a
        // loaded machine enough of it for the reset budgets to refill a little (100 a second)
        // and miss the vector's exact count. Budgets that do not refill keep the instant.
        let mut config = ServerConfig::default();
        let protocol = &mut config.session.protocol;
        protocol.remote_reset_budget.per_second = 0;
        protocol.local_reset_budget.per_second = 0;
        let server = Server::bind("127.0.0.1:0", config).await.unwrap();
        let addr = server.local_addr().to_string();
        // A well-behaved client on the same server, checked after every misbehaving one.
        let good = bystander(&server).await;
        let mut kept = Vec::new();
        let mut n = 0;
        for v in vectors().iter().filter(|v| v["side"] == "server") {
            let mut ws = raw_client(&addr).await;
            // The application holds the session and never accepts its channels, as in the
            // vectors.
            kept.push(server.accept().await.unwrap());
            replay(&mut ws, v).await;
            assert_echoes(&good).await;
            n += 1;
        }
        assert!(n >= 50, "only {n} server-side vectors");
    });
}

#[test]
fn every_client_side_session_vector_over_a_real_websocket() {
    run(async {
        let mut n = 0;
        for v in vectors().iter().filter(|v| v["side"] == "client") {
            let (mut ws, client) = raw_server_and_client().await;
            replay(&mut ws, v).await;
            drop(client);
            n += 1;
        }
        assert!(n >= 10, "only {n} client-side vectors");
    });
}

#[test]
fn a_message_above_max_message_size_resets_its_channel_with_limit_and_the_session_lives() {
    run(async {
        let mut config = ServerConfig::default();
        // The smallest MAX_MESSAGE_SIZE allowed, and a window that holds two such messages, so
        // the raw client needs no WINDOW to send them.
        config.session.protocol.max_message_size = MIB as u32;
        config.session.protocol.initial_window = 4 * MIB as u32;
        let server = Server::bind("127.0.0.1:0", config).await.unwrap();
        let addr = server.local_addr().to_string();
        let good = bystander(&server).await;

        let mut ws = raw_client(&addr).await;
        let session = server.accept().await.unwrap();
        ws.feed(Message::Binary(Frame::Settings(Settings::DEFAULT).to_bytes())).await.unwrap();
        let id = ChannelId(1);
        let open = Open {
            id,
            route: "big".into(),
            metadata: Bytes::new(),
            eom: false,
            fin: false,
            payload: Bytes::new(),
        };
        ws.feed(Message::Binary(Frame::Open(open).to_bytes())).await.unwrap();
        // A message of `len` bytes in DATA frames of at most 16 KiB.
        let message = |len: usize| {
            let data = Bytes::from(pattern(len as u64, len));
            let chunks: Vec<Bytes> = (0..len)
                .step_by(16 * 1024)
                .map(|at| data.slice(at..len.min(at + 16 * 1024)))
                .collect();
            let last = chunks.len() - 1;
            chunks.into_iter().enumerate().map(move |(i, payload)| {
                Message::Binary(
                    Frame::Data(Data { id, eom: i == last, fin: false, payload }).to_bytes(),
                )
            })
        };
        // Exactly MAX_MESSAGE_SIZE is delivered.
        for msg in message(MIB) {
            ws.feed(msg).await.unwrap();
        }
        ws.flush().await.unwrap();
        let mut big = session.accept().await.unwrap().accept();
        let first = big.recv().await.unwrap().unwrap();
        assert_eq!(first.len(), MIB);
        assert_eq!(checksum(&first), checksum(&pattern(MIB as u64, MIB)));
        // One byte more: the channel is reset with LIMIT, the session goes on.
        for msg in message(MIB + 1) {
            ws.feed(msg).await.unwrap();
        }
        let sentinel = Frame::Ping { ack: false, payload: SENTINEL };
        ws.feed(Message::Binary(sentinel.to_bytes())).await.unwrap();
        ws.flush().await.unwrap();
        let (mut resets, mut goaway) = (Vec::new(), None);
        'read: while let Some(msg) = ws.next().await {
            let Message::Binary(b) = msg.unwrap() else { continue };
            for frame in frames_in(b) {
                match frame {
                    Frame::Ping { ack: true, payload } if payload == SENTINEL => break 'read,
                    Frame::Reset { id, code, .. } => resets.push((id, code)),
                    Frame::GoAway { code, .. } => goaway = Some(code),
                    _ => {}
                }
            }
        }
        assert_eq!(resets, [(id, ErrorCode::LIMIT)]);
        assert_eq!(goaway, None);
        match big.recv().await {
            Err(Error::Channel(ChannelError::LocallyReset { code, .. })) => {
                assert_eq!(code, ErrorCode::LIMIT)
            }
            other => panic!("expected a local reset with LIMIT, got {other:?}"),
        }
        assert!(!session.is_closed());
        // A wsmux sender refuses such a message itself (the server announced 1 MiB).
        let mut ch = good.open("echo").await.unwrap();
        match ch.send(Bytes::from(vec![0u8; MIB + 1])).await.map_err(|e| e.error) {
            Err(Error::Channel(ChannelError::MessageTooLarge { size, max })) => {
                assert_eq!((size, max), (MIB + 1, MIB as u32))
            }
            other => panic!("expected MessageTooLarge, got {other:?}"),
        }
        ch.send(Bytes::from_static(b"still here")).await.unwrap();
        assert_eq!(ch.recv().await.unwrap().as_deref(), Some(&b"still here"[..]));
    });
}

/// PROTOCOL.md section 5 (issue 16e): a client that accepts 1 MiB sends `echo` a message of
/// 1 MiB + 1 byte and finishes. The echo cannot be sent back; the client must see the channel
/// reset with LIMIT, never a clean end with the message missing.
#[test]
fn an_echo_the_peer_cannot_accept_ends_in_a_reset_not_a_clean_end() {
    run(async {
        let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await.unwrap();
        let url = format!("ws://{}/mux", server.local_addr());
        let mut config = wsmux::Config::default();
        config.protocol.max_message_size = MIB as u32;
        let (client, driver) = wsmux::client::connect(&url, config).await.unwrap();
        wsmux::spawn(driver);
        async_std::task::spawn(wsmux::interop::serve(server.accept().await.unwrap()));
        // Once a PING is answered the server's SETTINGS are in: it accepts 16 MiB messages.
        client.ping().await.unwrap();
        let mut ch = client.open("echo").await.unwrap();
        // The reset may come while the message is still being sent, or after.
        let outcome = match ch.finish_with(Bytes::from(vec![1u8; MIB + 1])).await {
            Ok(()) => ch.recv().await,
            Err(e) => Err(e.error),
        };
        match outcome {
            Err(Error::Channel(ChannelError::Reset { code, .. })) => {
                assert_eq!(code, ErrorCode::LIMIT)
            }
            other => panic!("expected a reset with LIMIT, got {other:?}"),
        }
        // The same without the FIN: `echo` drops the channel while the client may still send,
        // and the reset still says LIMIT (not the CANCEL of an ordinary drop, section 9.2).
        let mut ch = client.open("echo").await.unwrap();
        let outcome = match ch.send(Bytes::from(vec![1u8; MIB + 1])).await {
            Ok(()) => ch.recv().await,
            Err(e) => Err(e.error),
        };
        match outcome {
            Err(Error::Channel(ChannelError::Reset { code, .. })) => {
                assert_eq!(code, ErrorCode::LIMIT)
            }
            other => panic!("without FIN: expected a reset with LIMIT, got {other:?}"),
        }
        // A message that fits still comes back, with a clean end.
        let mut ch = client.open("echo").await.unwrap();
        ch.finish_with(Bytes::from(vec![2u8; MIB])).await.unwrap();
        assert_eq!(ch.recv().await.unwrap().map(|m| m.len()), Some(MIB));
        assert_eq!(ch.recv().await.unwrap(), None);
    });
}

/// Every `interop` vector of `rpc.json`, on a new raw session each: the reference server's
/// `interop.*` methods answer the call messages, STATUS and FIN the vector lists.
#[test]
fn every_interop_rpc_vector_against_the_reference_server() {
    run(async {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/proto/vectors/rpc.json");
        let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await.unwrap();
        let addr = server.local_addr().to_string();
        let vectors = all["interop"].as_array().unwrap();
        assert!(vectors.len() >= 10, "the interop vectors are missing");
        for v in vectors {
            let name = v["name"].as_str().unwrap();
            let mut ws = raw_client(&addr).await;
            async_std::task::spawn(wsmux::interop::serve(server.accept().await.unwrap()));
            ws.feed(Message::Binary(Frame::Settings(Settings::default()).to_bytes()))
                .await
                .unwrap();
            for hex in v["requests"].as_array().unwrap() {
                ws.feed(Message::Binary(Bytes::from(unhex(hex.as_str().unwrap())))).await.unwrap();
            }
            ws.flush().await.unwrap();
            // The call's messages on channel 1 until its FIN, and its frames.
            let (mut messages, mut partial, mut frames) = (Vec::new(), Vec::new(), Vec::new());
            let read = async {
                while let Some(Ok(msg)) = ws.next().await {
                    let Message::Binary(b) = msg else { continue };
                    for frame in frames_in(b) {
                        let Frame::Data(Data { id: ChannelId(1), eom, fin, payload }) = &frame
                        else {
                            assert!(!matches!(frame, Frame::Reset { .. }), "{name}: {frame:?}");
                            continue;
                        };
                        partial.extend_from_slice(payload);
                        if *eom {
                            messages.push(std::mem::take(&mut partial));
                        }
                        frames.push(frame.to_bytes());
                        if *fin {
                            return;
                        }
                    }
                }
                panic!("{name}: the session ended before the call's FIN");
            };
            async_std::future::timeout(Duration::from_secs(10), read)
                .await
                .unwrap_or_else(|_| panic!("{name}: no FIN within 10 s"));
            let status = match v.get("status") {
                Some(code) => {
                    let last = messages.pop().unwrap_or_else(|| panic!("{name}: no STATUS"));
                    assert_eq!(last[0], 1, "{name}: the last message is not a STATUS");
                    let code = code.as_u64().unwrap() as u16;
                    assert_eq!(u16::from_be_bytes([last[1], last[2]]), code, "{name}: code");
                    if let Some(text) = v.get("status_text") {
                        assert_eq!(&last[3..], text.as_str().unwrap().as_bytes(), "{name}");
                    }
                    Some(code)
                }
                None => None,
            };
            let want: Vec<Vec<u8>> = v["answers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| unhex(h.as_str().unwrap()))
                .collect();
            assert_eq!(messages, want, "{name}: answers (status {status:?})");
            if let Some(frame) = v.get("answer_frame") {
                assert_eq!(frames, [unhex(frame.as_str().unwrap())], "{name}: frames");
            }
        }
    });
}
