//! The interoperability profile: the reference routes every wsmux server example serves, so
//! another implementation (a browser, a second language, a test) can exercise the protocol.
//!
//! - `echo`: sends every message back; finishes after the peer finishes.
//! - `discard`: reads and drops everything; finishes after the peer finishes.
//! - `source`: the open's metadata is a decimal byte count N (UTF-8); sends N bytes in messages
//!   of at most 64 KiB, then finishes.
//!
//! - RPC methods `interop.*` (PROTOCOL.md section 17) whose values are raw bytes (the [`Raw`]
//!   codec), so a client in any language can test its RPC profile: see [`rpc_router`].
//!
//! Any other route is refused with NOT_FOUND.

use bytes::Bytes;

use crate::channel::Channel;
use crate::codec::Raw;
use crate::error::Error;
use crate::rpc::{Bidi, ClientStreaming, Code, Router, ServerStreaming, Status, Unary};
use crate::session::{Incoming, Session};
use crate::ErrorCode;

/// Answers the request unchanged.
pub const UNARY: Unary<Bytes, Bytes> = Unary::new("interop.unary");
/// Fails with the STATUS the request asks for: its first two bytes are the code (big-endian,
/// 1–65535), the rest the text (UTF-8). A request that is shorter, asks for code 0 or has a
/// text that is not UTF-8 gets INVALID_ARGUMENT.
pub const FAIL: Unary<Bytes, Bytes> = Unary::new("interop.fail");
/// Answers the value of the call header the request names (UTF-8), its first if it repeats,
/// or NOT_FOUND.
pub const HEADER: Unary<Bytes, Bytes> = Unary::new("interop.header");
/// Never answers: the call ends by its deadline (DEADLINE_EXCEEDED from the callee, or the
/// caller's own), by the caller's cancellation or with the session.
pub const HANG: Unary<Bytes, Bytes> = Unary::new("interop.hang");
/// Server streaming: the request is a decimal count N (UTF-8, 0–65536); the answers are N
/// messages, the decimal numbers `0`, `1`, … `N-1`, then FIN. Anything else:
/// INVALID_ARGUMENT.
pub const COUNT: ServerStreaming<Bytes, Bytes> = ServerStreaming::new("interop.count");
/// Client streaming: answers all the requests joined, in order, once the caller finishes; past
/// [`CONCAT_MAX`] bytes in all, OUT_OF_RANGE.
pub const CONCAT: ClientStreaming<Bytes, Bytes> = ClientStreaming::new("interop.concat");
/// Bidirectional: answers every request with the same bytes as it arrives, and finishes once
/// the caller finishes.
pub const ECHO: Bidi<Bytes, Bytes> = Bidi::new("interop.echo");

/// The most `interop.concat` joins: 1 MiB.
pub const CONCAT_MAX: usize = 1024 * 1024;
/// The largest count `interop.count` streams.
pub const COUNT_MAX: u32 = 65_536;

/// The interop RPC methods on the [`Raw`] codec: [`UNARY`], [`FAIL`], [`HEADER`], [`HANG`],
/// [`COUNT`], [`CONCAT`] and [`ECHO`]. [`serve`] serves them beside the reference routes.
pub fn rpc_router() -> Router<Raw> {
    Router::with_codec(Raw)
        .unary(UNARY, |req: Bytes, _| async move { Ok(req) })
        .unary(FAIL, |req: Bytes, _| async move {
            let invalid = || {
                Status::invalid_argument("interop.fail needs a code (u16, 1-65535) and UTF-8 text")
            };
            let (code, text) = req.split_first_chunk::<2>().ok_or_else(invalid)?;
            let code = u16::from_be_bytes(*code);
            let text = std::str::from_utf8(text).map_err(|_| invalid())?;
            if code == 0 {
                return Err(invalid());
            }
            Err(Status::new(Code(code), text))
        })
        .unary(HEADER, |req: Bytes, ctx| async move {
            let name = std::str::from_utf8(&req)
                .map_err(|_| Status::invalid_argument("a header name is UTF-8"))?;
            ctx.header(name)
                .cloned()
                .ok_or_else(|| Status::not_found(format!("no header {name:?}")))
        })
        .unary(HANG, |_: Bytes, _| futures::future::pending())
        .server_streaming(COUNT, |req: Bytes, mut out, _| async move {
            let digits = !req.is_empty() && req.iter().all(u8::is_ascii_digit);
            let n = std::str::from_utf8(&req)
                .ok()
                .filter(|_| digits)
                .and_then(|s| s.parse::<u32>().ok())
                .filter(|n| *n <= COUNT_MAX)
                .ok_or_else(|| {
                    Status::invalid_argument(format!("a decimal count 0-{COUNT_MAX}"))
                })?;
            for i in 0..n {
                out.send(&Bytes::from(i.to_string())).await?;
            }
            Ok(())
        })
        .client_streaming(CONCAT, |mut requests, _| async move {
            let mut joined = Vec::new();
            while let Some(req) = requests.recv().await {
                let req: Bytes = req?;
                if joined.len() + req.len() > CONCAT_MAX {
                    return Err(Status::out_of_range(format!("more than {CONCAT_MAX} bytes")));
                }
                joined.extend_from_slice(&req);
            }
            Ok(Bytes::from(joined))
        })
        .bidi(ECHO, |mut requests, mut out, _| async move {
            while let Some(req) = requests.recv().await {
                out.send(&req?).await?;
            }
            Ok(())
        })
}

