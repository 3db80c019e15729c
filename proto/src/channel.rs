//! One channel's state: its two directions, their queues and their credit.
//!
//! The session owns every `Channel` and decides what frames mean; this file only keeps the
//! per-channel bookkeeping consistent (what may be sent next, what the application may read).

use std::collections::VecDeque;

use bytes::Bytes;

use crate::error::ChannelError;
use crate::flow::{credit_cost, RecvWindow, SendCredit, PART_CHARGE};
use crate::frame::{Data, Frame, Open};
use crate::id::ChannelId;

/// The smallest DATA payload sent while more of the message waits (PROTOCOL.md section 8).
pub(crate) const MIN_CHUNK: usize = 1024;

/// The sending direction.
///
/// ```text
///          finish()              FIN transmitted
///   Open ------------> Finishing ---------------> Finished
///     |                    |
///     +--------------------+--- RESET sent or received, session error ---> Reset
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendState {
    Open,
    Finishing,
    Finished,
    Reset,
}

/// The receiving direction.
///
/// ```text
///          FIN received
///   Open --------------> Finished
///     |
///     +--- RESET sent or received, session error ---> Reset
/// ```
/// Data buffered before `Finished` stays readable; `Reset` drops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecvState {
    Open,
    Finished,
    Reset,
}

/// A piece of a message handed to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The bytes.
    pub data: Bytes,
    /// Whether these bytes end a message.
    pub eom: bool,
}

#[derive(Debug)]
pub(crate) struct Channel {
    pub(crate) id: ChannelId,
    /// Route and metadata of an OPEN this end has not transmitted yet (boxed: an idle channel
    /// carries none, and should cost little).
    pub(crate) pending_open: Option<Box<(std::borrow::Cow<'static, str>, Bytes)>>,

    pub(crate) send: SendState,
    send_queue: VecDeque<Bytes>,
    send_offset: usize,
    pub(crate) queued: usize,
    pub(crate) credit: SendCredit,
    /// Emit `Writable` once `queued` drops to this many bytes or fewer.
    pub(crate) wake_writer_at: Option<usize>,
    /// Since when the channel has had data to send and too little credit, with no frame
    /// sent (see `Config::send_stall_timeout`).
    pub(crate) stalled_since: Option<std::time::Instant>,

    pub(crate) recv: RecvState,
    recv_queue: VecDeque<Chunk>,
    pub(crate) buffered: usize,
    pub(crate) window: RecvWindow,
    /// Bytes of the incoming message received so far.
    pub(crate) msg_len: usize,
    /// Credit read by the application and not yet sent in a WINDOW frame.
    pub(crate) credit_owed: u32,

    /// Why the channel failed, once it has (boxed, for the size of idle channels).
    pub(crate) error: Option<Box<ChannelError>>,
    /// The application dropped its handle: free the state once the wire is done with it.
    pub(crate) released: bool,
    /// Counted against the concurrency limit of its opener's peer.
    pub(crate) counted: bool,
    /// Queued in the session's round-robin of channels with something to send.
    pub(crate) scheduled: bool,
    /// Queued in the session's list of channels owing a WINDOW frame.
    pub(crate) owes_window: bool,
    /// Released while finishing and the peer still sending: RESET CANCEL once FIN is out.
    pub(crate) cancel_after_fin: bool,
    /// What the unread chunks cost, and took in credit: their bytes plus [`PART_CHARGE`] each.
    unread_cost: usize,
    /// Bytes a joining reader took of the current message, or of the whole message it returned
    /// last (see `Session::read_joining`): counted in the session's total of held messages.
    pub(crate) partial_read: usize,
    /// `partial_read` is a whole message the reader handed on: let go at its next read.
    pub(crate) holds_message: bool,
    /// A message was refused as larger than the peer accepts: the sending direction may not
    /// end with a clean FIN.
    pub(crate) lost_message: bool,
    /// Why the receiving direction ended, when this end stopped it (see
    /// `Session::stop_receiving`) while the channel lives on.
    pub(crate) recv_error: Option<Box<ChannelError>>,
    /// A STOP to send once the pending OPEN is out.
    pub(crate) stop_after_open: Option<Box<Frame>>,
    /// Waits in the session's list of channels short of session credit.
    pub(crate) session_blocked: bool,
    /// Its writer waits in the session's list for room in the session send buffer.
    pub(crate) waits_session_buffer: bool,
    /// What resets and releases dropped, for the session's totals (taken by `Session::settle`).
    pub(crate) dropped: Dropped,
}

/// Bytes a channel dropped without the application reading or the peer receiving them: the
/// session gives their session credit back and takes them off its totals.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Dropped {
    /// What unread chunks dropped took in credit (bytes plus [`PART_CHARGE`] each).
    pub(crate) recv_cost: usize,
    /// Queued bytes dropped unsent.
    pub(crate) send_bytes: usize,
}

