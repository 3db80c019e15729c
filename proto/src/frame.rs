//! The frame codec: one frame is one WebSocket binary message.
//!
//! ```text
//!  0        1        2                                  6
//! +--------+--------+--------+--------+--------+--------+----------------
//! |  type  | flags  |        channel id (u32, BE)       | payload ...
//! +--------+--------+--------+--------+--------+--------+----------------
//! ```
//!
//! `decode` validates while it decodes: every length is checked against the bytes present,
//! every string is UTF-8, ids and credits are range-checked, so a [`Frame`] that comes out is
//! well-formed. Limits that depend on configuration (sizes, channel state) are the session's.
//! `encode` writes exactly what `decode` reads. Multi-byte integers are big-endian.

use std::borrow::Cow;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::code::ErrorCode;
use crate::id::ChannelId;
use crate::settings::{self, Settings};

/// Size of the fixed header that starts every frame.
pub const HEADER_LEN: usize = 6;
/// Longest route name an OPEN can carry (its length is a `u8`).
pub const MAX_ROUTE_LEN: usize = 255;
/// Longest reason a RESET or GOAWAY can carry (its length is a `u8`).
pub const MAX_REASON_LEN: usize = 255;
/// Longest metadata an OPEN can carry (its length is a `u16`).
pub const MAX_METADATA_LEN: usize = u16::MAX as usize;
/// Bytes an OPEN adds before its data part, at most: route and metadata with their lengths.
pub const MAX_OPEN_OVERHEAD: usize = 1 + MAX_ROUTE_LEN + 2 + MAX_METADATA_LEN;

/// Frame type octets.
pub mod kind {
    /// A part of a message, and/or the end of a direction.
    pub const DATA: u8 = 0x00;
    /// Opens a channel; may carry the first data.
    pub const OPEN: u8 = 0x01;
    /// Grants credit on a channel.
    pub const WINDOW: u8 = 0x02;
    /// Aborts a channel in both directions.
    pub const RESET: u8 = 0x03;
    /// Liveness and round-trip measurement; with ACK it is the answer.
    pub const PING: u8 = 0x04;
    /// The session is ending: no new channels.
    pub const GOAWAY: u8 = 0x05;
    /// The first frame of each end.
    pub const SETTINGS: u8 = 0x06;
    /// Several frames in one WebSocket message (see [`super::frames_of`]); never inside one.
    pub const PACK: u8 = 0x07;
    /// Asks the peer to stop sending on a channel; the other direction goes on.
    pub const STOP: u8 = 0x08;
    /// Types from here up to 0x7F are reserved: receiving one is a protocol error.
    pub const RESERVED_MIN: u8 = 0x09;
    /// Types from here up are extensions: a receiver that does not know one ignores it.
    pub const EXTENSION_MIN: u8 = 0x80;
}

/// Flag bits. Bits a frame type does not define are sent as 0 and ignored on receipt.
pub mod flag {
    /// DATA, OPEN: the sender's direction of the channel ends after this frame.
    pub const FIN: u8 = 0x01;
    /// DATA, OPEN: this frame's data ends a message.
    pub const EOM: u8 = 0x02;
    /// PING: this is the answer to a PING.
    pub const ACK: u8 = 0x01;
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// DATA: a part of a message and/or the end of the sender's direction.
    Data(Data),
    /// OPEN: a new channel, with route, metadata and possibly the first data.
    Open(Open),
    /// WINDOW: `increment` more bytes may be sent on `id`.
    Window {
        /// The channel credited.
        id: ChannelId,
        /// Credit added, at least 1.
        increment: u32,
    },
    /// RESET: the channel is aborted in both directions.
    Reset {
        /// The channel aborted.
        id: ChannelId,
        /// Why, from the error-code table.
        code: ErrorCode,
        /// A short human-readable reason (may be empty).
        reason: String,
    },
    /// STOP: the sender no longer reads `id`; the receiver's sending direction on it ends. The
    /// other direction is untouched.
    Stop {
        /// The channel whose direction toward the sender of STOP ends.
        id: ChannelId,
        /// Why, from the error-code table.
        code: ErrorCode,
        /// A short human-readable reason (may be empty).
        reason: String,
    },
    /// PING, or with `ack` its answer carrying the same 8 bytes.
    Ping {
        /// Whether this is the answer.
        ack: bool,
        /// Opaque bytes echoed by the answer.
        payload: [u8; 8],
    },
    /// GOAWAY: no new channels; channels up to `last_id` opened by the receiver still finish.
    GoAway {
        /// Highest channel id opened by the receiver of this frame that the sender processed
        /// (accepted, or refused with a RESET).
        last_id: ChannelId,
        /// Why the session ends.
        code: ErrorCode,
        /// A short human-readable reason.
        reason: String,
    },
    /// SETTINGS: the sender's settings; must be its first frame.
    Settings(Settings),
    /// A frame of an extension type (0x80..=0xFF) the receiver ignores.
    Extension {
        /// The type octet.
        kind: u8,
        /// The channel id from the header.
        id: ChannelId,
    },
}

