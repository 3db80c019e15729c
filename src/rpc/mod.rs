//! RPC on channels: unary, server-streaming, client-streaming and bidirectional calls, typed
//! through a [`Codec`](crate::Codec), with deadlines on the wire and cancellation, callable in
//! both directions of a session.
//!
//! A call is one channel (PROTOCOL.md section 17): the route is the method name, the open's
//! metadata carries the deadline and request headers, and a unary request and its answer are
//! one WebSocket message each. The core knows nothing of this; it is all built on
//! [`Session`](crate::Session) and [`Channel`](crate::Channel).
//!
//! Methods are typed descriptors, shared by both sides so that the compiler checks that a
//! caller and a handler agree:
//!
//! ```no_run
//! # async fn example(session: wsmux::Session) -> Result<(), wsmux::rpc::Status> {
//! use wsmux::rpc::{Client, Router, Status, Unary};
//!
//! const GET: Unary<String, u64> = Unary::new("kv.get");
//!
//! // Serving (either end of the session may serve):
//! let router = Router::new().unary(GET, |key: String, _ctx| async move {
//!     if key == "answer" { Ok(42) } else { Err(Status::not_found(key)) }
//! });
//! async_std::task::spawn(router.serve(session.clone()));
//!
//! // Calling (either end may call):
//! let client = Client::new(session);
//! let value = client.unary(&GET, &"answer".to_owned()).await?;
//! # let _ = value; Ok(())
//! # }
//! ```

mod client;
mod server;

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::Error;
use crate::{ChannelError, ErrorCode, OpenError};

pub use client::{BidiCall, CallOptions, Client, ClientStreamingCall, Responses};
pub use server::{CallContext, Requests, Router, Sender};
pub use wsmux_proto::rpc::{CallHeader, Code};

/// How a call ended when it did not succeed: a code and a text, as sent on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Status {
    code: Code,
    message: String,
}

macro_rules! status_constructors {
    ($($fn_name:ident => $code:ident),* $(,)?) => {
        $(
            #[doc = concat!("A status with code [`Code::", stringify!($code), "`].")]
            pub fn $fn_name(message: impl Into<String>) -> Status {
                Status::new(Code::$code, message)
            }
        )*
    };
}

impl Status {
    /// A status with `code` and a human-readable `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status { code, message: message.into() }
    }

    /// The code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The text.
    pub fn message(&self) -> &str {
        &self.message
    }

    status_constructors! {
        cancelled => CANCELLED,
        unknown => UNKNOWN,
        invalid_argument => INVALID_ARGUMENT,
        deadline_exceeded => DEADLINE_EXCEEDED,
        not_found => NOT_FOUND,
        already_exists => ALREADY_EXISTS,
        permission_denied => PERMISSION_DENIED,
        resource_exhausted => RESOURCE_EXHAUSTED,
        failed_precondition => FAILED_PRECONDITION,
        aborted => ABORTED,
        out_of_range => OUT_OF_RANGE,
        unimplemented => UNIMPLEMENTED,
        internal => INTERNAL,
        unavailable => UNAVAILABLE,
        unauthenticated => UNAUTHENTICATED,
    }

    /// What a channel or session failure means for a call (PROTOCOL.md section 17.5).
    pub(crate) fn from_error(error: &Error) -> Status {
        match error {
            Error::Channel(ChannelError::Reset { code, reason }) => match *code {
                ErrorCode::CANCEL => Status::cancelled(format!("the peer cancelled: {reason}")),
                ErrorCode::REFUSED => Status::unavailable(format!("refused: {reason}")),
                ErrorCode::NOT_FOUND => Status::unimplemented(format!("no such route: {reason}")),
                code => Status::unknown(format!("the peer reset the call ({code}): {reason}")),
            },
            Error::Channel(ChannelError::Session(e)) | Error::Session(e) => {
                Status::unavailable(format!("the session ended: {e}"))
            }
            Error::Channel(ChannelError::MessageTooLarge { size, max }) => {
                Status::resource_exhausted(format!(
                    "a message of {size} bytes; the peer accepts {max}"
                ))
            }
            Error::Channel(e @ (ChannelError::Finished | ChannelError::LocallyReset { .. })) => {
                Status::failed_precondition(e.to_string())
            }
            Error::Open(e @ (OpenError::RouteTooLong(_) | OpenError::MetadataTooLarge(_))) => {
                Status::invalid_argument(e.to_string())
            }
            Error::Open(e @ OpenError::MessageTooLarge { .. }) => {
                Status::resource_exhausted(e.to_string())
            }
            Error::Codec(e) => Status::internal(e.to_string()),
            other => Status::unavailable(other.to_string()),
        }
    }
}