/// The largest queue capacity (in messages) a channel's state keeps for reuse.
const SPARE_QUEUE_CAPACITY: usize = 8;

impl Channel {
    pub(crate) fn new(id: ChannelId, send_credit: u32, recv_window: u32, max_window: u32) -> Self {
        Channel {
            id,
            pending_open: None,
            send: SendState::Open,
            send_queue: VecDeque::new(),
            send_offset: 0,
            queued: 0,
            credit: SendCredit::new(send_credit),
            wake_writer_at: None,
            stalled_since: None,
            recv: RecvState::Open,
            recv_queue: VecDeque::new(),
            buffered: 0,
            window: RecvWindow::new(recv_window, max_window),
            msg_len: 0,
            credit_owed: 0,
            error: None,
            released: false,
            counted: true,
            scheduled: false,
            owes_window: false,
            cancel_after_fin: false,
            unread_cost: 0,
            partial_read: 0,
            holds_message: false,
            lost_message: false,
            recv_error: None,
            stop_after_open: None,
            session_blocked: false,
            waits_session_buffer: false,
            dropped: Dropped::default(),
        }
    }

    /// The state of a new channel `id`, in this one's allocation and with its queues' (empty:
    /// the session clears them when it keeps a state) capacity: channels come and go by the
    /// thousand (a call each), and allocating three times for each one showed in the cost of a
    /// call.
    pub(crate) fn reuse(
        &mut self,
        id: ChannelId,
        send_credit: u32,
        recv_window: u32,
        max_window: u32,
    ) {
        let send_queue = std::mem::take(&mut self.send_queue);
        let recv_queue = std::mem::take(&mut self.recv_queue);
        debug_assert!(send_queue.is_empty() && recv_queue.is_empty());
        *self = Channel {
            send_queue,
            recv_queue,
            ..Channel::new(id, send_credit, recv_window, max_window)
        };
    }

    /// Whether the state is small enough to keep for reuse once the channel is gone (a
    /// channel that queued many messages keeps large queues).
    pub(crate) fn reusable(&self) -> bool {
        self.send_queue.capacity() <= SPARE_QUEUE_CAPACITY
            && self.recv_queue.capacity() <= SPARE_QUEUE_CAPACITY
    }

    /// Both directions are over on the wire (FIN or RESET each way).
    pub(crate) fn wire_done(&self) -> bool {
        matches!(self.send, SendState::Finished | SendState::Reset)
            && matches!(self.recv, RecvState::Finished | RecvState::Reset)
    }

    /// Whether `Session::settle` may have work here: dropped data to account for, a partial
    /// read to let go of, or a channel over on the wire (its count, then its state, to free).
    /// Cheap, for the path of every frame sent.
    pub(crate) fn unsettled(&self) -> bool {
        self.dropped.recv_cost + self.dropped.send_bytes > 0
            || (self.partial_read > 0 && (self.recv == RecvState::Reset || self.released))
            || self.wire_done()
    }

