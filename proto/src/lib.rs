//! The wsmux wire protocol, without IO.
//!
//! This crate owns the byte format of frames ([`frame`]), the channel and session state
//! machines, flow control and the frame scheduler. It never touches a socket, a clock, an
//! executor or a random number generator: input arrives through `handle_*` calls, output
//! leaves through `poll_*` calls, and time is a parameter. The `wsmux` crate drives it over a
//! WebSocket; tests and fuzzers drive it directly.
//!
//! The normative description of the bytes is `PROTOCOL.md` beside this crate.

#![forbid(unsafe_code)]

mod budget;
mod channel;
mod code;
mod config;
mod error;
mod flow;
pub mod frame;
mod id;
pub mod id_hash;
mod keepalive;
mod memory;
pub mod rpc;
mod session;
pub mod settings;

pub use budget::Budget;
pub use channel::Chunk;
pub use code::ErrorCode;
pub use config::Config;
pub use error::{ChannelError, OpenError, SessionError};
pub use flow::{credit_cost, PART_CHARGE};
pub use frame::{DecodeError, Frame};
pub use id::{ChannelId, Side};
pub use memory::MemoryBudget;
pub use session::{Event, Incoming, Read, Session, Stats};
pub use settings::Settings;
