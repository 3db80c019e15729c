//! The error type of the async layer. Protocol errors are wrapped, not flattened, so the cause
//! (this end, the peer, the transport) stays visible.

use std::io;

use wsmux_proto::{ChannelError, OpenError, SessionError};

/// Everything that can go wrong in wsmux.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A channel operation failed (reset, finished, session ended…).
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// A channel could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The session ended with an error.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The WebSocket layer failed (during connect or the handshake).
    #[error("websocket: {0}")]
    WebSocket(#[from] Box<async_tungstenite::tungstenite::Error>),
    /// The peer's upgrade did not meet wsmux's requirements (subprotocol, Origin, status).
    #[error("handshake refused: {0}")]
    Handshake(String),
    /// The server answered the upgrade with an HTTP error instead of switching protocols: its
    /// status (401 or 403 from an authorization hook, 403 Origin, 404 path, 503 busy...) and the
    /// body's sentence.
    #[error("the server refused the upgrade with HTTP {status}: {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The response body, trimmed.
        message: String,
    },
    /// TLS could not be set up: a certificate or key that does not load, a handshake that
    /// failed (an untrusted certificate, a name that does not match).
    #[error("tls: {0}")]
    Tls(String),
    /// The URL is not a `ws://` URL wsmux can connect to.
    #[error("invalid url: {0}")]
    Url(String),
    /// A socket operation failed.
    #[error("io: {0}")]
    Io(#[from] io::Error),
    /// A typed message could not be encoded or decoded.
    #[error("codec: {0}")]
    Codec(#[from] crate::codec::CodecError),
    /// A configuration that cannot work, refused before anything is sent or read: the
    /// sentence names the setting and why (an Origin allow-list entry that can never match).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A deadline passed (connect or handshake).
    #[error("timed out: {0}")]
    Timeout(&'static str),
}

impl From<async_tungstenite::tungstenite::Error> for Error {
    fn from(e: async_tungstenite::tungstenite::Error) -> Self {
        Error::WebSocket(Box::new(e))
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::Io(inner) => inner.kind(),
            Error::Channel(ChannelError::Reset { .. } | ChannelError::LocallyReset { .. }) => {
                io::ErrorKind::ConnectionReset
            }
            Error::Channel(ChannelError::Finished) => io::ErrorKind::BrokenPipe,
            Error::Channel(ChannelError::Session(_)) | Error::Session(_) => {
                io::ErrorKind::ConnectionAborted
            }
            Error::Timeout(_) => io::ErrorKind::TimedOut,
            Error::Codec(_) => io::ErrorKind::InvalidData,
            _ => io::ErrorKind::Other,
        };
        match e {
            Error::Io(inner) => inner,
            e => io::Error::new(kind, e),
        }
    }
}

/// A failed send, handing the value back.
#[derive(Debug, thiserror::Error)]
#[error("send failed: {error}")]
pub struct SendError<T> {
    /// The value that was not sent.
    pub value: T,
    /// Why.
    #[source]
    pub error: Error,
}

impl<T> From<SendError<T>> for Error {
    fn from(e: SendError<T>) -> Error {
        e.error
    }
}
