//! The SETTINGS frame's content: what each end tells the other about itself.
//!
//! Every value has a spec default that holds until the peer's SETTINGS arrive, and that default
//! is also the minimum a peer may announce, so nothing sent before the SETTINGS arrived can
//! become a violation afterwards. The exception is MAX_CHANNELS, which a peer may set below its
//! default: an opener keeps at most one channel open until the peer's SETTINGS arrive
//! (PROTOCOL.md section 6).

/// The only protocol version this crate speaks.
pub const VERSION: u32 = 1;

/// Setting identifiers (u16 on the wire). Unknown identifiers are ignored.
pub mod id {
    /// Protocol version; must be present and equal to 1.
    pub const VERSION: u16 = 0x01;
    /// Credit each new channel starts with, in bytes, for the peer's sending.
    pub const INITIAL_WINDOW: u16 = 0x02;
    /// Largest DATA payload (and OPEN data part) the announcing end accepts.
    pub const MAX_FRAME_PAYLOAD: u16 = 0x03;
    /// Largest reassembled message the announcing end accepts.
    pub const MAX_MESSAGE_SIZE: u16 = 0x04;
    /// Most channels opened by the peer that the announcing end keeps open at once.
    pub const MAX_CHANNELS: u16 = 0x05;
    /// Credit the whole session starts with, in bytes, for the peer's sending on all channels.
    pub const SESSION_WINDOW: u16 = 0x06;
}

/// What one end announces in its SETTINGS frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Protocol version (setting 0x01).
    pub version: u32,
    /// Initial per-channel credit granted to the peer, bytes (setting 0x02).
    pub initial_window: u32,
    /// Largest frame payload accepted, bytes (setting 0x03).
    pub max_frame_payload: u32,
    /// Largest message accepted, bytes (setting 0x04).
    pub max_message_size: u32,
    /// Most concurrent peer-opened channels accepted (setting 0x05).
    pub max_channels: u32,
    /// Initial session-wide credit granted to the peer, bytes (setting 0x06).
    pub session_window: u32,
}

impl Settings {
    /// The spec defaults: what an end assumes of its peer until the peer's SETTINGS arrive.
    /// They are also the smallest values a peer may announce (except `max_channels`).
    pub const DEFAULT: Settings = Settings {
        version: VERSION,
        initial_window: 64 * 1024,
        max_frame_payload: 16 * 1024,
        max_message_size: 1024 * 1024,
        max_channels: 100,
        session_window: 64 * 1024,
    };

    pub(crate) fn entries(&self) -> [(u16, u32); 6] {
        [
            (id::VERSION, self.version),
            (id::INITIAL_WINDOW, self.initial_window),
            (id::MAX_FRAME_PAYLOAD, self.max_frame_payload),
            (id::MAX_MESSAGE_SIZE, self.max_message_size),
            (id::MAX_CHANNELS, self.max_channels),
            (id::SESSION_WINDOW, self.session_window),
        ]
    }

    /// Checks the values against the spec minimums; the error names the offending setting.
    pub fn validate(&self) -> Result<(), &'static str> {
        let d = Settings::DEFAULT;
        if self.version != VERSION {
            return Err("unsupported version");
        }
        if self.initial_window < d.initial_window {
            return Err("initial window below the minimum of 65536");
        }
        if self.max_frame_payload < d.max_frame_payload {
            return Err("max frame payload below the minimum of 16384");
        }
        if self.max_message_size < d.max_message_size {
            return Err("max message size below the minimum of 1048576");
        }
        if self.session_window < d.session_window {
            return Err("session window below the minimum of 65536");
        }
        Ok(())
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::DEFAULT
    }
}