/// The DATA frame: a part of a message on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data {
    /// Channel carrying the data (never 0).
    pub id: ChannelId,
    /// Whether this frame ends the current message.
    pub eom: bool,
    /// Whether this frame ends the sender's direction.
    pub fin: bool,
    /// The bytes (may be empty).
    pub payload: Bytes,
}

/// The OPEN frame: the first frame of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// The new channel's id; its low bit names the opener.
    pub id: ChannelId,
    /// What the opener asks for (at most 255 bytes of UTF-8). Borrowed when the opener's route
    /// is a constant (an RPC method), so opening costs no copy of it.
    pub route: Cow<'static, str>,
    /// Opaque bytes for the acceptor (at most 65535).
    pub metadata: Bytes,
    /// Whether the data part ends a message (an empty data part with EOM is an empty message).
    pub eom: bool,
    /// Whether the opener's direction ends with this frame.
    pub fin: bool,
    /// The data part: the first bytes of the first message (may be empty).
    pub payload: Bytes,
}

/// Why a byte string is not a frame. Every case is a session error with code PROTOCOL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer than 6 bytes, or a field that runs past the end.
    #[error("frame truncated: {0}")]
    Truncated(&'static str),
    /// A control frame longer than its fields.
    #[error("trailing bytes after {0}")]
    Trailing(&'static str),
    /// A type in the reserved range 0x07..=0x7F.
    #[error("reserved frame type {0:#04x}")]
    ReservedType(u8),
    /// Channel id 0 where a channel is required, or non-zero where the session is.
    #[error("{0} on the wrong channel id {1}")]
    WrongChannel(&'static str, u32),
    /// WINDOW with an increment of 0.
    #[error("window increment of 0")]
    ZeroIncrement,
    /// Route or reason is not UTF-8.
    #[error("{0} is not UTF-8")]
    NotUtf8(&'static str),
    /// SETTINGS whose length is not a multiple of 6, or without a version.
    #[error("malformed settings: {0}")]
    BadSettings(&'static str),
    /// A PACK without entries, or a PACK inside a PACK.
    #[error("malformed pack: {0}")]
    BadPack(&'static str),
}

impl DecodeError {
    /// The wire error code a receiver sends for this error (always PROTOCOL).
    pub fn code(&self) -> ErrorCode {
        ErrorCode::PROTOCOL
    }
}

/// Reads a frame's fields off the front of its bytes. Fixed-width fields are read in place
/// (`Buf::advance` moves a pointer): only metadata and payloads become `Bytes` of their own,
/// since every clone or drop of a shared `Bytes` is an atomic operation on the WebSocket read
/// buffer's count (measured: 5 of them per packed 64-byte frame took a quarter of the
/// small-message benchmark's time).
struct Reader {
    buf: Bytes,
}

impl Reader {
    fn need(&self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated(what));
        }
        Ok(())
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        self.need(1, what)?;
        Ok(self.buf.get_u8())
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        self.need(2, what)?;
        Ok(self.buf.get_u16())
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        self.need(4, what)?;
        Ok(self.buf.get_u32())
    }
    fn take(&mut self, n: usize, what: &'static str) -> Result<Bytes, DecodeError> {
        self.need(n, what)?;
        Ok(self.buf.split_to(n))
    }
    /// A PACK entry of `n` bytes. A DATA or OPEN entry is copied out of the message: its
    /// payload goes to a channel's queue, where a slice of the message would cost an atomic
    /// count on the shared read buffer twice (measured: a copy of a packed 64-byte frame, which
    /// the queue then keeps as it is, is cheaper than the slice the queue copies anyway).
    fn take_entry(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        self.need(n, "PACK entry")?;
        if !matches!(self.buf.first(), Some(&kind::DATA | &kind::OPEN)) {
            return Ok(self.buf.split_to(n));
        }
        let entry = Bytes::copy_from_slice(&self.buf[..n]);
        self.buf.advance(n);
        Ok(entry)
    }
    /// Everything left, without a clone.
    fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }
    fn string(&mut self, n: usize, what: &'static str) -> Result<String, DecodeError> {
        self.need(n, what)?;
        let s = std::str::from_utf8(&self.buf[..n]).map_err(|_| DecodeError::NotUtf8(what))?;
        let s = s.to_owned();
        self.buf.advance(n);
        Ok(s)
    }
    /// A RESET's or STOP's code and reason (`what` names the two fields in errors).
    fn code_and_reason(
        &mut self,
        what: [&'static str; 2],
    ) -> Result<(ErrorCode, String), DecodeError> {
        let code = ErrorCode(self.u32(what[0])?);
        let len = self.u8(what[1])? as usize;
        Ok((code, self.string(len, what[1])?))
    }
    fn end(&self, what: &'static str) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Trailing(what))
        }
    }
}

impl Frame {
    /// Decodes one frame from one WebSocket binary message. Payloads share `msg`'s memory.
    pub fn decode(msg: Bytes) -> Result<Frame, DecodeError> {
        let mut r = Reader { buf: msg };
        let kind = r.u8("header")?;
        let flags = r.u8("header")?;
        let id = ChannelId(r.u32("header")?);
        let on_channel = |name| {
            if id.is_session() {
                Err(DecodeError::WrongChannel(name, 0))
            } else {
                Ok(())
            }
        };
        let on_session = |name| {
            if id.is_session() {
                Ok(())
            } else {
                Err(DecodeError::WrongChannel(name, id.0))
            }
        };
        let fin = flags & flag::FIN != 0;
        let eom = flags & flag::EOM != 0;
        let frame = match kind {
            kind::DATA => {
                on_channel("DATA")?;
                Frame::Data(Data { id, eom, fin, payload: r.rest() })
            }
            kind::OPEN => {
                on_channel("OPEN")?;
                let route_len = r.u8("OPEN route length")? as usize;
                let route = Cow::Owned(r.string(route_len, "OPEN route")?);
                let meta_len = r.u16("OPEN metadata length")? as usize;
                let metadata = r.take(meta_len, "OPEN metadata")?;
                Frame::Open(Open { id, route, metadata, eom, fin, payload: r.rest() })
            }
            kind::WINDOW => {
                // Channel id 0 credits the session as a whole (PROTOCOL.md section 8).
                let increment = r.u32("WINDOW increment")?;
                r.end("WINDOW")?;
                if increment == 0 {
                    return Err(DecodeError::ZeroIncrement);
                }
                Frame::Window { id, increment }
            }
            kind::RESET => {
                on_channel("RESET")?;
                let (code, reason) = r.code_and_reason(["RESET code", "RESET reason"])?;
                r.end("RESET")?;
                Frame::Reset { id, code, reason }
            }
            kind::STOP => {
                on_channel("STOP")?;
                let (code, reason) = r.code_and_reason(["STOP code", "STOP reason"])?;
                r.end("STOP")?;
                Frame::Stop { id, code, reason }
            }
            kind::PING => {
                on_session("PING")?;
                r.need(8, "PING payload")?;
                let mut payload = [0; 8];
                r.buf.copy_to_slice(&mut payload);
                r.end("PING")?;
                Frame::Ping { ack: flags & flag::ACK != 0, payload }
            }
            kind::GOAWAY => {
                on_session("GOAWAY")?;
                let last_id = ChannelId(r.u32("GOAWAY last id")?);
                let code = ErrorCode(r.u32("GOAWAY code")?);
                let len = r.u8("GOAWAY reason length")? as usize;
                let reason = r.string(len, "GOAWAY reason")?;
                r.end("GOAWAY")?;
                Frame::GoAway { last_id, code, reason }
            }
            kind::SETTINGS => {
                on_session("SETTINGS")?;
                Frame::Settings(decode_settings(&r.buf)?)
            }
            kind::PACK => return Err(DecodeError::BadPack("a PACK inside a PACK")),
            k if k >= kind::EXTENSION_MIN => Frame::Extension { kind: k, id },
            k => return Err(DecodeError::ReservedType(k)),
        };
        Ok(frame)
    }

    /// Appends the encoded frame to `buf`.
    ///
    /// # Panics
    ///
    /// If a route, reason or metadata is longer than its length field can say; the session
    /// checks those limits before it builds a frame.
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            Frame::Data(d) => {
                header(buf, kind::DATA, data_flags(d.fin, d.eom), d.id);
                buf.put_slice(&d.payload);
            }
            Frame::Open(o) => {
                header(buf, kind::OPEN, data_flags(o.fin, o.eom), o.id);
                encode_open_fields(buf, &o.route, &o.metadata);
                buf.put_slice(&o.payload);
            }
            Frame::Window { id, increment } => {
                header(buf, kind::WINDOW, 0, *id);
                buf.put_u32(*increment);
            }
            Frame::Reset { id, code, reason } | Frame::Stop { id, code, reason } => {
                let kind =
                    if matches!(self, Frame::Stop { .. }) { kind::STOP } else { kind::RESET };
                header(buf, kind, 0, *id);
                buf.put_u32(code.0);
                put_short_str(buf, reason);
            }
            Frame::Ping { ack, payload } => {
                header(buf, kind::PING, if *ack { flag::ACK } else { 0 }, ChannelId::SESSION);
                buf.put_slice(payload);
            }
            Frame::GoAway { last_id, code, reason } => {
                header(buf, kind::GOAWAY, 0, ChannelId::SESSION);
                buf.put_u32(last_id.0);
                buf.put_u32(code.0);
                put_short_str(buf, reason);
            }
            Frame::Settings(s) => {
                header(buf, kind::SETTINGS, 0, ChannelId::SESSION);
                for (id, value) in s.entries() {
                    buf.put_u16(id);
                    buf.put_u32(value);
                }
            }
            Frame::Extension { kind, id } => header(buf, *kind, 0, *id),
        }
    }

    /// The encoded frame in two parts: everything but the data payload, and the data payload
    /// (empty for frames without data). Concatenated they are [`Frame::to_bytes`]; kept apart,
    /// the payload is never copied (a sender may put them in two WebSocket fragments).
    pub fn to_split_bytes(&self) -> (Bytes, Bytes) {
        let payload = match self {
            Frame::Data(d) => d.payload.clone(),
            Frame::Open(o) => o.payload.clone(),
            _ => return (self.to_bytes(), Bytes::new()),
        };
        let mut head = BytesMut::with_capacity(self.encoded_len() - payload.len());
        match self {
            Frame::Data(d) => header(&mut head, kind::DATA, data_flags(d.fin, d.eom), d.id),
            Frame::Open(o) => {
                header(&mut head, kind::OPEN, data_flags(o.fin, o.eom), o.id);
                encode_open_fields(&mut head, &o.route, &o.metadata);
            }
            _ => {}
        }
        (head.freeze(), payload)
    }

    /// The encoded frame as one buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut buf);
        buf.freeze()
    }

    /// The number of bytes `encode` writes.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + match self {
                Frame::Data(d) => d.payload.len(),
                Frame::Open(o) => 3 + o.route.len() + o.metadata.len() + o.payload.len(),
                Frame::Window { .. } => 4,
                Frame::Reset { reason, .. } | Frame::Stop { reason, .. } => 5 + reason.len(),
                Frame::Ping { .. } => 8,
                Frame::GoAway { reason, .. } => 9 + reason.len(),
                Frame::Settings(s) => 6 * s.entries().len(),
                Frame::Extension { .. } => 0,
            }
    }
}

