//! Errors of sessions and channels. Each records who caused it: this end, the peer, or the
//! transport.

use std::time::Duration;

use crate::code::ErrorCode;
use crate::frame::DecodeError;

/// Why a session ended (or is ending) other than cleanly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The peer broke the protocol or exceeded a limit; this end sent GOAWAY with `code`.
    #[error("peer violated the protocol ({code}): {reason}")]
    PeerViolation {
        /// The code sent in GOAWAY.
        code: ErrorCode,
        /// What was wrong.
        reason: String,
    },
    /// The peer ended the session with an error code in its GOAWAY.
    #[error("peer ended the session ({code}): {reason}")]
    PeerGoAway {
        /// The code the peer sent.
        code: ErrorCode,
        /// The peer's reason.
        reason: String,
    },
    /// This end closed the session and the channel had not finished when the drain ended.
    #[error("session closed locally")]
    LocallyClosed,
    /// A PING was not answered in time.
    #[error("keepalive timeout: no answer to a ping within {0:?}")]
    KeepaliveTimeout(Duration),
    /// The WebSocket closed or failed before the channel ended.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
}

impl SessionError {
    /// The wire code that describes this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            SessionError::PeerViolation { code, .. } | SessionError::PeerGoAway { code, .. } => {
                *code
            }
            SessionError::LocallyClosed => ErrorCode::NO_ERROR,
            SessionError::KeepaliveTimeout(_) => ErrorCode::TIMEOUT,
            SessionError::ConnectionLost(_) => ErrorCode::INTERNAL,
        }
    }

    pub(crate) fn from_decode(e: &DecodeError) -> Self {
        SessionError::PeerViolation { code: e.code(), reason: e.to_string() }
    }
}

/// Why an operation on a channel failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// The peer reset the channel (a refused open is a reset with REFUSED, NOT_FOUND or LIMIT).
    #[error("channel reset by the peer ({code}): {reason}")]
    Reset {
        /// The peer's code.
        code: ErrorCode,
        /// The peer's reason.
        reason: String,
    },
    /// This end reset the channel (the application, or the library because of the peer).
    #[error("channel reset locally ({code}): {reason}")]
    LocallyReset {
        /// The code sent.
        code: ErrorCode,
        /// The reason sent.
        reason: String,
    },
    /// The peer stopped reading the channel (STOP): this end's sending direction ended; what
    /// the peer sends may still be read.
    #[error("the peer stopped reading the channel ({code}): {reason}")]
    Stopped {
        /// The peer's code.
        code: ErrorCode,
        /// The peer's reason.
        reason: String,
    },
    /// This end stopped reading the channel ([`crate::Session::stop_receiving`]).
    #[error("receiving stopped locally ({code}): {reason}")]
    LocallyStopped {
        /// The code sent.
        code: ErrorCode,
        /// The reason sent.
        reason: String,
    },
    /// This side already finished sending on the channel.
    #[error("sending side already finished")]
    Finished,
    /// The message is larger than the peer accepts.
    #[error("message of {size} bytes exceeds the peer's limit of {max}")]
    MessageTooLarge {
        /// The message's size.
        size: usize,
        /// The peer's max message size.
        max: u32,
    },
    /// The session ended before the channel did.
    #[error("session ended: {0}")]
    Session(SessionError),
    /// The channel is not known (released, or never existed).
    #[error("unknown channel")]
    Unknown,
}

impl ChannelError {
    /// Whether the peer refused the open (REFUSED: retrying later or elsewhere may work).
    pub fn is_refused(&self) -> bool {
        matches!(self, ChannelError::Reset { code, .. } if *code == ErrorCode::REFUSED)
    }
}

/// Why a channel could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The session is draining (GOAWAY sent or received); no new channels.
    #[error("session is going away")]
    GoingAway,
    /// The peer's limit of concurrent channels is reached; retry when one closes.
    #[error("peer's limit of {0} concurrent channels reached")]
    TooManyChannels(u32),
    /// All channel ids of this side are used (after about two billion opens).
    #[error("channel ids exhausted")]
    IdsExhausted,
    /// The route is longer than 255 bytes.
    #[error("route of {0} bytes is longer than 255")]
    RouteTooLong(usize),
    /// The metadata is longer than 65535 bytes.
    #[error("metadata of {0} bytes is longer than 65535")]
    MetadataTooLarge(usize),
    /// The first message is larger than the peer accepts.
    #[error("message of {size} bytes exceeds the peer's limit of {max}")]
    MessageTooLarge {
        /// The message's size.
        size: usize,
        /// The peer's max message size.
        max: u32,
    },
    /// The session has ended.
    #[error("session ended: {0}")]
    Session(SessionError),
}