    /// Nothing is left for anyone: the state can be freed.
    pub(crate) fn removable(&self) -> bool {
        self.released && self.wire_done() && self.pending_open.is_none()
    }

    /// Whether any message (empty ones too) waits to be sent.
    pub(crate) fn has_queued(&self) -> bool {
        !self.send_queue.is_empty()
    }

    pub(crate) fn enqueue(&mut self, msg: Bytes) {
        self.queued += msg.len();
        self.send_queue.push_back(msg);
    }

    /// Whether the channel can put a frame on the wire now.
    ///
    /// A peer that returns credit a few bytes at a time must not get a frame per WINDOW: DATA
    /// waits until the credit covers [`MIN_CHUNK`] bytes or the rest of the message.
    /// `session` is the session credit left: a frame needs both.
    pub(crate) fn sendable(&self, session: usize) -> bool {
        if self.pending_open.is_some() {
            return true;
        }
        match self.send {
            SendState::Open | SendState::Finishing => match self.send_queue.front() {
                Some(front) => !self.front_blocked(front, self.credit.available().min(session)),
                None => self.send == SendState::Finishing,
            },
            SendState::Finished | SendState::Reset => false,
        }
    }

    /// Whether data waits to be sent and the credit (the channel's, and `session`'s) does not
    /// cover the next frame (see [`Channel::front_blocked`]).
    pub(crate) fn credit_blocked(&self, session: usize) -> bool {
        matches!(self.send, SendState::Open | SendState::Finishing)
            && self.pending_open.is_none()
            && self.send_queue.front().is_some_and(|front| {
                self.front_blocked(front, self.credit.available().min(session))
            })
    }

    /// Whether the channel could send with its own credit but the session credit left,
    /// `session`, is too little: it waits for a WINDOW on channel 0.
    pub(crate) fn blocked_by_session(&self, session: usize) -> bool {
        self.credit_blocked(session) && !self.credit_blocked(usize::MAX)
    }

    /// Whether `credit` does not cover the next frame of `front`, the message at the head of
    /// the queue: a part of at least MIN_CHUNK bytes, or the rest of the message (an empty
    /// message is a part of none), with its part charge (PROTOCOL.md section 8).
    fn front_blocked(&self, front: &Bytes, credit: usize) -> bool {
        let rest = front.len() - self.send_offset;
        credit < rest.min(MIN_CHUNK) + PART_CHARGE
    }

    /// Builds the next frame: the OPEN if not yet sent, else DATA, with at most `max_payload`
    /// bytes and within the credit, the channel's and `session`'s (the session credit left).
    /// FIN rides on the frame that empties a finishing queue. Returns the frame and the credit
    /// it took.
    pub(crate) fn next_frame(&mut self, max_payload: usize, session: usize) -> (Frame, usize) {
        let mut payload = Bytes::new();
        let mut eom = false;
        let credit = self.credit.available().min(session);
        // Without credit for a part, a pending OPEN goes out alone (it costs none).
        let room = credit.checked_sub(PART_CHARGE);
        if let (Some(room), SendState::Open | SendState::Finishing) = (room, self.send) {
            if let Some(front) = self.send_queue.front() {
                let n = (front.len() - self.send_offset).min(room).min(max_payload);
                eom = self.send_offset + n == front.len();
                payload = if eom && self.send_offset == 0 {
                    // The whole message: moved, not sliced (a slice costs a reference count,
                    // and a first one an allocation for a buffer that came from a `Vec`).
                    self.send_queue.pop_front().unwrap_or_default()
                } else {
                    let part = front.slice(self.send_offset..self.send_offset + n);
                    if eom {
                        self.send_queue.pop_front();
                    }
                    part
                };
                self.stalled_since = None; // progress
                self.send_offset = if eom { 0 } else { self.send_offset + n };
                self.credit.spend(credit_cost(n, eom));
                self.queued -= n;
            }
        }
        let fin = self.send == SendState::Finishing && self.send_queue.is_empty();
        if fin {
            self.send = SendState::Finished;
        }
        let (id, cost) = (self.id, credit_cost(payload.len(), eom));
        let frame = match self.pending_open.take().map(|b| *b) {
            Some((route, metadata)) => Frame::Open(Open { id, route, metadata, eom, fin, payload }),
            None => Frame::Data(Data { id, eom, fin, payload }),
        };
        (frame, cost)
    }