/// Largest frame a PACK entry holds: its length is a `u16`.
pub const MAX_PACK_ENTRY: usize = u16::MAX as usize;

/// The frames one WebSocket message carries: the message itself, or each entry of a PACK, in
/// order. A PACK's header is checked here (6 bytes, channel id 0, at least one entry); each
/// entry is checked as it is reached, so the frames before a malformed entry come out first,
/// as they would have as messages of their own.
///
/// ```text
///  PACK: 0x07 | flags (ignored) | 0x00000000 | { length u16 | frame (length bytes) } ...
/// ```
pub fn frames_of(msg: Bytes) -> Result<Frames, DecodeError> {
    if msg.first() != Some(&kind::PACK) {
        return Ok(Frames { single: Some(msg), entries: Bytes::new() });
    }
    let mut r = Reader { buf: msg };
    r.need(HEADER_LEN, "header")?;
    r.buf.advance(2);
    let id = r.buf.get_u32();
    if id != 0 {
        return Err(DecodeError::WrongChannel("PACK", id));
    }
    if r.buf.is_empty() {
        return Err(DecodeError::BadPack("a PACK without frames"));
    }
    Ok(Frames { single: None, entries: r.buf })
}

/// The iterator of [`frames_of`].
#[derive(Debug)]
pub struct Frames {
    single: Option<Bytes>,
    entries: Bytes,
}

