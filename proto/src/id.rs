//! Channel ids and the side of the connection that opened them.
//!
//! The low bit of an id names its opener: clients open odd ids, servers even ids, and 0 is the
//! session itself. Ids only grow within a session and are never reused.

use std::fmt;

/// Which end of the WebSocket a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The end that sent the HTTP upgrade request; opens odd channel ids.
    Client,
    /// The end that answered the upgrade; opens even channel ids.
    Server,
}

impl Side {
    /// The other end.
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }

    /// The first channel id this side opens.
    pub(crate) fn first_id(self) -> ChannelId {
        match self {
            Side::Client => ChannelId(1),
            Side::Server => ChannelId(2),
        }
    }
}

/// A channel id as carried in the frame header (a `u32`, big-endian on the wire).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u32);

impl ChannelId {
    /// The session itself: the id of SETTINGS, PING and GOAWAY frames.
    pub const SESSION: ChannelId = ChannelId(0);

    /// Whether this is the session id 0.
    pub fn is_session(self) -> bool {
        self.0 == 0
    }

    /// The side that opened this channel (meaningless for id 0).
    pub fn opener(self) -> Side {
        if self.0 & 1 == 1 {
            Side::Client
        } else {
            Side::Server
        }
    }

    /// The next id the same side may open, or `None` once the id space is exhausted.
    pub(crate) fn next(self) -> Option<ChannelId> {
        self.0.checked_add(2).map(ChannelId)
    }
}

impl fmt::Debug for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_bit_names_the_opener() {
        assert_eq!(ChannelId(1).opener(), Side::Client);
        assert_eq!(ChannelId(2).opener(), Side::Server);
        assert_eq!(Side::Client.first_id().opener(), Side::Client);
        assert_eq!(Side::Server.first_id().opener(), Side::Server);
    }

    #[test]
    fn id_space_ends_without_wrapping() {
        assert_eq!(ChannelId(u32::MAX).next(), None);
        assert_eq!(ChannelId(u32::MAX - 2).next(), Some(ChannelId(u32::MAX)));
    }
}