impl From<Status> for std::io::Error {
    fn from(status: Status) -> Self {
        std::io::Error::other(status)
    }
}

macro_rules! method_kinds {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        ///
        /// `Req` is what the caller sends, `Resp` what the handler answers. Declare it once, as a
        /// `const`, where both sides can see it.
        pub struct $name<Req, Resp> {
            name: &'static str,
            _types: PhantomData<fn(Req) -> Resp>,
        }

        impl<Req, Resp> $name<Req, Resp> {
            /// The method called `name` (the route of its calls; 1–255 bytes of UTF-8).
            pub const fn new(name: &'static str) -> Self {
                $name { name, _types: PhantomData }
            }

            /// The method's name.
            pub fn name(&self) -> &'static str {
                self.name
            }
        }

        impl<Req, Resp> Clone for $name<Req, Resp> {
            fn clone(&self) -> Self {
                *self
            }
        }

        impl<Req, Resp> Copy for $name<Req, Resp> {}

        impl<Req, Resp> std::fmt::Debug for $name<Req, Resp> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "({:?})"), self.name)
            }
        }
    )*};
}

method_kinds! {
    /// A method that answers one request with one response.
    Unary;
    /// A method that answers one request with a stream of responses.
    ServerStreaming;
    /// A method that answers a stream of requests with one response.
    ClientStreaming;
    /// A method where requests and responses stream both ways at once.
    Bidi;
}

thread_local! {
    /// Where messages are encoded before a small one is copied out at its exact size: one
    /// allocation per message, where a `Vec` grown for it and turned into `Bytes` makes two.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Messages up to this size are copied out of the scratch buffer; larger ones take it.
const COPY_OUT_MAX: usize = 4096;

/// The DATA message for `value`: the kind byte, then the codec's bytes.
fn data_message<T, C: crate::Codec<T>>(codec: &C, value: &T) -> Result<Bytes, Status> {
    let encode = |out: &mut Vec<u8>| {
        out.clear();
        out.push(wsmux_proto::rpc::KIND_DATA);
        codec
            .encode_into(value, out)
            .map_err(|e| Status::internal(format!("encoding a message: {e}")))
    };
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut out) => {
            let encoded = encode(&mut out);
            let msg = match encoded {
                Ok(()) if out.len() <= COPY_OUT_MAX => Ok(Bytes::copy_from_slice(&out)),
                Ok(()) => Ok(Bytes::from(std::mem::take(&mut *out))),
                Err(e) => Err(e),
            };
            // A failed or odd encoding may have grown the buffer: never keep much of it.
            if out.capacity() > 2 * COPY_OUT_MAX {
                *out = Vec::new();
            }
            msg
        }
        // A codec that encodes a message while encoding one (re-entrant): a buffer of its own.
        Err(_) => {
            let mut out = Vec::with_capacity(128);
            encode(&mut out)?;
            Ok(Bytes::from(out))
        }
    })
}

/// The deadline a timeout gives, from now (none if it is too far to represent).
fn deadline_after(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// A timer that fires at `deadline` (at once if it passed).
fn timer_until(deadline: Instant) -> futures_timer::Delay {
    futures_timer::Delay::new(deadline.saturating_duration_since(Instant::now()))
}

/// Spawns `future` on the runtime the features select (for [`Router::serve`]).
#[cfg(any(feature = "async-std", feature = "smol", feature = "tokio"))]
fn spawn_call(future: futures::future::BoxFuture<'static, ()>) {
    crate::rt::spawn(future);
}
