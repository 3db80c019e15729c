//! The wire vectors in `proto/vectors/` (normative examples of PROTOCOL.md) run against the
//! codec and the session state machine.
//!
//! - `frames.json`: bytes that decode to the frame described beside them, and (unless marked
//!   `"reencodes": false`) are exactly what encoding that frame produces;
//! - `invalid.json`: bytes that must not decode, with the decoder's error;
//! - `sessions.json`: frames from a peer that a session must answer with a GOAWAY, a RESET, or
//!   nothing at all;
//! - `rpc.json`: call headers and call messages of the RPC profile (PROTOCOL.md section 17).
//!
//! The same files are read by the JavaScript client's tests, so every field is plain JSON:
//! numbers, strings, and bytes as lowercase hex.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::fs;
use std::time::Instant;

use bytes::Bytes;
use serde_json::Value;
use wsmux_proto::frame::{self, Data, Open};
use wsmux_proto::rpc::{CallHeader, CallMessage, Code};
use wsmux_proto::{ChannelId, Config, DecodeError, ErrorCode, Frame, Session, Settings, Side};

fn load(file: &str) -> Vec<Value> {
    let path = format!("{}/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let value: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"));
    checked_list(value, &path)
}

/// One list of `rpc.json`.
fn load_rpc(list: &str) -> Vec<Value> {
    let path = format!("{}/vectors/rpc.json", env!("CARGO_MANIFEST_DIR"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let mut value: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"));
    checked_list(value[list].take(), &format!("{path} {list}"))
}

fn checked_list(value: Value, path: &str) -> Vec<Value> {
    let Value::Array(vectors) = value else { panic!("{path} is not a JSON array") };
    assert!(!vectors.is_empty(), "{path} has no vectors");
    let mut names = HashSet::new();
    for v in &vectors {
        assert!(names.insert(text_of(v, "name").to_owned()), "{path}: duplicate name in {v}");
    }
    vectors
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd-length hex {s:?}");
    let digit = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not lowercase hex: {s:?}"),
    };
    s.as_bytes().chunks_exact(2).map(|p| digit(p[0]) << 4 | digit(p[1])).collect()
}

fn text_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{key:?} is not a string in {v}"))
}

fn bytes_of(v: &Value, key: &str) -> Bytes {
    Bytes::from(unhex(text_of(v, key)))
}

fn u32_of(v: &Value, key: &str) -> u32 {
    let n = v[key].as_u64().unwrap_or_else(|| panic!("{key:?} is not a number in {v}"));
    u32::try_from(n).unwrap_or_else(|_| panic!("{key:?} does not fit in u32 in {v}"))
}

fn bool_of(v: &Value, key: &str) -> bool {
    v[key].as_bool().unwrap_or_else(|| panic!("{key:?} is not a boolean in {v}"))
}

fn id_of(v: &Value, key: &str) -> ChannelId {
    ChannelId(u32_of(v, key))
}

/// The frame a vector's `frame` object describes.
fn frame_of(f: &Value) -> Frame {
    match text_of(f, "type") {
        "DATA" => Frame::Data(Data {
            id: id_of(f, "id"),
            eom: bool_of(f, "eom"),
            fin: bool_of(f, "fin"),
            payload: bytes_of(f, "payload_hex"),
        }),
        "OPEN" => Frame::Open(Open {
            id: id_of(f, "id"),
            route: text_of(f, "route").to_owned().into(),
            metadata: bytes_of(f, "metadata_hex"),
            eom: bool_of(f, "eom"),
            fin: bool_of(f, "fin"),
            payload: bytes_of(f, "payload_hex"),
        }),
        "WINDOW" => Frame::Window { id: id_of(f, "id"), increment: u32_of(f, "increment") },
        "STOP" => Frame::Stop {
            id: id_of(f, "id"),
            code: ErrorCode(u32_of(f, "code")),
            reason: text_of(f, "reason").to_owned(),
        },
        "RESET" => Frame::Reset {
            id: id_of(f, "id"),
            code: ErrorCode(u32_of(f, "code")),
            reason: text_of(f, "reason").to_owned(),
        },
        "PING" => {
            let payload = unhex(text_of(f, "payload_hex"));
            let payload = payload.try_into().unwrap_or_else(|_| panic!("PING needs 8 bytes: {f}"));
            Frame::Ping { ack: bool_of(f, "ack"), payload }
        }
        "GOAWAY" => Frame::GoAway {
            last_id: id_of(f, "last_id"),
            code: ErrorCode(u32_of(f, "code")),
            reason: text_of(f, "reason").to_owned(),
        },
        "SETTINGS" => Frame::Settings(Settings {
            version: u32_of(f, "version"),
            initial_window: u32_of(f, "initial_window"),
            max_frame_payload: u32_of(f, "max_frame_payload"),
            max_message_size: u32_of(f, "max_message_size"),
            max_channels: u32_of(f, "max_channels"),
            session_window: u32_of(f, "session_window"),
        }),
        "EXTENSION" => {
            let kind = u8::try_from(u32_of(f, "kind")).expect("extension kind is one octet");
            Frame::Extension { kind, id: id_of(f, "id") }
        }
        other => panic!("unknown frame type {other:?} in {f}"),
    }
}