/// The interop methods whose values are JSON (the [`Json`] codec, a browser's default):
/// `interop.json.sum` and `interop.json.callback`, which calls the caller back
/// (PROTOCOL.md section 14).
#[cfg(feature = "json")]
pub mod json {
    use crate::codec::Json;
    use crate::rpc::{CallOptions, Client, Router, Status, Unary};
    use crate::session::Session;

    /// JSON: the sum of a list of integers, `[1, 2, 3]` → `{"sum":6,"count":3}`. A value that is
    /// not such a list is INVALID_ARGUMENT; an integer or a sum beyond ±(2^53 − 1), the integers a
    /// JavaScript number holds exactly, is OUT_OF_RANGE.
    pub const SUM: Unary<Vec<i64>, Sum> = Unary::new("interop.json.sum");
    /// JSON: the server calls back. The request names a kind of call and its requests; the server
    /// makes that call to the caller's method `interop.peer.<kind>` (which the caller serves, JSON
    /// values) over a channel it opens on the same session, and answers what came back, or fails
    /// with the callee's status. See [`Callback`].
    pub const CALLBACK: Unary<Callback, Answers> = Unary::new("interop.json.callback");

    /// The largest integer a JavaScript number holds exactly (2^53 − 1).
    pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

    /// The answer of [`SUM`].
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub struct Sum {
        /// The sum.
        pub sum: i64,
        /// How many integers were added.
        pub count: u64,
    }

    /// The request of [`CALLBACK`]: `{"kind": "unary", "requests": [7]}`.
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    pub struct Callback {
        /// `unary`, `server_streaming`, `client_streaming` or `bidi`: the server calls
        /// `interop.peer.unary` and so on.
        pub kind: String,
        /// The requests to send: exactly one for `unary` and `server_streaming`, any number (at
        /// most [`CALLBACK_MAX`]) for the others.
        pub requests: Vec<serde_json::Value>,
        /// The call's timeout in milliseconds (default 10,000; at most 60,000).
        #[serde(default)]
        pub timeout_ms: Option<u32>,
    }

    /// The answer of [`CALLBACK`]: `{"responses": [...]}`, every response the callee sent,
    /// in order.
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    pub struct Answers {
        /// The callee's responses.
        pub responses: Vec<serde_json::Value>,
    }

    /// The most requests and responses one [`CALLBACK`] carries.
    pub const CALLBACK_MAX: usize = 1024;

    /// The methods [`CALLBACK`] calls on the caller, one per kind.
    pub mod peer {
        use crate::rpc::{Bidi, ClientStreaming, ServerStreaming, Unary};
        use serde_json::Value;

        /// `interop.peer.unary`.
        pub const UNARY: Unary<Value, Value> = Unary::new("interop.peer.unary");
        /// `interop.peer.server_streaming`.
        pub const SERVER_STREAMING: ServerStreaming<Value, Value> =
            ServerStreaming::new("interop.peer.server_streaming");
        /// `interop.peer.client_streaming`.
        pub const CLIENT_STREAMING: ClientStreaming<Value, Value> =
            ClientStreaming::new("interop.peer.client_streaming");
        /// `interop.peer.bidi`.
        pub const BIDI: Bidi<Value, Value> = Bidi::new("interop.peer.bidi");
    }

