//! Every limit of a session, with its default and the reason for it.

use std::time::Duration;

use crate::budget::Budget;
use crate::memory::MemoryBudget;
use crate::settings::Settings;

/// Limits and timers of one session. Every field has a documented default; the defaults are
/// what [`Config::default`] returns.
///
/// The first five fields and `session_window` are announced to the peer in SETTINGS; the rest
/// are local policy.
///
/// # Memory a peer can make a session hold
///
/// Everything a peer can make this end buffer is bounded per session by
///
/// ```text
///   max_session_window          unread received data, all channels together: its bytes and
///                               64 per part, which each part paid in credit (PART_CHARGE)
/// + max_reassembly              messages `recv` holds: being joined, or handed on and not yet
///                               followed by the next `recv` on their channel
/// + max_session_send_buffer     queued for sending (replies the peer does not read)
/// + one message                 accepted when nothing else is queued, whatever its size
/// ```
///
/// With the defaults: 16 + 32 + 16 MiB and one message. Of this, only the announced
/// `session_window` (256 KiB), as many bytes of held messages and the `session_send_buffer`
/// (1 MiB) are given without asking: window growth, further held messages and further queued
/// bytes are reserved from `memory_budget` when there is one. So sessions sharing a budget
/// hold at most the budget plus, per session, `2 × session_window + session_send_buffer` and
/// one message (1.5 MiB with the defaults); an idle session holds nothing.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Credit each channel grants the peer, in bytes, and the most a channel buffers unread.
    /// Default 256 KiB: yamux's window; the worst-case receive memory of a session is
    /// `max_channels × initial_window` (64 MiB by default). At least 65536 (the spec minimum).
    ///
    /// Measured (`examples/bench`, loopback, 2 cores): 128 KiB is a little faster for one bulk
    /// channel on loopback and 1 MiB slower (more bytes in flight fall out of cache), but a
    /// window caps one channel at `window / RTT` — 128 KiB over a 50 ms path is 2.6 MB/s — so
    /// the default stays at 256 KiB, and `max_channel_window` lets it grow toward bandwidth × RTT.
    /// The window is also what a small message on another channel waits behind during a bulk
    /// transfer: echo p50 during bulk is about 150 µs at 256 KiB, 110 µs at 128 KiB and 92 µs at
    /// 64 KiB, while one bulk channel loses 15 % and 40 % of its rate.
    pub initial_window: u32,
    /// Largest frame payload this end accepts; also the most this end puts in one frame.
    /// Default 16 KiB: HTTP/2's frame size; it bounds how long a bulk channel delays a small
    /// message to about one frame. At least 16384. Measured: 32 and 64 KiB frames gave no
    /// reliable gain for 1 MiB messages (within run-to-run noise) and a worse echo under bulk.
    pub max_frame_payload: u32,
    /// Largest message this end accepts, reassembled. Default 16 MiB. At least 1 MiB.
    /// Messages arrive in frames and are readable part by part, but `Channel::recv` joins a
    /// message's parts: this bounds what one message can make a reader hold. Larger payloads
    /// belong in several messages (or a byte stream, `into_io`).
    pub max_message_size: u32,
    /// Most channels opened by the peer that may be open at once; more are refused with LIMIT.
    /// Default 256, within the 100–512 of HTTP/2 servers.
    pub max_channels: u32,
    /// Credit the whole session grants the peer at first, all channels together, in bytes: the
    /// SESSION_WINDOW setting, what any peer may make this end hold unread before the window
    /// grows. Default 256 KiB, one channel's window: a single bulk channel runs at its own
    /// window's speed from the start, and a peer that opens every channel and reads nothing
    /// makes the session hold 256 KiB, not `max_channels × initial_window` (64 MiB). At least
    /// 65536 (the spec minimum).
    pub session_window: u32,
    /// The largest the session window grows to. It doubles when the peer has less than a
    /// quarter of it left, and when a whole window is read within two smoothed round trips
    /// (the window, not the reader, limits the peer), each growth reserved from
    /// `memory_budget` when there is one. Default 16 MiB: 64 bulk channels with full windows
    /// on a fast path (at 20 ms round trip, 64 channels move 13 MB/s with the window held at
    /// 256 KiB and about 550 MB/s with it growing, `examples/bench wan-20ms`).
    pub max_session_window: u32,
    /// The largest a channel's window grows to. It doubles when the application read a whole
    /// window in less than two smoothed round trips: one channel moves one window per round
    /// trip, so a fixed 256 KiB caps it at 5 MB/s over a 50 ms path. Growth costs no memory
    /// beyond the session window (every unread byte holds session credit too), but a larger
    /// window puts more of one channel's bytes ahead of another channel's small message, so
    /// the default, `initial_window`, turns growth off; the reference server
    /// (`examples/server --max-channel-window`) turns it on for browsers.
    pub max_channel_window: u32,
    /// Bytes all channels together queue for sending freely (each channel is also bounded
    /// by `send_buffer`); beyond it, up to `max_session_send_buffer`, only while the memory
    /// budget has room (the excess is reserved from it), and writers wait otherwise. A lone
    /// message is always accepted when nothing is queued, whatever its size. Default 1 MiB:
    /// what a peer that makes this end answer and never reads piles up here at least; a few
    /// channels whose readers stall fill it, and the budget lets the others go on.
    pub session_send_buffer: u32,
    /// The most all channels together queue for sending, with the budget's room (see
    /// `session_send_buffer`). Without a budget, the bound itself. Default 16 MiB: 64
    /// channels with full send buffers whose readers stalled do not stop the others.
    pub max_session_send_buffer: u32,
    /// Bytes of messages `recv` holds, all channels together: the parts of a message it is
    /// joining, then the whole message it returned, until it is asked for the next message on
    /// that channel (or the channel is dropped). The first `session_window` bytes are free, the
    /// rest is reserved from `memory_budget` when there is one. A part that would pass the
    /// limit resets its channel with LIMIT. Default 32 MiB, two messages of `max_message_size`
    /// (or 512 handlers each holding a 64 KiB message). Streaming reads (`into_io`, the
    /// `read` of proto) hand bytes on as they come, hold nothing and are not counted.
    pub max_reassembly: u32,
    /// The memory budget this session shares with others (a server's, see
    /// `ServerConfig::memory_budget`): session-window growth and reassembly beyond the initial
    /// grant are reserved from it. `None` (the default): no shared bound; each session is
    /// bounded by the fields above.
    pub memory_budget: Option<MemoryBudget>,
    /// Most bytes of metadata an incoming OPEN may carry; more is refused with LIMIT before
    /// anything is allocated for it. Default 16 KiB: room for tokens and request headers, and
    /// with `accept_backlog` a bound on what waiting opens hold (4 MiB by default).
    pub max_metadata: u32,
    /// Incoming channels waiting for the application to accept them; more are refused with
    /// REFUSED (retryable). Default 256, as many as `max_channels`: a peer within its channel
    /// cap is never refused for a slow accept loop, and waiting opens stay bounded.
    pub accept_backlog: usize,
    /// Bytes a channel queues for sending before `send` waits. Default 256 KiB, one window:
    /// enough to keep the peer's window full, and a bound on memory per channel.
    pub send_buffer: u32,
    /// Time between PINGs; `None` sends none (no keepalive, no RTT). Default 15 s: under the
    /// idle timeouts of common proxies, load balancers and NATs (30–60 s), so an idle session
    /// is not cut by the path, and it also measures the round trip.
    pub keepalive_interval: Option<Duration>,
    /// How long a PING may go unanswered before the session ends with TIMEOUT. Default 15 s,
    /// so a half-open peer is detected within 30 s.
    pub keepalive_timeout: Duration,
    /// How long a GOAWAY waits for open channels to finish before it ends them. Default 10 s:
    /// enough for calls in flight to complete, short enough that a stuck channel cannot hold a
    /// closing session (or a server shutdown, see `Server::shutdown`) for long.
    pub drain_timeout: Duration,
    /// RESET frames the peer may send: burst and refill per second. Past it the session ends
    /// with LIMIT (rapid reset, CVE-2023-44487). Default 1000 burst, 100/s (nghttp2: 1000, 33/s).
    pub remote_reset_budget: Budget,
    /// Channels this end resets or refuses because of the peer (refused opens, data after FIN,
    /// oversize messages). Past it the session ends with LIMIT (CVE-2019-9514). Default 1000
    /// burst, 100/s; h2 caps locally caused resets at 1024.
    pub local_reset_budget: Budget,
    /// Zero-length DATA frames without FIN the peer may send in a row before the session ends
    /// with LIMIT (CVE-2019-9518); any DATA with payload resets the count. Default 1000.
    pub max_empty_frames: u32,
    /// RESETs the peer provoked (refused opens, channel violations) queued for sending before
    /// the session ends with LIMIT: a peer that provokes replies but does not read them
    /// (CVE-2019-9515). Resets the application makes are not counted: one per channel at most.
    /// Default 1024.
    pub max_control_queue: usize,
    /// How long a channel may wait for credit with data to send, making no progress, before
    /// it is reset with TIMEOUT (checked every quarter of it). `None`: wait as long as the
    /// peer likes. Default `None`: a reader that does not keep up is ordinary backpressure,
    /// and its window already bounds the memory. A server facing untrusted peers that open
    /// downloads and never read (or return credit a few bytes at a time, CVE-2019-9511) can
    /// set it to free such channels and their send buffers.
    pub send_stall_timeout: Option<Duration>,
    /// Seed of the channel table's hash and key of the keepalive PING payloads. Peers choose
    /// channel ids, so a seed they cannot know keeps them from choosing ids that collide, and
    /// a peer that does not read cannot forge PING answers; the `wsmux` crate draws a random
    /// one for every session. The default is fixed, which keeps a bare proto session
    /// deterministic.
    pub hash_seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            initial_window: 256 * 1024,
            max_channel_window: 256 * 1024,
            max_frame_payload: 16 * 1024,
            max_message_size: 16 * 1024 * 1024,
            max_channels: 256,
            session_window: 256 * 1024,
            max_session_window: 16 * 1024 * 1024,
            session_send_buffer: 1024 * 1024,
            max_session_send_buffer: 16 * 1024 * 1024,
            max_reassembly: 32 * 1024 * 1024,
            memory_budget: None,
            max_metadata: 16 * 1024,
            accept_backlog: 256,
            send_buffer: 256 * 1024,
            keepalive_interval: Some(Duration::from_secs(15)),
            keepalive_timeout: Duration::from_secs(15),
            drain_timeout: Duration::from_secs(10),
            remote_reset_budget: Budget { burst: 1000, per_second: 100 },
            local_reset_budget: Budget { burst: 1000, per_second: 100 },
            max_empty_frames: 1000,
            max_control_queue: 1024,
            send_stall_timeout: None,
            hash_seed: 0x5EED_0FC4_A77E_1500,
        }
    }
}

impl Config {
    /// The settings this end announces, raised to the spec minimums where the config is lower.
    pub fn settings(&self) -> Settings {
        let d = Settings::DEFAULT;
        Settings {
            version: d.version,
            initial_window: self.initial_window.max(d.initial_window),
            max_frame_payload: self.max_frame_payload.max(d.max_frame_payload),
            max_message_size: self.max_message_size.max(d.max_message_size),
            max_channels: self.max_channels,
            session_window: self.session_window.max(d.session_window),
        }
    }

    /// The largest WebSocket message a peer may send under this config: the header, an OPEN's
    /// route and (maximal, u16-bounded) metadata, and a full frame payload. Set the WebSocket
    /// layer's message limit to this so oversize messages fail there, before allocation.
    pub fn max_ws_message(&self) -> usize {
        let s = self.settings();
        crate::frame::HEADER_LEN + crate::frame::MAX_OPEN_OVERHEAD + s.max_frame_payload as usize
    }
}