impl Iterator for Frames {
    type Item = Result<Frame, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(msg) = self.single.take() {
            return Some(Frame::decode(msg));
        }
        if self.entries.is_empty() {
            return None;
        }
        let mut r = Reader { buf: std::mem::take(&mut self.entries) };
        let entry = r
            .u16("PACK entry length")
            .and_then(|len| r.take_entry(usize::from(len)))
            .and_then(Frame::decode);
        // After an error nothing more is read: the session has ended.
        self.entries = if entry.is_ok() { r.buf } else { Bytes::new() };
        Some(entry)
    }
}

/// Starts a PACK in `buf`: its header. Entries follow with [`encode_pack_entry`]; a PACK holds
/// at least one.
pub fn encode_pack_header(buf: &mut BytesMut) {
    header(buf, kind::PACK, 0, ChannelId::SESSION);
}

/// Appends `frame` to the PACK being written in `buf`, with its length.
///
/// # Panics
///
/// If the frame is longer than [`MAX_PACK_ENTRY`]: such a frame goes as a message of its own.
pub fn encode_pack_entry(frame: &Frame, buf: &mut BytesMut) {
    let len = u16::try_from(frame.encoded_len()).expect("a packed frame fits a u16 length");
    buf.put_u16(len);
    frame.encode(buf);
}