    /// The interop methods whose values are JSON ([`Json`] codec): [`SUM`] and
    /// [`CALLBACK`]. [`serve`](super::serve) merges them with
    /// [`rpc_router`](super::rpc_router)'s.
    pub fn router() -> Router<Json> {
        Router::with_codec(Json)
            .unary(SUM, |req: Vec<i64>, _| async move {
                let out_of_range = || Status::out_of_range(format!("beyond +-{MAX_SAFE_INTEGER}"));
                let mut sum: i64 = 0;
                for n in &req {
                    if n.abs() > MAX_SAFE_INTEGER {
                        return Err(out_of_range());
                    }
                    sum += n; // both within 2^53: no overflow
                    if sum.abs() > MAX_SAFE_INTEGER {
                        return Err(out_of_range());
                    }
                }
                Ok(Sum { sum, count: req.len() as u64 })
            })
            .unary(
                CALLBACK,
                |req: Callback, ctx| async move { call_back(req, ctx.session()).await },
            )
    }

    /// Makes the call a [`CALLBACK`] request asks for, to the caller on `session`.
    async fn call_back(req: Callback, session: &Session) -> Result<Answers, Status> {
        if req.requests.len() > CALLBACK_MAX {
            return Err(Status::invalid_argument(format!("at most {CALLBACK_MAX} requests")));
        }
        let timeout = req.timeout_ms.unwrap_or(10_000).min(60_000);
        if timeout == 0 {
            // A deadline already passed (section 14), decided before any callback is opened:
            // a callee quick enough must not beat a zero timer.
            return Err(Status::deadline_exceeded("timeout_ms 0: the deadline has passed"));
        }
        let options =
            || CallOptions::new().timeout(std::time::Duration::from_millis(timeout.into()));
        let client = Client::with_codec(session.clone(), Json);
        let one = || match req.requests.as_slice() {
            [one] => Ok(one),
            _ => Err(Status::invalid_argument(format!("{} takes exactly one request", req.kind))),
        };
        let mut responses = Vec::new();
        match req.kind.as_str() {
            "unary" => responses.push(client.unary_with(&peer::UNARY, one()?, options()).await?),
            "server_streaming" => {
                let mut stream =
                    client.server_streaming(&peer::SERVER_STREAMING, one()?, options()).await?;
                while let Some(resp) = stream.recv().await {
                    responses.push(resp?);
                    if responses.len() > CALLBACK_MAX {
                        return Err(Status::out_of_range(format!(
                            "more than {CALLBACK_MAX} responses"
                        )));
                    }
                }
            }
            "client_streaming" => {
                let mut call = client.client_streaming(&peer::CLIENT_STREAMING, options()).await?;
                for r in &req.requests {
                    call.send(r).await?;
                }
                responses.push(call.finish().await?);
            }
            "bidi" => {
                let mut call = client.bidi(&peer::BIDI, options()).await?;
                for r in &req.requests {
                    call.send(r).await?;
                }
                call.finish().await?;
                while let Some(resp) = call.recv().await {
                    responses.push(resp?);
                    if responses.len() > CALLBACK_MAX {
                        return Err(Status::out_of_range(format!(
                            "more than {CALLBACK_MAX} responses"
                        )));
                    }
                }
            }
            other => return Err(Status::invalid_argument(format!("no kind {other:?}"))),
        }
        Ok(Answers { responses })
    }
}

/// Largest message the `source` route sends.
pub const SOURCE_CHUNK: usize = 64 * 1024;

/// Serves the reference routes and the interop RPC methods on every channel `session` accepts,
/// until the session closes.
#[cfg(any(feature = "async-std", feature = "smol", feature = "tokio"))]
pub async fn serve(session: Session) {
    #[cfg(feature = "json")]
    let router = rpc_router().merge(json::router());
    #[cfg(not(feature = "json"))]
    let router = rpc_router();
    let router = router.otherwise(|incoming| async move {
        if let Err(e) = handle(incoming).await {
            tracing::debug!(error = %e, "reference route failed");
        }
    });
    router.serve(session).await
}

/// Runs the reference route `incoming` asks for (not the RPC methods), or refuses it with
/// NOT_FOUND.
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
