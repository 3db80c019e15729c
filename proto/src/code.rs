//! The error-code table shared by RESET and GOAWAY frames (PROTOCOL.md section "Error codes").

use std::fmt;

/// A wire error code: a `u32` carried by RESET and GOAWAY.
///
/// Codes `0x00..=0xFF` are reserved for wsmux; codes from [`ErrorCode::APPLICATION_MIN`] up are
/// the application's. A receiver keeps unknown codes as they are.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    /// Graceful end; no error.
    pub const NO_ERROR: ErrorCode = ErrorCode(0x00);
    /// The peer broke a rule of the protocol.
    pub const PROTOCOL: ErrorCode = ErrorCode(0x01);
    /// The peer sent more than its credit, or credit overflowed.
    pub const FLOW_CONTROL: ErrorCode = ErrorCode(0x02);
    /// The open was refused and may be retried later (backlog full, session draining).
    pub const REFUSED: ErrorCode = ErrorCode(0x03);
    /// No handler for the route of the open.
    pub const NOT_FOUND: ErrorCode = ErrorCode(0x04);
    /// The application no longer wants the channel.
    pub const CANCEL: ErrorCode = ErrorCode(0x05);
    /// A limit was exceeded (channels, message size, metadata size, abuse budget).
    pub const LIMIT: ErrorCode = ErrorCode(0x06);
    /// A timeout expired (keepalive, drain, a channel's stall timeout).
    pub const TIMEOUT: ErrorCode = ErrorCode(0x07);
    /// An internal error of the implementation.
    pub const INTERNAL: ErrorCode = ErrorCode(0x08);
    /// The peer speaks a protocol version this end does not.
    pub const VERSION: ErrorCode = ErrorCode(0x09);
    /// The peer sent data on a direction it had already finished.
    pub const STREAM_CLOSED: ErrorCode = ErrorCode(0x0A);
    /// The first code of the application range.
    pub const APPLICATION_MIN: ErrorCode = ErrorCode(0x100);

    /// Whether the code is in the application range.
    pub fn is_application(self) -> bool {
        self.0 >= Self::APPLICATION_MIN.0
    }

    /// The code's name in PROTOCOL.md, if wsmux defines it.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::NO_ERROR => "NO_ERROR",
            Self::PROTOCOL => "PROTOCOL",
            Self::FLOW_CONTROL => "FLOW_CONTROL",
            Self::REFUSED => "REFUSED",
            Self::NOT_FOUND => "NOT_FOUND",
            Self::CANCEL => "CANCEL",
            Self::LIMIT => "LIMIT",
            Self::TIMEOUT => "TIMEOUT",
            Self::INTERNAL => "INTERNAL",
            Self::VERSION => "VERSION",
            Self::STREAM_CLOSED => "STREAM_CLOSED",
            _ => return None,
        })
    }
}

impl ErrorCode {
    /// The code PROTOCOL.md names `name` (`"PROTOCOL"`, `"LIMIT"`...): the inverse of
    /// [`ErrorCode::name`].
    pub fn from_name(name: &str) -> Option<ErrorCode> {
        (0..=Self::STREAM_CLOSED.0).map(ErrorCode).find(|c| c.name() == Some(name))
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None if self.is_application() => write!(f, "APPLICATION({:#x})", self.0),
            None => write!(f, "UNKNOWN({:#x})", self.0),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_code_is_found_by_its_name_and_nothing_else_is() {
        for code in (0..=0x200).map(ErrorCode) {
            if let Some(name) = code.name() {
                assert_eq!(ErrorCode::from_name(name), Some(code));
            }
        }
        assert_eq!(ErrorCode::from_name("LIMIT"), Some(ErrorCode::LIMIT));
        assert_eq!(ErrorCode::from_name("limit"), None);
        assert_eq!(ErrorCode::from_name("APPLICATION"), None);
    }
}
