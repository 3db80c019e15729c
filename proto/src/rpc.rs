//! The RPC profile's bytes (PROTOCOL.md section 17): the call header an RPC open carries as its
//! metadata, the kind byte in front of every message of a call, and the status codes.
//!
//! Pure layout, no state: the call state lives in the `wsmux` crate's `rpc` module, on top of
//! channels. Channels know nothing of RPC.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::frame::truncate_utf8;

/// The kind byte of a message that carries a value.
pub const KIND_DATA: u8 = 0x00;
/// The kind byte of the callee's last message: a status code and a text.
pub const KIND_STATUS: u8 = 0x01;
/// The most headers a call header may carry; a callee refuses more (INVALID_ARGUMENT), so a
/// 16 KiB metadata cannot turn into thousands of small allocations per call.
pub const MAX_HEADERS: usize = 64;
/// The longest status text a sender writes, in bytes (longer text is cut at a character
/// boundary).
pub const MAX_STATUS_TEXT: usize = 1024;

/// The outcome of a call: a `u16` on the wire.
///
/// Codes `0..=255` are the protocol's (the first 17 have gRPC's numbers and meanings); codes
/// from [`Code::APPLICATION_MIN`] up are the application's. A receiver keeps unknown codes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code(pub u16);

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $value:expr;)*) => {
        impl Code {
            $($(#[$doc])* pub const $name: Code = Code($value);)*

            /// The code's name in PROTOCOL.md, if the protocol defines it.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    /// The call succeeded.
    OK = 0;
    /// The caller cancelled the call.
    CANCELLED = 1;
    /// An error without a better code.
    UNKNOWN = 2;
    /// The request was malformed (for example, it did not decode).
    INVALID_ARGUMENT = 3;
    /// The deadline passed before the call completed.
    DEADLINE_EXCEEDED = 4;
    /// Something the request names does not exist.
    NOT_FOUND = 5;
    /// Something the request would create exists already.
    ALREADY_EXISTS = 6;
    /// The caller may not do this.
    PERMISSION_DENIED = 7;
    /// A limit was reached (for example, calls in flight).
    RESOURCE_EXHAUSTED = 8;
    /// The system is not in a state the call needs.
    FAILED_PRECONDITION = 9;
    /// The call was aborted (for example, a conflict).
    ABORTED = 10;
    /// A value was out of range.
    OUT_OF_RANGE = 11;
    /// The callee does not implement the method.
    UNIMPLEMENTED = 12;
    /// An internal error of the callee.
    INTERNAL = 13;
    /// The callee or the connection is not available; the call may be retried.
    UNAVAILABLE = 14;
    /// Data was lost.
    DATA_LOSS = 15;
    /// The caller is not authenticated.
    UNAUTHENTICATED = 16;
}

impl Code {
    /// The first code of the application range.
    pub const APPLICATION_MIN: Code = Code(0x100);

    /// Whether the code is in the application range.
    pub fn is_application(self) -> bool {
        self.0 >= Self::APPLICATION_MIN.0
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None if self.is_application() => write!(f, "APPLICATION({})", self.0),
            None => write!(f, "UNKNOWN({})", self.0),
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why a call header or a call message is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RpcWireError {
    /// The bytes end inside a field.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// A header name is empty.
    #[error("empty header name")]
    EmptyName,
    /// A header name or a status text is not UTF-8.
    #[error("{0} is not UTF-8")]
    NotUtf8(&'static str),
    /// More than [`MAX_HEADERS`] headers.
    #[error("more than {MAX_HEADERS} headers")]
    TooManyHeaders,
    /// A message has no kind byte.
    #[error("empty message")]
    Empty,
    /// A message's kind byte is not one this version defines.
    #[error("unknown message kind {0:#04x}")]
    UnknownKind(u8),
}

/// What an RPC open carries as its metadata: the call's time budget and request headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallHeader {
    /// Milliseconds the callee has, counted from when the open arrives; 0 = no deadline.
    pub timeout_ms: u32,
    /// Request headers in order (a name may repeat).
    pub headers: Vec<(String, Bytes)>,
}

impl CallHeader {
    /// The metadata bytes: empty when there is neither a deadline nor a header.
    ///
    /// # Panics
    /// If a header name is empty or longer than 255 bytes, or a value longer than 65535 bytes:
    /// the caller checks these when headers are added.
    pub fn encode(&self) -> Bytes {
        if self.timeout_ms == 0 && self.headers.is_empty() {
            return Bytes::new();
        }
        let len: usize = self.headers.iter().map(|(n, v)| 3 + n.len() + v.len()).sum();
        let mut out = BytesMut::with_capacity(4 + len);
        out.put_u32(self.timeout_ms);
        for (name, value) in &self.headers {
            assert!(!name.is_empty() && name.len() <= 255, "header name length");
            assert!(value.len() <= usize::from(u16::MAX), "header value length");
            out.put_u8(name.len() as u8);
            out.put_slice(name.as_bytes());
            out.put_u16(value.len() as u16);
            out.put_slice(value);
        }
        out.freeze()
    }

    /// Reads an open's metadata. Empty metadata is a call without deadline and headers.
    pub fn decode(metadata: &Bytes) -> Result<CallHeader, RpcWireError> {
        if metadata.is_empty() {
            return Ok(CallHeader::default());
        }
        let mut r = Reader { bytes: metadata, at: 0 };
        let timeout_ms = u32::from_be_bytes(r.take_array("timeout")?);
        let mut headers = Vec::new();
        while r.at < metadata.len() {
            if headers.len() == MAX_HEADERS {
                return Err(RpcWireError::TooManyHeaders);
            }
            let [name_len] = r.take_array("header name length")?;
            if name_len == 0 {
                return Err(RpcWireError::EmptyName);
            }
            let name = r.take(usize::from(name_len), "header name")?;
            let name =
                std::str::from_utf8(&name).map_err(|_| RpcWireError::NotUtf8("header name"))?;
            let value_len = u16::from_be_bytes(r.take_array("header value length")?);
            let value = r.take(usize::from(value_len), "header value")?;
            headers.push((name.to_owned(), value));
        }
        Ok(CallHeader { timeout_ms, headers })
    }
}

struct Reader<'a> {
    bytes: &'a Bytes,
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<Bytes, RpcWireError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(RpcWireError::Truncated(what))?;
        let out = self.bytes.slice(self.at..end);
        self.at = end;
        Ok(out)
    }

    fn take_array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], RpcWireError> {
        let b = self.take(N, what)?;
        let mut out = [0; N];
        out.copy_from_slice(&b);
        Ok(out)
    }
}

/// One message of a call, read: a view into the message's bytes (decoding copies nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallMessage<'a> {
    /// A value, encoded by the service's codec.
    Data(&'a [u8]),
    /// The callee's outcome; the channel's FIN follows with it.
    Status {
        /// The code.
        code: Code,
        /// A human-readable text, possibly empty.
        text: &'a str,
    },
}

impl<'a> CallMessage<'a> {
    /// Reads one message of a call.
    pub fn decode(msg: &'a [u8]) -> Result<CallMessage<'a>, RpcWireError> {
        match msg.first() {
            None => Err(RpcWireError::Empty),
            Some(&KIND_DATA) => Ok(CallMessage::Data(&msg[1..])),
            Some(&KIND_STATUS) => {
                let code = msg.get(1..3).ok_or(RpcWireError::Truncated("status code"))?;
                let code = Code(u16::from_be_bytes([code[0], code[1]]));
                let text = std::str::from_utf8(&msg[3..])
                    .map_err(|_| RpcWireError::NotUtf8("status text"))?;
                Ok(CallMessage::Status { code, text })
            }
            Some(&kind) => Err(RpcWireError::UnknownKind(kind)),
        }
    }

    /// The message's bytes. A status text longer than [`MAX_STATUS_TEXT`] is cut.
    pub fn encode(&self) -> Bytes {
        match self {
            CallMessage::Data(payload) => {
                let mut out = BytesMut::with_capacity(1 + payload.len());
                out.put_u8(KIND_DATA);
                out.put_slice(payload);
                out.freeze()
            }
            CallMessage::Status { code, text } => status_message(*code, text),
        }
    }
}

/// A status message: kind, code, text (cut to [`MAX_STATUS_TEXT`] bytes).
pub fn status_message(code: Code, text: &str) -> Bytes {
    let text = truncate_utf8(text, MAX_STATUS_TEXT);
    let mut out = BytesMut::with_capacity(3 + text.len());
    out.put_u8(KIND_STATUS);
    out.put_u16(code.0);
    out.put_slice(text.as_bytes());
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn headers_round_trip(
            timeout_ms in any::<u32>(),
            headers in proptest::collection::vec(("[a-z-]{1,20}", proptest::collection::vec(any::<u8>(), 0..40)), 0..5),
        ) {
            let header = CallHeader {
                timeout_ms,
                headers: headers.into_iter().map(|(n, v)| (n, Bytes::from(v))).collect(),
            };
            prop_assert_eq!(CallHeader::decode(&header.encode()), Ok(header));
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let bytes = Bytes::from(bytes);
            let _ = CallHeader::decode(&bytes);
            let _ = CallMessage::decode(&bytes);
        }
    }

    #[test]
    fn status_text_is_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_STATUS_TEXT);
        let msg = status_message(Code::INTERNAL, &long);
        let CallMessage::Status { code, text } = CallMessage::decode(&msg).unwrap() else {
            panic!("not a status")
        };
        assert_eq!(code, Code::INTERNAL);
        assert!(text.len() <= MAX_STATUS_TEXT && text.chars().all(|c| c == 'é'));
    }
}