/// The name `invalid.json` uses for a decode error: its variant.
fn error_name(e: &DecodeError) -> &'static str {
    match e {
        DecodeError::Truncated(_) => "Truncated",
        DecodeError::Trailing(_) => "Trailing",
        DecodeError::ReservedType(_) => "ReservedType",
        DecodeError::WrongChannel(..) => "WrongChannel",
        DecodeError::ZeroIncrement => "ZeroIncrement",
        DecodeError::NotUtf8(_) => "NotUtf8",
        DecodeError::BadSettings(_) => "BadSettings",
        DecodeError::BadPack(_) => "BadPack",
        _ => "unknown DecodeError variant",
    }
}

/// The error code a vector names, looked up in the code table.
fn code_named(name: &str) -> ErrorCode {
    ErrorCode::from_name(name).unwrap_or_else(|| panic!("no error code is named {name:?}"))
}

#[test]
fn every_vector_decodes_to_its_meaning() {
    let vectors = load("frames.json");
    for v in &vectors {
        let name = text_of(v, "name");
        assert!(!text_of(v, "meaning").is_empty(), "{name}: no meaning");
        let decoded = Frame::decode(bytes_of(v, "hex"))
            .unwrap_or_else(|e| panic!("{name}: does not decode: {e}"));
        assert_eq!(decoded, frame_of(&v["frame"]), "{name}: decodes to another frame");
    }
    // Every frame type has at least one vector.
    let types: HashSet<&str> = vectors.iter().map(|v| text_of(&v["frame"], "type")).collect();
    for t in ["DATA", "OPEN", "WINDOW", "RESET", "STOP", "PING", "GOAWAY", "SETTINGS", "EXTENSION"]
    {
        assert!(types.contains(t), "no vector of type {t}");
    }
}

#[test]
fn every_vector_encodes_back_to_its_bytes() {
    let mut checked = 0;
    for v in &load("frames.json") {
        let name = text_of(v, "name");
        match &v["reencodes"] {
            Value::Bool(false) => continue,
            Value::Null | Value::Bool(true) => {}
            other => panic!("{name}: reencodes is {other}"),
        }
        let frame = frame_of(&v["frame"]);
        let bytes = frame.to_bytes();
        assert_eq!(bytes.len(), frame.encoded_len(), "{name}: encoded_len is wrong");
        assert_eq!(
            bytes.as_ref(),
            unhex(text_of(v, "hex")).as_slice(),
            "{name}: encodes to other bytes"
        );
        checked += 1;
    }
    assert!(checked > 0, "no vector re-encodes");
}

