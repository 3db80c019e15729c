//! The interoperability profile: the reference routes every wsmux server example serves, so
//! another implementation (a browser, a second language, a test) can exercise the protocol.
//!
//! - `echo`: sends every message back; finishes after the peer finishes.
//! - `discard`: reads and drops everything; finishes after the peer finishes.
//! - `source`: the open's metadata is a decimal byte count N (UTF-8); sends N bytes in messages
//!   of at most 64 KiB, then finishes.
//!
//! Any other route is refused with NOT_FOUND.

use bytes::Bytes;

use crate::channel::Channel;
use crate::error::Error;
use crate::session::{Incoming, Session};
use crate::ErrorCode;

/// Largest message the `source` route sends.
pub const SOURCE_CHUNK: usize = 64 * 1024;

/// Serves the reference routes on every channel `session` accepts, one task per channel,
/// until the session closes.
#[cfg(any(feature = "async-std", feature = "smol", feature = "tokio"))]
pub async fn serve(session: Session) {
    while let Some(incoming) = session.accept().await {
        crate::rt::spawn(async move {
            if let Err(e) = handle(incoming).await {
                tracing::debug!(error = %e, "reference route failed");
            }
        });
    }
}

/// Runs the reference route `incoming` asks for, or refuses it with NOT_FOUND.
pub async fn handle(incoming: Incoming) -> Result<(), Error> {
    match incoming.route() {
        "echo" => echo(incoming.accept()).await,
        "discard" => discard(incoming.accept()).await,
        "source" => {
            let count = std::str::from_utf8(incoming.metadata())
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok());
            match count {
                Some(n) => source(incoming.accept(), n).await,
                None => {
                    incoming.refuse(ErrorCode::PROTOCOL, "source needs a decimal byte count");
                    Ok(())
                }
            }
        }
        other => {
            let reason = format!("no route {other}");
            incoming.refuse(ErrorCode::NOT_FOUND, &reason);
            Ok(())
        }
    }
}

/// Sends every message back; finishes after the peer finishes.
pub async fn echo(mut ch: Channel) -> Result<(), Error> {
    while let Some(msg) = ch.recv().await? {
        if ch.peer_finished() {
            // The last message: the reply and the end leave in one frame.
            return ch.finish_with(msg).await.map_err(|e| e.error);
        }
        ch.send(msg).await?;
    }
    ch.finish().await
}

/// Reads and drops everything; finishes after the peer finishes.
pub async fn discard(mut ch: Channel) -> Result<(), Error> {
    while ch.recv().await?.is_some() {}
    ch.finish().await
}

/// Sends `n` bytes (a repeating 0..=250 pattern) in messages of at most 64 KiB, then finishes.
pub async fn source(mut ch: Channel, n: u64) -> Result<(), Error> {
    let block: Bytes = (0..SOURCE_CHUNK).map(|i| (i % 251) as u8).collect();
    let mut left = n;
    while left > 0 {
        let len = left.min(SOURCE_CHUNK as u64) as usize;
        ch.send(block.slice(..len)).await?;
        left -= len as u64;
    }
    ch.finish().await
}
