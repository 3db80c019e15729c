//! The frame decoder (a message as a receiver reads it: one frame or a PACK of several), and the
//! RPC profile's decoders, on arbitrary bytes: no panic, and whatever decodes re-encodes to
//! something that decodes to the same value.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use wsmux_proto::rpc::{CallHeader, CallMessage, MAX_STATUS_TEXT};
use wsmux_proto::{frame, Frame};

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(frame) = Frame::decode(bytes.clone()) {
        let again = Frame::decode(frame.to_bytes()).expect("an encoded frame decodes");
        assert_eq!(again, frame, "decode(encode(frame)) differs");
        assert_eq!(frame.encoded_len(), frame.to_bytes().len());
    }
    let frames = frame::frames_of(bytes.clone()).and_then(|f| f.collect::<Result<Vec<_>, _>>());
    if let Ok(frames) = frames {
        // Packed again (the ones a PACK can hold), they unpack to the same frames.
        let packable: Vec<&Frame> =
            frames.iter().filter(|f| f.encoded_len() <= frame::MAX_PACK_ENTRY).collect();
        if !packable.is_empty() {
            let mut buf = bytes::BytesMut::new();
            frame::encode_pack_header(&mut buf);
            for f in &packable {
                frame::encode_pack_entry(f, &mut buf);
            }
            let again: Vec<Frame> = frame::frames_of(buf.freeze())
                .and_then(|f| f.collect())
                .expect("an encoded pack unpacks");
            assert!(again.iter().eq(packable.iter().copied()), "unpack(pack(frames)) differs");
        }
    }
    if let Ok(header) = CallHeader::decode(&bytes) {
        assert_eq!(CallHeader::decode(&header.encode()).as_ref(), Ok(&header));
    }
    if let Ok(message) = CallMessage::decode(&bytes) {
        let encoded = message.encode();
        let again = CallMessage::decode(&encoded).expect("an encoded message decodes");
        match (&message, &again) {
            // A sender cuts a long status text at a character boundary; a receiver takes any.
            (
                CallMessage::Status { code, text },
                CallMessage::Status { code: code2, text: text2 },
            ) if text.len() > MAX_STATUS_TEXT => {
                assert_eq!(code, code2);
                assert!(text.starts_with(text2) && text2.len() <= MAX_STATUS_TEXT);
                assert!(text2.len() + 4 > MAX_STATUS_TEXT, "cut more than a character");
            }
            _ => assert_eq!(again, message),
        }
    }
});