    /// Drops everything queued for sending (after a reset).
    pub(crate) fn clear_send(&mut self) {
        self.dropped.send_bytes += self.queued;
        self.send_queue.clear();
        self.send_offset = 0;
        self.queued = 0;
    }

    /// What the unread chunks cost now: their bytes plus [`CHUNK_COST`] each.
    pub(crate) fn unread_cost(&self) -> usize {
        self.unread_cost
    }

    /// Queues a received part for the application (nothing, for an empty frame without EOM).
    /// Its credit (see `credit_cost`) was taken: what the queue costs never passes the window.
    pub(crate) fn push_recv(&mut self, data: Bytes, eom: bool) {
        if data.is_empty() && !eom {
            return;
        }
        self.unread_cost += credit_cost(data.len(), eom);
        self.buffered += data.len();
        // A received payload shared with something else is a slice of the transport's read
        // buffer: kept, it would pin that whole buffer (amplifying what the window allows) and
        // force the transport to reallocate the buffer on its next read, which measured slower
        // than this copy. A payload it owns alone (a reassembled, fragmented WebSocket message)
        // is kept as it is.
        let data = if data.is_unique() { data } else { Bytes::copy_from_slice(&data) };
        self.recv_queue.push_back(Chunk { data, eom });
    }

    /// Drops unread data (after a reset).
    pub(crate) fn clear_recv(&mut self) {
        self.dropped.recv_cost += self.unread_cost;
        self.recv_queue.clear();
        self.buffered = 0;
        self.unread_cost = 0;
    }

    /// Whether nothing received waits to be read.
    pub(crate) fn recv_drained(&self) -> bool {
        self.recv_queue.is_empty()
    }

    /// The first buffered chunk's length and whether it ends a message.
    pub(crate) fn peek_recv(&self) -> Option<(usize, bool)> {
        self.recv_queue.front().map(|c| (c.data.len(), c.eom))
    }

    /// Takes up to `max` bytes of the first buffered chunk.
    pub(crate) fn pop_recv(&mut self, max: usize) -> Option<Chunk> {
        let front = self.recv_queue.front_mut()?;
        if front.data.len() > max {
            let data = front.data.split_to(max);
            self.buffered -= data.len();
            self.unread_cost -= data.len();
            return Some(Chunk { data, eom: false });
        }
        let chunk = self.recv_queue.pop_front()?;
        self.buffered -= chunk.data.len();
        self.unread_cost -= chunk.data.len() + PART_CHARGE;
        Some(chunk)
    }

    /// Ends only the sending direction with `error` (the peer reset after its own FIN).
    pub(crate) fn abort_send(&mut self, error: ChannelError) {
        self.send = SendState::Reset;
        self.clear_send();
        self.fail_with(error);
    }

    /// Records why the channel failed, unless an earlier cause is recorded.
    pub(crate) fn fail_with(&mut self, error: ChannelError) {
        self.error.get_or_insert_with(|| Box::new(error));
    }

    /// Why the channel failed (a generic error if the cause was not recorded).
    pub(crate) fn failure(&self) -> ChannelError {
        self.error.as_deref().cloned().unwrap_or(ChannelError::Unknown)
    }

    /// Marks both directions reset and drops both queues.
    pub(crate) fn set_reset(&mut self, error: ChannelError) {
        self.send = SendState::Reset;
        self.recv = RecvState::Reset;
        self.pending_open = None;
        self.clear_send();
        self.clear_recv();
        self.fail_with(error);
    }
}
