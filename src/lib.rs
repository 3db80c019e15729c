//! wsmux: many logical channels over ONE WebSocket connection.
//!
//! A browser and a server keep one long-lived WebSocket; wsmux carries any number of
//! independent, flow-controlled channels on it — RPC calls, subscriptions, file transfers,
//! tunnels — so they share one TCP connection without waiting on each other.
//!
//! - [`client::connect`] and [`server::Server`] do the HTTP upgrade (subprotocol `wsmux.v1`,
//!   Origin policy, handshake timeout) and return a [`Session`] plus its [`Driver`].
//! - [`Session::client`] / [`Session::server`] start a session on a WebSocket you already have.
//! - A [`Session`] opens and accepts [`Channel`]s; a channel sends and receives whole messages,
//!   half-closes, resets, and converts into a byte stream ([`Channel::into_io`]) or a typed
//!   channel ([`Channel::typed`], bincode 2 by default through the [`Codec`] trait).
//!
//! The wire protocol lives in the `wsmux-proto` crate (sans-IO) and is specified byte by byte
//! in its `PROTOCOL.md`. The core is runtime-agnostic; the `async-std` (default), `smol` and
//! `tokio` features add TCP endpoints and [`spawn`].

#![forbid(unsafe_code)]

mod channel;
pub mod client;
mod codec;
mod config;
mod driver;
mod error;
mod handshake;
pub mod interop;
mod io;
mod origin;
mod progress;
pub mod rpc;
#[cfg(any(feature = "async-std", feature = "smol", feature = "tokio"))]
mod rt;
pub mod server;
mod session;
mod shared;
#[cfg(feature = "tls")]
pub mod tls;

pub use channel::Channel;
#[cfg(feature = "json")]
pub use codec::Json;
pub use codec::{Bincode, Codec, CodecError, Raw, Typed};
pub use config::Config;
pub use driver::Driver;
pub use error::{Error, SendError};
pub use io::ChannelIo;
pub use session::{Incoming, OpenOptions, Session};
pub use wsmux_proto as proto;
pub use wsmux_proto::{ChannelError, ChannelId, ErrorCode, OpenError, SessionError, Side, Stats};

/// Spawns a session's driver on the runtime the features select, logging how it ended.
#[cfg(any(feature = "async-std", feature = "smol", feature = "tokio"))]
pub fn spawn(driver: Driver) {
    rt::spawn(async move {
        if let Err(e) = driver.await {
            tracing::debug!(error = %e, "session ended with an error");
        }
    });
}

/// Runs `f`, failing with [`Error::Timeout`] after `limit`.
pub(crate) async fn timeout<F: std::future::Future>(
    limit: std::time::Duration,
    what: &'static str,
    f: F,
) -> Result<F::Output, Error> {
    use futures::FutureExt;
    futures::select! {
        out = f.fuse() => Ok(out),
        _ = futures_timer::Delay::new(limit).fuse() => Err(Error::Timeout(what)),
    }
}