#[test]
fn every_pack_vector_unpacks_to_its_frames_and_packs_back() {
    let vectors = load("packs.json");
    assert!(!vectors.is_empty());
    for v in &vectors {
        let name = text_of(v, "name");
        assert!(!text_of(v, "meaning").is_empty(), "{name}: no meaning");
        let frames: Vec<Frame> = frame::frames_of(bytes_of(v, "hex"))
            .and_then(|f| f.collect())
            .unwrap_or_else(|e| panic!("{name}: does not unpack: {e}"));
        let expected: Vec<Frame> = v["frames"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no frames"))
            .iter()
            .map(|hex| Frame::decode(Bytes::from(unhex(hex.as_str().unwrap()))).unwrap())
            .collect();
        assert_eq!(frames, expected, "{name}: unpacks to other frames");
        let mut buf = bytes::BytesMut::new();
        frame::encode_pack_header(&mut buf);
        for f in &expected {
            frame::encode_pack_entry(f, &mut buf);
        }
        assert_eq!(
            buf.as_ref(),
            unhex(text_of(v, "hex")).as_slice(),
            "{name}: packs to other bytes"
        );
    }
}

#[test]
fn every_invalid_vector_is_rejected_with_its_error() {
    let vectors = load("invalid.json");
    for v in &vectors {
        let name = text_of(v, "name");
        // As a receiver reads a message: one frame, or the frames of a PACK.
        let frames =
            frame::frames_of(bytes_of(v, "hex")).and_then(|f| f.collect::<Result<Vec<_>, _>>());
        let err = match frames {
            Ok(frames) => panic!("{name}: decoded as {frames:?}"),
            Err(e) => e,
        };
        assert_eq!(error_name(&err), text_of(v, "error"), "{name}: wrong error ({err})");
        assert_eq!(err.code(), code_named(text_of(v, "code")), "{name}: wrong code");
    }
    let errors: HashSet<&str> = vectors.iter().map(|v| text_of(v, "error")).collect();
    for e in [
        "Truncated",
        "Trailing",
        "ReservedType",
        "WrongChannel",
        "ZeroIncrement",
        "NotUtf8",
        "BadSettings",
        "BadPack",
    ] {
        assert!(errors.contains(e), "no invalid vector for {e}");
    }
}

#[test]
fn every_session_vector_gets_its_answer() {
    for v in &load("sessions.json") {
        let name = text_of(v, "name");
        let side = match text_of(v, "side") {
            "server" => Side::Server,
            "client" => Side::Client,
            other => panic!("{name}: unknown side {other:?}"),
        };
        let t0 = Instant::now();
        let mut config = Config::default();
        if let Some(c) = v.get("config") {
            // A vector may fix the receiver's session window (so its growth cannot hide an
            // overflow).
            config.session_window = u32_of(c, "session_window");
            config.max_session_window = u32_of(c, "max_session_window");
        }
        let mut session = Session::new(side, config, t0);
        let frames = v["peer_frames"].as_array().unwrap_or_else(|| panic!("{name}: no frames"));
        for hex in frames {
            let hex = hex.as_str().unwrap_or_else(|| panic!("{name}: a frame is not a string"));
            session.handle_message(t0, Bytes::from(unhex(hex)));
        }
        let mut sent = Vec::new();
        while let Some(msg) = session.poll_transmit(t0) {
            let frame = Frame::decode(msg.clone())
                .unwrap_or_else(|e| panic!("{name}: transmitted {msg:?}, which fails with {e}"));
            sent.push(frame);
            assert!(sent.len() < 100_000, "{name}: poll_transmit does not run dry");
        }
        let goaways: Vec<ErrorCode> = sent
            .iter()
            .filter_map(|f| match f {
                Frame::GoAway { code, .. } => Some(*code),
                _ => None,
            })
            .collect();
        let resets: Vec<(ChannelId, ErrorCode)> = sent
            .iter()
            .filter_map(|f| match f {
                Frame::Reset { id, code, .. } => Some((*id, *code)),
                _ => None,
            })
            .collect();
        let expect = &v["expect"];
        if let Some(code) = expect["goaway"].as_str() {
            assert_eq!(goaways, [code_named(code)], "{name}: sent {sent:?}");
            assert!(session.is_closed(), "{name}: session still open after GOAWAY");
        } else if let Some(reset) = expect.get("reset") {
            let want = (id_of(reset, "id"), code_named(text_of(reset, "code")));
            assert!(resets.contains(&want), "{name}: no RESET {want:?} in {sent:?}");
            assert!(goaways.is_empty(), "{name}: sent GOAWAY in {sent:?}");
            assert_eq!(!session.is_closed(), bool_of(expect, "alive"), "{name}: alive");
        } else {
            assert!(bool_of(expect, "ignored"), "{name}: unknown expectation {expect}");
            assert!(goaways.is_empty() && resets.is_empty(), "{name}: answered with {sent:?}");
            assert!(!session.is_closed(), "{name}: session closed");
        }
        if let Some(n) = expect.get("ping_acks") {
            let n = n.as_u64().unwrap_or_else(|| panic!("{name}: ping_acks is not a number"));
            let acks = sent.iter().filter(|f| matches!(f, Frame::Ping { ack: true, .. })).count();
            assert_eq!(acks as u64, n, "{name}: PING ACKs in {sent:?}");
        }
    }
}

#[test]
fn every_rpc_header_vector_decodes_and_encodes_back() {
    for v in load_rpc("headers") {
        let bytes = bytes_of(&v, "hex");
        let headers = v["headers"].as_array().unwrap().iter().map(|h| {
            let name = h[0].as_str().unwrap().to_owned();
            (name, Bytes::from(unhex(h[1].as_str().unwrap())))
        });
        let expected =
            CallHeader { timeout_ms: u32_of(&v, "timeout_ms"), headers: headers.collect() };
        assert_eq!(CallHeader::decode(&bytes), Ok(expected.clone()), "{}", text_of(&v, "name"));
        assert_eq!(expected.encode(), bytes, "{}", text_of(&v, "name"));
    }
    for v in load_rpc("invalid_headers") {
        let decoded = CallHeader::decode(&bytes_of(&v, "hex"));
        assert!(decoded.is_err(), "{}: decoded as {decoded:?}", text_of(&v, "name"));
    }
}

#[test]
fn every_rpc_message_vector_decodes_and_encodes_back() {
    for v in load_rpc("messages") {
        let bytes = bytes_of(&v, "hex");
        let value;
        let expected = match text_of(&v, "kind") {
            "DATA" => {
                value = bytes_of(&v, "value_hex");
                CallMessage::Data(&value)
            }
            "STATUS" => CallMessage::Status {
                code: Code(u16::try_from(u32_of(&v, "code")).unwrap()),
                text: text_of(&v, "text"),
            },
            other => panic!("unknown kind {other}"),
        };
        assert_eq!(CallMessage::decode(&bytes), Ok(expected), "{}", text_of(&v, "name"));
        assert_eq!(expected.encode(), bytes, "{}", text_of(&v, "name"));
    }
    for v in load_rpc("invalid_messages") {
        let bytes = bytes_of(&v, "hex");
        let decoded = CallMessage::decode(&bytes);
        assert!(decoded.is_err(), "{}: decoded as {decoded:?}", text_of(&v, "name"));
    }
}

#[test]
fn the_rpc_worked_example_frames_decode_as_a_call() {
    let frames: Vec<Frame> =
        load_rpc("frames").iter().map(|v| Frame::decode(bytes_of(v, "hex")).unwrap()).collect();
    let Frame::Open(open) = &frames[0] else { panic!("the request is an OPEN") };
    assert_eq!((&*open.route, open.eom, open.fin), ("kv.get", true, true));
    let header = CallHeader::decode(&open.metadata).unwrap();
    assert_eq!(header.timeout_ms, 250);
    assert_eq!(header.headers, vec![("trace".to_owned(), Bytes::from_static(b"ab"))]);
    assert_eq!(CallMessage::decode(&open.payload), Ok(CallMessage::Data(&[1, 0x6b])));
    let Frame::Data(answer) = &frames[1] else { panic!("the answer is DATA") };
    assert!(answer.eom && answer.fin);
    assert_eq!(CallMessage::decode(&answer.payload), Ok(CallMessage::Data(&[7])));
    let Frame::Data(failure) = &frames[2] else { panic!("the failure is DATA") };
    let status = CallMessage::Status { code: Code::NOT_FOUND, text: "no such key" };
    assert_eq!(CallMessage::decode(&failure.payload), Ok(status));
}

#[test]
fn every_interop_call_is_frames_that_decode_and_encode_back() {
    for v in load_rpc("interop") {
        let name = text_of(&v, "name");
        let requests = v["requests"].as_array().unwrap().iter();
        let answer = v.get("answer_frame").into_iter();
        for hex in requests.chain(answer) {
            let bytes = Bytes::from(unhex(hex.as_str().unwrap()));
            let frame = Frame::decode(bytes.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(frame.to_bytes(), bytes, "{name}");
            assert!(matches!(frame, Frame::Open(_) | Frame::Data(_)), "{name}: {frame:?}");
        }
        for hex in v["answers"].as_array().unwrap() {
            let message = unhex(hex.as_str().unwrap());
            assert!(CallMessage::decode(&message).is_ok(), "{name}: answer {hex}");
        }
    }
}
