//! What the fuzz targets share: the record format of `session_frames` and a small config.

use std::time::Duration;

use wsmux_proto::{Budget, Config, MemoryBudget};

/// One step of a `session_frames` input.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// What to do with `body` (see the target).
    pub ctrl: u8,
    /// The bytes of the step: a WebSocket message from the peer, or an operation's argument.
    pub body: &'a [u8],
}

/// Splits `data` into records `[ctrl u8][len u16 LE][len bytes]`; a short last body is kept as
/// it is, so every input means something.
pub fn records(mut data: &[u8]) -> impl Iterator<Item = Record<'_>> {
    std::iter::from_fn(move || {
        let (&ctrl, rest) = data.split_first()?;
        let (len, rest) = match rest {
            [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
            _ => (rest.len(), &[][..]),
        };
        let (body, rest) = rest.split_at(len.min(rest.len()));
        data = rest;
        Some(Record { ctrl, body })
    })
}

/// Appends one record to `out`: the inverse of [`records`].
pub fn push_record(out: &mut Vec<u8>, ctrl: u8, body: &[u8]) {
    let len = u16::try_from(body.len()).expect("a record body is at most 65535 bytes");
    out.push(ctrl);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
}

/// Limits small enough that a short input reaches them: 8 channels, a backlog of 4, a control
/// queue of 16, budgets of a few events, keepalive every second, a session window of 64 KiB
/// growing to 256 KiB out of a memory budget of 192 KiB.
pub fn small_config() -> Config {
    let mut c = Config::default();
    c.initial_window = 64 * 1024;
    c.max_channels = 8;
    c.accept_backlog = 4;
    c.max_metadata = 64;
    c.send_buffer = 16 * 1024;
    c.keepalive_interval = Some(Duration::from_secs(1));
    c.keepalive_timeout = Duration::from_secs(1);
    c.drain_timeout = Duration::from_secs(2);
    c.remote_reset_budget = Budget { burst: 8, per_second: 2 };
    c.local_reset_budget = Budget { burst: 8, per_second: 2 };
    c.max_empty_frames = 8;
    c.max_control_queue = 16;
    c.session_window = 64 * 1024;
    c.max_session_window = 256 * 1024;
    c.session_send_buffer = 32 * 1024;
    c.max_session_send_buffer = 64 * 1024;
    c.max_reassembly = 128 * 1024;
    c.memory_budget = Some(MemoryBudget::new(192 * 1024));
    c
}