/// Writes the 6-byte header.
pub fn header(buf: &mut BytesMut, kind: u8, flags: u8, id: ChannelId) {
    buf.put_u8(kind);
    buf.put_u8(flags);
    buf.put_u32(id.0);
}

/// The flag octet of a DATA or OPEN frame.
pub fn data_flags(fin: bool, eom: bool) -> u8 {
    (if fin { flag::FIN } else { 0 }) | (if eom { flag::EOM } else { 0 })
}

/// Writes an OPEN's route and metadata with their length prefixes.
pub(crate) fn encode_open_fields(buf: &mut BytesMut, route: &str, metadata: &[u8]) {
    let route_len = u8::try_from(route.len()).expect("route length checked by the session");
    let meta_len = u16::try_from(metadata.len()).expect("metadata length checked by the session");
    buf.put_u8(route_len);
    buf.put_slice(route.as_bytes());
    buf.put_u16(meta_len);
    buf.put_slice(metadata);
}

fn put_short_str(buf: &mut BytesMut, s: &str) {
    let s = truncate_utf8(s, MAX_REASON_LEN);
    buf.put_u8(s.len() as u8);
    buf.put_slice(s.as_bytes());
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn decode_settings(buf: &[u8]) -> Result<Settings, DecodeError> {
    if buf.len() % 6 != 0 {
        return Err(DecodeError::BadSettings("length is not a multiple of 6"));
    }
    let mut s = Settings::DEFAULT;
    let mut version = None;
    for entry in buf.chunks_exact(6) {
        let id = u16::from_be_bytes([entry[0], entry[1]]);
        let value = u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]);
        match id {
            settings::id::VERSION => version = Some(value),
            settings::id::INITIAL_WINDOW => s.initial_window = value,
            settings::id::MAX_FRAME_PAYLOAD => s.max_frame_payload = value,
            settings::id::MAX_MESSAGE_SIZE => s.max_message_size = value,
            settings::id::MAX_CHANNELS => s.max_channels = value,
            settings::id::SESSION_WINDOW => s.session_window = value,
            _ => {} // unknown settings are ignored (extensibility)
        }
    }
    s.version = version.ok_or(DecodeError::BadSettings("no version"))?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_id() -> impl Strategy<Value = ChannelId> {
        (1u32..).prop_map(ChannelId)
    }

    fn arb_str(max: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(".{0,40}")
            .expect("valid regex")
            .prop_map(move |s| truncate_utf8(&s, max).to_owned())
    }

    fn arb_bytes(max: usize) -> impl Strategy<Value = Bytes> {
        proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
    }

    fn arb_frame() -> impl Strategy<Value = Frame> {
        prop_oneof![
            (arb_id(), any::<bool>(), any::<bool>(), arb_bytes(300))
                .prop_map(|(id, eom, fin, payload)| Frame::Data(Data { id, eom, fin, payload })),
            (arb_id(), arb_str(255), arb_bytes(300), any::<bool>(), any::<bool>(), arb_bytes(300))
                .prop_map(|(id, route, metadata, eom, fin, payload)| {
                    Frame::Open(Open { id, route: route.into(), metadata, eom, fin, payload })
                }),
            (arb_id(), 1u32..).prop_map(|(id, increment)| Frame::Window { id, increment }),
            (arb_id(), any::<u32>(), arb_str(255)).prop_map(|(id, c, reason)| Frame::Stop {
                id,
                code: ErrorCode(c),
                reason
            }),
            (arb_id(), any::<u32>(), arb_str(255)).prop_map(|(id, c, reason)| Frame::Reset {
                id,
                code: ErrorCode(c),
                reason
            }),
            (any::<bool>(), any::<[u8; 8]>())
                .prop_map(|(ack, payload)| Frame::Ping { ack, payload }),
            (any::<u32>(), any::<u32>(), arb_str(255)).prop_map(|(l, c, reason)| Frame::GoAway {
                last_id: ChannelId(l),
                code: ErrorCode(c),
                reason
            }),
            (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>())
                .prop_map(
                    |(
                        version,
                        initial_window,
                        max_frame_payload,
                        max_message_size,
                        max_channels,
                        session_window,
                    )| {
                        Frame::Settings(Settings {
                            version,
                            initial_window,
                            max_frame_payload,
                            max_message_size,
                            max_channels,
                            session_window,
                        })
                    }
                ),
            (0x80u8.., any::<u32>())
                .prop_map(|(kind, id)| Frame::Extension { kind, id: ChannelId(id) }),
        ]
    }

    proptest! {
        #[test]
        fn every_frame_round_trips(frame in arb_frame()) {
            let bytes = frame.to_bytes();
            prop_assert_eq!(bytes.len(), frame.encoded_len());
            prop_assert_eq!(Frame::decode(bytes).unwrap(), frame);
        }

        #[test]
        fn split_encoding_concatenates_to_the_whole(frame in arb_frame()) {
            let (head, payload) = frame.to_split_bytes();
            let mut joined = head.to_vec();
            joined.extend_from_slice(&payload);
            prop_assert_eq!(&joined[..], &frame.to_bytes()[..]);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(frame) = Frame::decode(Bytes::from(bytes.clone())) {
                // What decodes cleanly re-encodes to the same bytes, except for ignored parts
                // (unknown flag bits, unknown settings, extension payloads).
                let again = Frame::decode(frame.to_bytes()).unwrap();
                prop_assert_eq!(again, frame);
            }
        }
    }

    #[test]
    fn data_header_is_six_bytes() {
        let f =
            Frame::Data(Data { id: ChannelId(3), eom: true, fin: false, payload: Bytes::new() });
        assert_eq!(&f.to_bytes()[..], &[0x00, 0x02, 0, 0, 0, 3]);
    }

    #[test]
    fn every_type_and_flag_byte_decodes_to_a_frame_or_a_typed_error() {
        // All 256 types × 256 flag bytes, on channel 1 and on the session (id 0), with bodies
        // of assorted lengths: never a panic; a reserved type (0x07..0x7f) is always PROTOCOL;
        // an extension type (0x80..) always decodes, whatever its flags and body.
        for kind in 0..=255u8 {
            for flags in 0..=255u8 {
                for id in [0u8, 1] {
                    for body in [0usize, 4, 8, 15, 40] {
                        let mut bytes = vec![kind, flags, 0, 0, 0, id];
                        bytes.extend((0..body).map(|i| i as u8 | 1));
                        let result = Frame::decode(Bytes::from(bytes));
                        if (0x07..0x80).contains(&kind) {
                            let code = result.as_ref().map_err(DecodeError::code);
                            assert_eq!(code.err(), Some(ErrorCode::PROTOCOL), "{kind:#x}");
                        }
                        if kind >= 0x80 {
                            assert!(result.is_ok(), "extension {kind:#x} {flags:#x}: {result:?}");
                        }
                        if let Ok(frame) = result {
                            assert_eq!(Frame::decode(frame.to_bytes()).as_ref(), Ok(&frame));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_prefix_of_a_header_is_truncated() {
        let full = Frame::Window { id: ChannelId(1), increment: 5 }.to_bytes();
        for n in 0..full.len() {
            assert!(Frame::decode(full.slice(..n)).is_err(), "{n} bytes decoded");
        }
    }
}
