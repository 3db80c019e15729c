//! Configuration of a session: the protocol's limits plus the WebSocket layer's buffers.

use async_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Configuration of one session. `Config::default()` is a good start; every field documents
/// its default and why.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Protocol limits, windows, timers and abuse budgets (see [`wsmux_proto::Config`]).
    pub protocol: wsmux_proto::Config,
    /// How much one read from the socket may bring: the size of the read-ahead buffer under
    /// the WebSocket, allocated at the connection's first read. Default 32 KiB, not
    /// tungstenite's 128 KiB: it is most of a connection's memory. Measured: an idle server
    /// connection costs about 25 KiB (10,000 connections, `examples/bench`), since only the
    /// pages reads have filled are resident, up to about 45 KiB once all are. A larger buffer
    /// takes large messages in fewer system calls, for that much more memory per connection.
    ///
    /// On connections wsmux sets up itself (`client::connect*`, `server::accept`, `Server`),
    /// tungstenite's own read buffer is then 8 KiB: it zeroes that buffer's spare room before
    /// every read, so a large one costs every small message about 0.2 µs a read (the price:
    /// received bytes are copied once more, see the `progress` module). For a
    /// WebSocket handed to [`Session::client`](crate::Session::client) /
    /// [`Session::server`](crate::Session::server), this is tungstenite's read buffer, as
    /// [`Config::websocket`] sets it.
    pub ws_read_buffer: usize,
    /// Bytes tungstenite gathers before it writes to the socket (it always writes on flush).
    /// Default 128 KiB: many small frames leave in one write. A peer that stops reading can
    /// make it grow to this plus two maximal messages, no further (see `websocket()`).
    pub ws_write_buffer: usize,
    /// How long connecting plus the HTTP upgrade may take, on either side. Default 10 s (a
    /// slowloris client holds a server slot at most this long).
    pub handshake_timeout: std::time::Duration,
    /// How long, once the session has ended, its last frames (GOAWAY) and the WebSocket close
    /// handshake may take before the connection is dropped anyway. Default 5 s: a peer that
    /// stops reading must not hold the connection, or a server's session slot, forever.
    pub close_timeout: std::time::Duration,
    /// How long the driver waits for the transport to take any byte while it has bytes to
    /// write, before it gives the connection up (the session fails with
    /// [`SessionError::ConnectionLost`](crate::SessionError)). `None`: no limit. Default 30 s.
    ///
    /// A peer that stops reading its socket (or a path that went dead) stops all progress;
    /// keepalive notices it too, but only while keepalive is on: this bound holds without it
    /// (CVE-2019-9517). It measures progress, not speed: a slow reader that takes a byte now
    /// and then is never cut. Over TLS it sees what the TLS layer takes, which buffers up to
    /// about 64 KiB: there, a reader slower than that per timeout can be cut. Applies to sessions whose transport wsmux set up
    /// (`client::connect*`, `server::accept`, `Server`); a WebSocket handed to
    /// [`Session::client`](crate::Session::client) / [`Session::server`](crate::Session::server)
    /// has no view of its socket and relies on keepalive.
    pub write_timeout: Option<std::time::Duration>,
    /// Whether a task that waits to receive, finding the driver idle, reads the socket itself
    /// (it runs the driver's round, and the socket wakes it rather than the driver). An answer
    /// then reaches its caller without a hand-off from the driver's task to the caller's.
    ///
    /// Default: on, unless tokio is the runtime the features select (async-std wins, then smol).
    /// It pays where the runtime's reactor runs on the threads that wait, as async-io's does
    /// (async-std, smol): the caller wakes where the answer arrived and reads it there. Measured
    /// (`examples/bench`, `rpc`, unary calls at 1 in flight against the raw echo, alternated
    /// runs): on async-std 0.72-0.80x with it, 0.58-0.69x without. Tokio's workers run the
    /// reactor, and the worker that sees the socket ready is best placed to read it: there,
    /// with a caller in `block_on`, 0.64-0.71x with it and 0.80-0.88x without.
    ///
    /// It applies while the session has a single channel (a lone call); with more, the driver
    /// reads for all of them. A waiting task holding the socket cannot stall the session: the
    /// driver takes it back within 10 ms if the task is woken and not polled (or the wait is
    /// cancelled while the channel is kept), at once if the channel is dropped or the task's
    /// round panics. `Router::serve_connection` turns it off for its session.
    pub caller_reads: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            protocol: wsmux_proto::Config::default(),
            ws_read_buffer: 32 * 1024,
            ws_write_buffer: 128 * 1024,
            handshake_timeout: std::time::Duration::from_secs(10),
            close_timeout: std::time::Duration::from_secs(5),
            write_timeout: Some(std::time::Duration::from_secs(30)),
            caller_reads: cfg!(any(
                feature = "async-std",
                feature = "smol",
                not(feature = "tokio")
            )),
        }
    }
}

impl Config {
    /// The tungstenite configuration: message and frame limits match the largest frame the
    /// protocol allows, so an oversize message fails in the WebSocket layer before allocation.
    pub fn websocket(&self) -> WebSocketConfig {
        let max = self.protocol.max_ws_message();
        WebSocketConfig::default()
            .read_buffer_size(self.ws_read_buffer)
            .write_buffer_size(self.ws_write_buffer)
            // Past the target, the buffer grows only while the socket does not take bytes;
            // bound it so a peer that stops reading cannot grow it (CVE-2019-9517).
            .max_write_buffer_size(self.ws_write_buffer + 2 * max)
            .max_message_size(Some(max))
            .max_frame_size(Some(max))
    }
}
