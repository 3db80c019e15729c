//! The session state machine: every channel of one connection, the scheduler, the limits.
//!
//! A [`Session`] is driven from outside, in this order each round:
//!
//! 1. input: [`Session::handle_message`] for each received WebSocket binary message,
//!    [`Session::handle_text`], [`Session::handle_transport_closed`], and
//!    [`Session::handle_timeout`] when the instant from [`Session::poll_timeout`] passes;
//! 2. commands from the application: [`Session::open`], [`Session::send`], [`Session::read`],
//!    [`Session::finish`], [`Session::reset`], [`Session::accept`], [`Session::release`],
//!    [`Session::close`];
//! 3. output: [`Session::poll_transmit`] until `None` (each result is one WebSocket binary
//!    message), [`Session::poll_event`] until `None`, then [`Session::poll_timeout`].
//!
//! Nothing here blocks, allocates without a bound the peer controls, or panics on peer input.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::budget::Bucket;
use crate::channel::{Channel, Chunk, RecvState, SendState};
use crate::code::ErrorCode;
use crate::config::Config;
use crate::error::{ChannelError, OpenError, SessionError};
use crate::flow::PART_CHARGE;
use crate::flow::{SendCredit, SessionWindow};
use crate::frame::{self, Frame};
use crate::id::{ChannelId, Side};
use crate::id_hash::IdHash;
use crate::keepalive::Keepalive;
use crate::memory::Held;

mod input;
use crate::settings::Settings;

/// Something the application may want to react to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// An incoming channel waits in the accept queue.
    Incoming,
    /// The channel has data, an end, or an error to read. It comes when the channel's queue
    /// stops being empty (or the direction ends on an empty queue), not once per frame: a
    /// reader reads until [`Read::Pending`] before it waits for the next one.
    Readable(ChannelId),
    /// The channel's send buffer drained to where its writer asked to be woken, or it failed.
    Writable(ChannelId),
    /// Fewer local channels are open than the peer allows, or the session ended.
    OpenCapacity,
    /// The peer sent GOAWAY: no new channels; channels it accepted still finish.
    GoAway {
        /// The peer's code.
        code: ErrorCode,
        /// The peer's reason.
        reason: String,
    },
    /// A PING was answered: a new round-trip time is in [`Session::stats`].
    Pong,
    /// The session started draining (GOAWAY sent or received): no new channels either way,
    /// so nobody should wait to open or accept one.
    Draining,
    /// The session ended; [`Session::error`] says whether cleanly.
    Closed,
}

/// An incoming channel waiting to be accepted or refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The channel's id.
    pub id: ChannelId,
    /// The route the opener asked for.
    pub route: String,
    /// The opener's metadata.
    pub metadata: Bytes,
}

/// The result of [`Session::read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// Bytes of a message.
    Chunk(Chunk),
    /// Nothing yet; a [`Event::Readable`] follows when there is.
    Pending,
    /// The peer finished its direction and everything was read.
    End,
}

/// Counters of one session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Frames transmitted (a PACK counts as the frames it holds).
    pub frames_sent: u64,
    /// Frames received (a PACK counts as the frames it holds).
    pub frames_received: u64,
    /// WebSocket messages received (fewer than frames when the peer packs them).
    pub messages_received: u64,
    /// Bytes of frames transmitted, headers included.
    pub bytes_sent: u64,
    /// Bytes of frames received, headers included.
    pub bytes_received: u64,
    /// Channels this end opened.
    pub channels_opened: u64,
    /// Channels the peer opened (accepted into the backlog).
    pub channels_accepted: u64,
    /// Opens of the peer refused by this end before the application saw them.
    pub opens_refused: u64,
    /// RESET frames sent.
    pub resets_sent: u64,
    /// RESET frames received.
    pub resets_received: u64,
    /// The latest round-trip time measured with PING.
    pub rtt: Option<std::time::Duration>,
    /// The smoothed round-trip time (7/8 old + 1/8 new).
    pub smoothed_rtt: Option<std::time::Duration>,
    /// Channels open on the wire now (either direction not yet ended), both openers.
    pub open_channels: u32,
    /// Channels whose state is held now: open on the wire, or ended but not yet released by
    /// the application. Returns to 0 once every channel has ended and been dropped.
    pub held_channels: usize,
    /// The session receive window now: the announced SESSION_WINDOW plus its growth.
    pub session_window: u64,
    /// What unread received data costs now, all channels: the bytes plus 64 per unread part.
    /// The bytes are at most `session_window`, the whole at most twice `session_window` plus
    /// twice the channel window.
    pub unread_cost: usize,
    /// Bytes joining readers (`Channel::recv`) hold of unfinished messages now.
    pub reassembly_bytes: u64,
    /// Bytes queued for sending now, all channels.
    pub queued_bytes: usize,
}

/// How often channels are checked for a stall: a quarter of the timeout, at least 1 ms (a
/// timeout of zero must not keep the timer due).
fn stall_period(timeout: Duration) -> Duration {
    (timeout / 4).max(Duration::from_millis(1))
}

/// Channels an end has open at the peer before the peer's SETTINGS arrive (PROTOCOL.md
/// section 6): the peer may announce a MAX_CHANNELS below the spec default.
const OPENS_BEFORE_SETTINGS: u32 = 1;

/// The reason of the RESET that ends a sending direction after a message was refused as larger
/// than the peer accepts (see [`Session::send`]).
const LOST_MESSAGE: &str = "a message exceeded the peer's MAX_MESSAGE_SIZE and was not sent";

/// States of channels gone kept for new ones: enough for a burst of calls, little memory
/// (a few hundred bytes each).
const MAX_SPARE_CHANNELS: usize = 8;

/// Where the session is in its life.
///
/// ```text
///          close() / GOAWAY received            last channel done or drain deadline
///   Open ------------------------------> Draining -----------------------------------> Closed
///     |                                     |
///     +-------------------------------------+--- peer violation, keepalive timeout,
///                                                transport closed ---------------------> Closed
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Draining,
    Closed,
}

/// The protocol state of one connection. See the module documentation for the calling order.
#[derive(Debug)]
pub struct Session {
    side: Side,
    config: Config,
    local: Settings,
    peer: Settings,
    settings_received: bool,
    settings_sent: bool,
    state: State,
    error: Option<SessionError>,
    /// The code and reason of the peer's (latest) GOAWAY.
    peer_goaway: Option<(ErrorCode, String)>,
    /// The session failed on a WebSocket message over the limit: close with 1009.
    close_too_big: bool,

    /// Boxed: the map then holds a pointer per channel, so its spare capacity costs little.
    channels: HashMap<ChannelId, Box<Channel>, IdHash>,
    /// States of channels gone, kept for new ones (at most [`MAX_SPARE_CHANNELS`]). Boxed:
    /// the allocation is what is reused.
    #[allow(clippy::vec_box)]
    spare_channels: Vec<Box<Channel>>,
    next_local_id: Option<ChannelId>,
    last_local_id: u32,
    last_peer_id: u32,
    local_count: u32,
    peer_count: u32,
    accept_queue: VecDeque<Incoming>,
    goaway_received: bool,
    drain_deadline: Option<Instant>,
    /// The next look for channels stalled on credit (with `Config::send_stall_timeout`).
    stall_check: Option<Instant>,

    /// What the peer may still send on all channels together, and our window's size.
    recv_session: SessionWindow,
    /// What this end may still send on all channels together.
    send_session: SendCredit,
    /// Session credit read and not yet sent in a WINDOW on channel 0.
    session_credit_owed: u32,
    /// Channels with data and channel credit, waiting for session credit.
    session_blocked: VecDeque<ChannelId>,
    /// Bytes queued for sending on all channels (free up to `Config::session_send_buffer`).
    queued: Held,
    /// Channels whose writer waits for room in the session send buffer.
    session_writers: Vec<ChannelId>,
    /// What unread chunks cost, and took in session credit, on all channels (bytes plus
    /// `PART_CHARGE` each).
    unread_cost: usize,
    /// Bytes of messages joining readers hold, all channels (free up to the session window).
    held_messages: Held,
    /// The latest instant an input or output call passed in (for reads, which take none).
    now: Instant,

    control: VecDeque<Frame>,
    pong: Option<[u8; 8]>,
    window_queue: VecDeque<ChannelId>,
    ready: VecDeque<ChannelId>,
    events: VecDeque<Event>,
    keepalive: Keepalive,

    remote_resets: Bucket,
    local_resets: Bucket,
    empty_frames: u32,
    stats: Stats,
}

impl Session {
    /// A new session for `side`. Its SETTINGS (and a first PING, if keepalive is on) are
    /// queued at once; one channel may be opened before the peer's SETTINGS arrive, more once
    /// they have.
    pub fn new(side: Side, config: Config, now: Instant) -> Self {
        let local = config.settings();
        let keepalive = Keepalive::new(
            config.keepalive_interval,
            config.keepalive_timeout,
            config.hash_seed,
            now,
        );
        let mut control = VecDeque::new();
        control.push_back(Frame::Settings(local));
        Session {
            side,
            local,
            peer: Settings::DEFAULT,
            settings_received: false,
            settings_sent: false,
            state: State::Open,
            error: None,
            peer_goaway: None,
            close_too_big: false,
            channels: HashMap::with_hasher(IdHash::new(config.hash_seed)),
            spare_channels: Vec::new(),
            next_local_id: Some(side.first_id()),
            last_local_id: 0,
            last_peer_id: 0,
            local_count: 0,
            peer_count: 0,
            accept_queue: VecDeque::new(),
            goaway_received: false,
            drain_deadline: None,
            stall_check: config.send_stall_timeout.and_then(|t| now.checked_add(stall_period(t))),
            recv_session: SessionWindow::new(
                local.session_window,
                config.max_session_window,
                config.memory_budget.clone(),
            ),
            send_session: SendCredit::new(Settings::DEFAULT.session_window),
            session_credit_owed: 0,
            session_blocked: VecDeque::new(),
            queued: Held::new(config.session_send_buffer, config.memory_budget.clone()),
            session_writers: Vec::new(),
            unread_cost: 0,
            held_messages: Held::new(local.session_window, config.memory_budget.clone()),
            now,
            control,
            pong: None,
            window_queue: VecDeque::new(),
            ready: VecDeque::new(),
            events: VecDeque::new(),
            keepalive,
            remote_resets: Bucket::new(config.remote_reset_budget, now),
            local_resets: Bucket::new(config.local_reset_budget, now),
            empty_frames: 0,
            stats: Stats::default(),
            config,
        }
    }

    // ----- queries -----

    /// Which end this session is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The peer's settings (the spec defaults until its SETTINGS arrive).
    pub fn peer_settings(&self) -> &Settings {
        &self.peer
    }

    /// Whether the session has ended; the frames still queued (a GOAWAY) should be sent, then
    /// the WebSocket closed with [`Session::close_code`].
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether the session is draining or closed: no new channels either way.
    pub fn is_closing(&self) -> bool {
        self.state != State::Open
    }

    /// Why the session ended, if not cleanly (`None` while open or after a clean close).
    pub fn error(&self) -> Option<&SessionError> {
        self.error.as_ref()
    }

    /// The WebSocket close code that fits how the session ended (RFC 6455 section 7.4.1): the
    /// table of PROTOCOL.md section 9.4, and 1009 after a WebSocket message over the limit.
    pub fn close_code(&self) -> u16 {
        if self.close_too_big {
            return 1009;
        }
        match self.error.as_ref().map(SessionError::code) {
            None | Some(ErrorCode::NO_ERROR) => 1000,
            Some(ErrorCode::PROTOCOL | ErrorCode::FLOW_CONTROL | ErrorCode::VERSION) => 1002,
            Some(ErrorCode::LIMIT) => 1008,
            Some(_) => 1011,
        }
    }

    /// Sends a PING with the next transmit (unless one is on its way already). Its answer
    /// brings an [`Event::Pong`]; [`Session::pings_answered`] counts them.
    pub fn ping(&mut self, now: Instant) {
        if self.state != State::Closed {
            self.keepalive.ping_now(now);
        }
    }

    /// PINGs answered so far.
    pub fn pings_answered(&self) -> u64 {
        self.keepalive.answered
    }

    /// Counters, with the round-trip time.
    pub fn stats(&self) -> Stats {
        Stats {
            rtt: self.keepalive.latest_rtt,
            smoothed_rtt: self.keepalive.smoothed_rtt,
            open_channels: self.local_count + self.peer_count,
            held_channels: self.channels.len(),
            session_window: self.recv_session.size(),
            unread_cost: self.unread_cost,
            reassembly_bytes: self.held_messages.bytes(),
            queued_bytes: self.queued.bytes() as usize,
            ..self.stats.clone()
        }
    }

    /// Channels whose state is still held (open on the wire or not yet released).
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Channels open on the wire: (opened by this end, opened by the peer).
    pub fn open_channels(&self) -> (u32, u32) {
        (self.local_count, self.peer_count)
    }

    // ----- commands -----

    /// Opens a channel. `first`, if any, is queued as the first message and `fin` finishes the
    /// sending side after it, so route, metadata, message and FIN can leave as ONE frame.
    /// `route` is a `&'static str` (kept as it is, never copied) or a `String`; a borrowed
    /// route is passed as `route.to_owned()`.
    /// No round trip: data follows at once under the default window. Before the peer's
    /// SETTINGS arrive only one channel may be open ([`OpenError::TooManyChannels`]).
    pub fn open(
        &mut self,
        route: impl Into<std::borrow::Cow<'static, str>>,
        metadata: Bytes,
        first: Option<Bytes>,
        fin: bool,
    ) -> Result<ChannelId, OpenError> {
        let route = route.into();
        self.check_open(&route, metadata.len(), first.as_ref().map(Bytes::len))?;
        let id = self.next_local_id.ok_or(OpenError::IdsExhausted)?;
        self.next_local_id = id.next();
        self.last_local_id = id.0;
        let mut ch = self.new_channel(id);
        ch.pending_open = Some(Box::new((route, metadata)));
        if let Some(m) = first {
            // Past the session send buffer, reserved from the budget (as much as it has).
            self.queued.add(m.len(), false);
            ch.enqueue(m);
        }
        if fin {
            ch.send = SendState::Finishing;
        }
        self.channels.insert(id, ch);
        self.local_count += 1;
        self.stats.channels_opened += 1;
        self.schedule(id);
        Ok(id)
    }

    /// Whether [`Session::open`] would open a channel with a route, metadata and first message
    /// of these lengths now, or the error it would return: a caller can wait out
    /// [`OpenError::TooManyChannels`] before it hands its buffers over.
    pub fn check_open(
        &self,
        route: &str,
        metadata_len: usize,
        first_len: Option<usize>,
    ) -> Result<(), OpenError> {
        match self.state {
            State::Closed => {
                let err = self.error.clone().unwrap_or(SessionError::LocallyClosed);
                return Err(OpenError::Session(err));
            }
            State::Draining => return Err(OpenError::GoingAway),
            State::Open => {}
        }
        if route.len() > frame::MAX_ROUTE_LEN {
            return Err(OpenError::RouteTooLong(route.len()));
        }
        if metadata_len > frame::MAX_METADATA_LEN {
            return Err(OpenError::MetadataTooLarge(metadata_len));
        }
        if let Some(size) = first_len {
            let max = self.peer.max_message_size;
            if size > max as usize {
                return Err(OpenError::MessageTooLarge { size, max });
            }
        }
        // Before the peer's SETTINGS its MAX_CHANNELS is unknown, and it may be below the spec
        // default: one channel at a time until they arrive (section 6).
        let cap =
            if self.settings_received { self.peer.max_channels } else { OPENS_BEFORE_SETTINGS };
        if self.local_count >= cap {
            return Err(OpenError::TooManyChannels(cap));
        }
        match self.next_local_id {
            Some(_) => Ok(()),
            None => Err(OpenError::IdsExhausted),
        }
    }

    /// Whether `send` may queue a message on `id` now. If not, an [`Event::Writable`] follows
    /// once the channel's send buffer has room again (or the channel fails).
    pub fn poll_writable(&mut self, id: ChannelId) -> Result<bool, ChannelError> {
        // At least one message may always be queued, whatever the configured buffer.
        let limit = (self.config.send_buffer as usize).max(1);
        let session_room = self.session_send_room();
        let ch = self.sendable_channel(id)?;
        if ch.queued >= limit {
            ch.wake_writer_at = Some(limit.saturating_sub(1));
            return Ok(false);
        }
        if session_room {
            return Ok(true);
        }
        if !ch.waits_session_buffer {
            ch.waits_session_buffer = true;
            self.session_writers.push(id);
        }
        Ok(false)
    }

    /// Whether everything queued on `id` has been handed to the transport. If not, an
    /// [`Event::Writable`] follows when it has.
    pub fn poll_flushed(&mut self, id: ChannelId) -> Result<bool, ChannelError> {
        let ch = self.channels.get_mut(&id).ok_or(ChannelError::Unknown)?;
        if ch.send == SendState::Reset {
            return Err(ch.failure());
        }
        if !ch.has_queued() && ch.pending_open.is_none() && ch.send != SendState::Finishing {
            return Ok(true);
        }
        ch.wake_writer_at = Some(0);
        Ok(false)
    }

    /// [`Session::poll_writable`] and [`Session::send_or_return`] in one: queues `msg` on `id`
    /// if the send buffers have room (`Ok(None)`), or hands it back (`Ok(Some(msg))`) with an
    /// [`Event::Writable`] to follow once they have. The path of every send that need not wait.
    pub fn try_send(
        &mut self,
        id: ChannelId,
        msg: Bytes,
    ) -> Result<Option<Bytes>, (ChannelError, Bytes)> {
        let limit = (self.config.send_buffer as usize).max(1);
        let session_room = self.session_send_room();
        let max = self.peer.max_message_size;
        let session = self.send_session.available();
        // One lookup for the checks, the queue and the schedule: this runs for every message.
        let ch = match sendable_in(&mut self.channels, id) {
            Ok(ch) => ch,
            Err(e) => return Err((e, msg)),
        };
        if ch.queued >= limit {
            ch.wake_writer_at = Some(limit.saturating_sub(1));
            return Ok(Some(msg));
        }
        if !session_room {
            if !ch.waits_session_buffer {
                ch.waits_session_buffer = true;
                self.session_writers.push(id);
            }
            return Ok(Some(msg));
        }
        if msg.len() > max as usize {
            ch.lost_message = true;
            return Err((ChannelError::MessageTooLarge { size: msg.len(), max }, msg));
        }
        let len = msg.len();
        ch.enqueue(msg);
        if !ch.scheduled {
            queue_for_sending(ch, id, session, &mut self.ready, &mut self.session_blocked);
        }
        self.queued.add(len, false);
        Ok(None)
    }

    /// Queues one message on `id`. It does not check the send buffer: call
    /// [`Session::poll_writable`] first to respect it.
    ///
    /// A message larger than the peer's MAX_MESSAGE_SIZE is refused with
    /// [`ChannelError::MessageTooLarge`], and the channel remembers it: its sending direction
    /// can no longer end cleanly (a later [`Session::finish`] or [`Session::release`] resets
    /// it with LIMIT instead of FIN), so the peer never sees a clean end with a message
    /// missing. Use [`Session::check_send`] first to choose another answer instead.
    pub fn send(&mut self, id: ChannelId, msg: Bytes) -> Result<(), ChannelError> {
        self.send_or_return(id, msg).map_err(|(e, _)| e)
    }

    /// [`Session::send`] that hands the message back with the error, so a caller that must
    /// return it need not keep a clone (a shared `Bytes`'s clone is an atomic operation).
    pub fn send_or_return(
        &mut self,
        id: ChannelId,
        msg: Bytes,
    ) -> Result<(), (ChannelError, Bytes)> {
        let max = self.peer.max_message_size;
        let ch = match self.sendable_channel(id) {
            Ok(ch) => ch,
            Err(e) => return Err((e, msg)),
        };
        if msg.len() > max as usize {
            ch.lost_message = true;
            return Err((ChannelError::MessageTooLarge { size: msg.len(), max }, msg));
        }
        let len = msg.len();
        ch.enqueue(msg);
        self.queued.add(len, false);
        self.schedule(id);
        Ok(())
    }

    /// Whether [`Session::send`] would take a message of `len` bytes on `id` (the channel can
    /// send, and the peer accepts the size), without any effect.
    pub fn check_send(&self, id: ChannelId, len: usize) -> Result<(), ChannelError> {
        let ch = self.channels.get(&id).ok_or(ChannelError::Unknown)?;
        match ch.send {
            SendState::Open => {}
            SendState::Finishing | SendState::Finished => return Err(ChannelError::Finished),
            SendState::Reset => return Err(ch.failure()),
        }
        let max = self.peer.max_message_size;
        match len > max as usize {
            true => Err(ChannelError::MessageTooLarge { size: len, max }),
            false => Ok(()),
        }
    }

    fn sendable_channel(&mut self, id: ChannelId) -> Result<&mut Channel, ChannelError> {
        sendable_in(&mut self.channels, id)
    }

    /// Finishes the sending side of `id`: FIN follows the queued data. Finishing twice is
    /// harmless.
    pub fn finish(&mut self, id: ChannelId) -> Result<(), ChannelError> {
        let ch = self.channels.get_mut(&id).ok_or(ChannelError::Unknown)?;
        if ch.lost_message && ch.send == SendState::Open {
            self.reset(id, ErrorCode::LIMIT, LOST_MESSAGE);
            let ch = self.channels.get(&id).ok_or(ChannelError::Unknown)?;
            return Err(ch.failure());
        }
        match ch.send {
            SendState::Open => ch.send = SendState::Finishing,
            SendState::Finishing | SendState::Finished => return Ok(()),
            SendState::Reset => return Err(ch.failure()),
        }
        self.schedule(id);
        Ok(())
    }

    /// Reads up to `max` bytes of the next message part on `id`, giving the credit back. For
    /// a reader that streams what it reads on (a byte stream, a file): what it holds is its own.
    pub fn read(&mut self, id: ChannelId, max: usize) -> Result<Read, ChannelError> {
        self.read_part(id, max, false)
    }

    /// [`Session::read`] for a reader that joins the parts of a message before it hands the
    /// message on (as `Channel::recv` does): what it takes counts as read for credit (so a
    /// message larger than the windows completes), and against the session's bound on held
    /// messages (`Config::max_reassembly`, beyond the initial grant reserved from the memory
    /// budget) until the reader asks for the next message on the channel, or releases it: the
    /// parts of an unfinished message, then the whole message it handed on. A part that would
    /// pass the bound resets the channel with LIMIT, and this returns that error.
    pub fn read_joining(&mut self, id: ChannelId, max: usize) -> Result<Read, ChannelError> {
        self.read_part(id, max, true)
    }

    fn read_part(
        &mut self,
        id: ChannelId,
        max: usize,
        joining: bool,
    ) -> Result<Read, ChannelError> {
        let max = max.max(1);
        if joining {
            self.join_next_part(id, max)?;
        }
        if let Some(chunk) = self.pop_read(id, max) {
            return Ok(Read::Chunk(chunk));
        }
        let ch = self.channels.get_mut(&id).ok_or(ChannelError::Unknown)?;
        match ch.recv {
            RecvState::Open => Ok(Read::Pending),
            RecvState::Finished => Ok(Read::End),
            RecvState::Reset => {
                Err(ch.recv_error.as_deref().cloned().unwrap_or_else(|| ch.failure()))
            }
        }
    }

    /// After a joining read that returned a whole message of `id`: takes the whole messages
    /// that follow it, as long as each arrived as one chunk and they add up to at most
    /// `max_bytes` (each counted with its part charge of 64 bytes, so at most `max_bytes / 64`
    /// messages), and appends them to `out`; returns how many. They are read for credit like
    /// the first, and held with it (against the same bound) until the next joining read. A
    /// reader hands out a run of small messages under one lock this way.
    pub fn read_more_whole(
        &mut self,
        id: ChannelId,
        max_bytes: usize,
        out: &mut impl Extend<Bytes>,
    ) -> usize {
        let (mut taken, mut bytes) = (0, 0);
        loop {
            let Some(ch) = self.channels.get_mut(&id) else { return taken };
            // Each message counts with its part charge, so empty ones are bounded too.
            let fits = |len: usize| bytes + len + PART_CHARGE <= max_bytes;
            let whole = ch.peek_recv().filter(|&(len, eom)| eom && fits(len));
            let Some((len, _)) = whole.filter(|_| ch.holds_message) else { return taken };
            let fits =
                self.held_messages.bytes() + len as u64 <= u64::from(self.config.max_reassembly);
            if !fits || !self.held_messages.add(len, true) {
                return taken;
            }
            ch.partial_read += len;
            let Some(chunk) = self.pop_read(id, len) else { return taken };
            out.extend(Some(chunk.data));
            taken += 1;
            bytes += len + PART_CHARGE;
        }
    }

    /// Lets go of what joining reads of `id` hold against the session's bound (the message
    /// handed out last, or the parts of one being joined): the reader now reads the channel
    /// as a byte stream, with [`Session::read`], which holds nothing.
    pub fn release_held(&mut self, id: ChannelId) {
        let Some(ch) = self.channels.get_mut(&id) else { return };
        ch.holds_message = false;
        self.held_messages.remove(std::mem::take(&mut ch.partial_read));
    }

    /// Takes up to `max` bytes of the first chunk `id` holds, returning their credit (and the
    /// part charge, with the chunk's last byte).
    fn pop_read(&mut self, id: ChannelId, max: usize) -> Option<Chunk> {
        let ch = self.channels.get_mut(&id)?;
        let cost = ch.unread_cost();
        let chunk = ch.pop_recv(max)?;
        let freed = cost - ch.unread_cost();
        self.unread_cost -= freed;
        if ch.recv == RecvState::Open {
            let rtt = self.keepalive.smoothed_rtt;
            if let Some(credit) = ch.window.on_read(freed, self.now, rtt) {
                ch.credit_owed = ch.credit_owed.saturating_add(credit);
                if !ch.owes_window {
                    ch.owes_window = true;
                    self.window_queue.push_back(id);
                }
            }
        }
        self.session_bytes_done(freed);
        Some(chunk)
    }

    /// Whether the peer finished `id` and everything it sent before its FIN has been read: the
    /// next [`Session::read`] returns [`Read::End`]. A reply may then carry FIN with it.
    pub fn read_finished(&self, id: ChannelId) -> bool {
        self.channels.get(&id).is_some_and(|ch| ch.recv == RecvState::Finished && ch.recv_drained())
    }

    /// Whether the peer's FIN on `id` has arrived (unread messages may still precede it).
    pub fn fin_received(&self, id: ChannelId) -> bool {
        self.channels.get(&id).is_some_and(|ch| ch.recv == RecvState::Finished)
    }

    /// Why the sending direction of `id` was aborted (the peer reset it, or the session
    /// ended), or `None` while what this end sends may still arrive. An [`Event::Writable`]
    /// follows when it is aborted.
    pub fn send_stopped(&self, id: ChannelId) -> Option<ChannelError> {
        match self.channels.get(&id) {
            None => Some(ChannelError::Unknown),
            Some(ch) if ch.send == SendState::Reset => Some(ch.failure()),
            Some(_) => None,
        }
    }

    /// Resets `id` in both directions with `code`; unread and unsent data is dropped.
    pub fn reset(&mut self, id: ChannelId, code: ErrorCode, reason: &str) {
        let error = ChannelError::LocallyReset { code, reason: reason.to_owned() };
        // The application's own resets are bounded by its channels (one RESET each), not by
        // the control queue: that bound is for replies the peer provokes.
        self.reset_channel(id, code, reason, error, false);
    }

    /// Stops reading `id`: unread data is dropped, what the peer sends from now on is dropped
    /// on arrival, and the peer is told with STOP (its sending direction ends, its writer gets
    /// [`ChannelError::Stopped`]); this end's own sending goes on. Reads then fail with
    /// [`ChannelError::LocallyStopped`]. Nothing happens if the peer's direction is over.
    pub fn stop_receiving(&mut self, id: ChannelId, code: ErrorCode, reason: &str) {
        let Some(ch) = self.channels.get_mut(&id) else { return };
        if ch.recv != RecvState::Open {
            return;
        }
        ch.recv = RecvState::Reset;
        ch.clear_recv();
        let error = ChannelError::LocallyStopped { code, reason: reason.to_owned() };
        ch.recv_error = Some(Box::new(error));
        let stop = Frame::Stop { id, code, reason: reason.to_owned() };
        match ch.pending_open.is_some() {
            // The STOP must not overtake the OPEN: it goes right after it.
            true => ch.stop_after_open = Some(Box::new(stop)),
            false => self.control.push_back(stop),
        }
        self.events.push_back(Event::Readable(id));
        self.settle(id);
    }

    /// The application dropped its handle to `id`. If the peer may still send, the channel is
    /// reset with CANCEL (nobody will read); otherwise the sending side is finished after its
    /// queued data. The state is freed once the wire is done with it.
    pub fn release(&mut self, id: ChannelId) {
        let Some(ch) = self.channels.get_mut(&id) else { return };
        ch.released = true;
        ch.clear_recv();
        match (ch.recv, ch.send) {
            // A message was refused as too large: the end must not look clean, and LIMIT says
            // why, whether or not the peer may still send (section 5).
            (_, SendState::Open) if ch.lost_message => {
                self.reset(id, ErrorCode::LIMIT, LOST_MESSAGE);
            }
            // Neither finished nor read to the end: abort.
            (RecvState::Open, SendState::Open | SendState::Finished) => {
                self.reset(id, ErrorCode::CANCEL, "channel dropped");
            }
            // Finished but not yet sent: the RESET must not overtake the data and FIN.
            (RecvState::Open, SendState::Finishing) => ch.cancel_after_fin = true,
            (_, SendState::Open) => {
                ch.send = SendState::Finishing;
                self.schedule(id);
            }
            _ => {}
        }
        self.settle(id);
    }

    /// Refuses incoming channel `id` with `code` (NOT_FOUND, REFUSED…) and releases it. Counts
    /// against the budget of locally caused resets, like every refusal: a peer that opens
    /// channels only to have them refused ends the session with LIMIT.
    pub fn refuse(&mut self, now: Instant, id: ChannelId, code: ErrorCode, reason: &str) {
        self.local_reset(now, id, code, reason);
        self.release(id);
    }

    /// Takes the next incoming channel, skipping those that were reset before being accepted.
    pub fn accept(&mut self) -> Option<Incoming> {
        while let Some(incoming) = self.accept_queue.pop_front() {
            match self.channels.get(&incoming.id) {
                // A finished request stays acceptable even after its session ended.
                Some(ch) if ch.recv != RecvState::Reset => return Some(incoming),
                _ => self.release(incoming.id),
            }
        }
        None
    }

    /// Incoming channels waiting in the accept queue.
    pub fn pending_incoming(&self) -> usize {
        self.accept_queue.len()
    }

    /// Starts a graceful close: GOAWAY with `code`, waiting incoming channels refused, no new
    /// channels, open ones finish within the drain timeout, then the session is closed.
    pub fn close(&mut self, now: Instant, code: ErrorCode, reason: &str) {
        if self.state != State::Open {
            return;
        }
        let last_id = ChannelId(self.last_peer_id);
        self.control.push_back(Frame::GoAway { last_id, code, reason: reason.to_owned() });
        // Opens not yet on the wire would follow our GOAWAY: they fail here instead.
        let unsent: Vec<ChannelId> =
            self.channels.values().filter(|c| c.pending_open.is_some()).map(|c| c.id).collect();
        for id in unsent {
            if let Some(ch) = self.channels.get_mut(&id) {
                ch.set_reset(ChannelError::Session(SessionError::LocallyClosed));
            }
            self.wake_both(id);
            self.settle(id);
        }
        while let Some(incoming) = self.accept_queue.pop_front() {
            self.reset(incoming.id, ErrorCode::REFUSED, "session is going away");
            self.release(incoming.id);
        }
        self.events.push_back(Event::OpenCapacity);
        self.enter_draining(now);
    }

    /// Like [`Session::close`], but the drain ends at most `drain` from now, whatever the
    /// configured drain timeout; a drain already under way (ours or the peer's) is shortened
    /// to that deadline if it would end later. How a server shutdown bounds its wait.
    pub fn close_within(&mut self, now: Instant, code: ErrorCode, reason: &str, drain: Duration) {
        self.close(now, code, reason);
        if self.state == State::Draining {
            // A drain too long to represent ends no sooner than the configured one.
            if let Some(by) = now.checked_add(drain) {
                self.drain_deadline = Some(self.drain_deadline.map_or(by, |d| d.min(by)));
            }
        }
    }

    // ----- output -----

    /// The next WebSocket binary message to send: control frames first (SETTINGS, RESET,
    /// GOAWAY, PING answers, PINGs, WINDOW), then one frame per channel with data, round-robin.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        self.now = self.now.max(now);
        let frame = self.next_transmit(now)?;
        Some(frame.to_bytes())
    }

    /// Like [`Session::poll_transmit`], as the frame itself, for a driver that encodes it as it
    /// sees fit: [`Frame::to_bytes`], or [`Frame::to_split_bytes`] to put a large payload in a
    /// WebSocket fragment of its own (RFC 6455 section 5.4) instead of copying it behind its
    /// header.
    pub fn poll_transmit_frame(&mut self, now: Instant) -> Option<Frame> {
        self.now = self.now.max(now);
        self.next_transmit(now)
    }

    fn next_transmit(&mut self, now: Instant) -> Option<Frame> {
        let frame = self.next_frame(now)?;
        self.stats.frames_sent += 1;
        self.stats.bytes_sent += frame.encoded_len() as u64;
        match frame {
            Frame::Reset { .. } | Frame::Stop { .. } => self.stats.resets_sent += 1,
            Frame::Settings(_) => self.settings_sent = true,
            _ => {}
        }
        Some(frame)
    }

    fn next_frame(&mut self, now: Instant) -> Option<Frame> {
        if let Some(frame) = self.control.pop_front() {
            return Some(frame);
        }
        if self.state == State::Closed {
            return None;
        }
        if let Some(payload) = self.pong.take() {
            return Some(Frame::Ping { ack: true, payload });
        }
        if self.keepalive.due {
            return Some(Frame::Ping { ack: false, payload: self.keepalive.take_ping(now) });
        }
        if self.session_credit_owed > 0 {
            let increment = std::mem::take(&mut self.session_credit_owed);
            return Some(Frame::Window { id: ChannelId::SESSION, increment });
        }
        while let Some(id) = self.window_queue.pop_front() {
            let Some(ch) = self.channels.get_mut(&id) else { continue };
            ch.owes_window = false;
            let increment = std::mem::take(&mut ch.credit_owed);
            if increment > 0 && ch.recv == RecvState::Open {
                return Some(Frame::Window { id, increment });
            }
        }
        let max_payload = self.peer.max_frame_payload.min(self.local.max_frame_payload) as usize;
        while let Some(id) = self.ready.pop_front() {
            let session = self.send_session.available();
            let Some(ch) = self.channels.get_mut(&id) else { continue };
            ch.scheduled = false;
            if !ch.sendable(session) {
                if !ch.session_blocked && ch.blocked_by_session(session) {
                    ch.session_blocked = true;
                    self.session_blocked.push_back(id);
                }
                continue;
            }
            let (frame, cost) = ch.next_frame(max_payload, session);
            if let Some(stop) = ch.stop_after_open.take() {
                self.control.push_back(*stop);
            }
            let sent = match &frame {
                Frame::Data(d) => d.payload.len(),
                Frame::Open(o) => o.payload.len(),
                _ => 0,
            };
            let cancel = ch.send == SendState::Finished && std::mem::take(&mut ch.cancel_after_fin);
            self.send_session.spend(cost);
            self.queued.remove(sent);
            if cancel {
                self.wake_session_writers();
                self.reset(id, ErrorCode::CANCEL, "channel dropped");
                return Some(self.after_frame(id, frame));
            }
            // The common case, on the channel already at hand: a lookup less per frame.
            let session = self.send_session.available();
            queue_for_sending(ch, id, session, &mut self.ready, &mut self.session_blocked);
            if ch.wake_writer_at.is_some_and(|at| ch.queued <= at) {
                ch.wake_writer_at = None;
                self.events.push_back(Event::Writable(id));
            }
            let settle = ch.unsettled();
            self.wake_session_writers();
            if settle {
                self.settle(id);
            }
            return Some(frame);
        }
        None
    }

    /// What follows a frame of channel `id` once the channel may have changed under it (a
    /// reset): the general path of [`Session::next_frame`].
    fn after_frame(&mut self, id: ChannelId, frame: Frame) -> Frame {
        let session = self.send_session.available();
        let Some(ch) = self.channels.get_mut(&id) else { return frame };
        queue_for_sending(ch, id, session, &mut self.ready, &mut self.session_blocked);
        if ch.wake_writer_at.is_some_and(|at| ch.queued <= at) {
            ch.wake_writer_at = None;
            self.events.push_back(Event::Writable(id));
        }
        self.settle(id);
        frame
    }

    /// Whether [`Session::poll_transmit`] has something to send (cheap; for waking a driver).
    pub fn has_transmit(&self) -> bool {
        !self.control.is_empty()
            || (self.state != State::Closed
                && (self.pong.is_some()
                    || self.keepalive.due
                    || self.session_credit_owed > 0
                    || !self.window_queue.is_empty()
                    || !self.ready.is_empty()))
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        [self.keepalive.next_timeout(), self.drain_deadline, self.stall_check]
            .into_iter()
            .flatten()
            .min()
    }

    // ----- internals -----

    /// Resets the channels that waited for credit longer than the stall timeout; starts the
    /// clock of those newly blocked.
    fn check_stalls(&mut self, now: Instant) {
        let Some(timeout) = self.config.send_stall_timeout else { return };
        self.stall_check = now.checked_add(stall_period(timeout));
        let mut expired = Vec::new();
        let session = self.send_session.available();
        for ch in self.channels.values_mut() {
            if !ch.credit_blocked(session) {
                ch.stalled_since = None;
            } else if ch
                .stalled_since
                .is_some_and(|since| now.saturating_duration_since(since) >= timeout)
            {
                expired.push(ch.id);
            } else {
                ch.stalled_since.get_or_insert(now);
            }
        }
        for id in expired {
            let reason = format!("no credit to send for {timeout:?}");
            self.reset(id, ErrorCode::TIMEOUT, &reason);
        }
    }

    fn schedule(&mut self, id: ChannelId) {
        let session = self.send_session.available();
        if let Some(ch) = self.channels.get_mut(&id) {
            if ch.scheduled {
                return;
            }
            queue_for_sending(ch, id, session, &mut self.ready, &mut self.session_blocked);
        }
    }

    /// Session credit arrived: the channels that waited for it go back to the round-robin.
    fn unblock_session(&mut self) {
        for _ in 0..self.session_blocked.len() {
            let Some(id) = self.session_blocked.pop_front() else { break };
            if let Some(ch) = self.channels.get_mut(&id) {
                ch.session_blocked = false;
            }
            self.schedule(id);
        }
    }

    /// Whether all channels together may queue another message: below the session send
    /// buffer, or below its maximum with room in the memory budget; and a lone message always.
    fn session_send_room(&self) -> bool {
        let (free, max) = (self.config.session_send_buffer, self.config.max_session_send_buffer);
        let queued = self.queued.bytes() as usize;
        queued == 0
            || queued < free as usize
            || queued < max as usize
                && self.config.memory_budget.as_ref().is_none_or(|b| b.used() < b.limit())
    }

    /// `len` fewer bytes are queued (sent or dropped): the reservation they no longer need
    /// goes back, and writers waiting for room are woken if there is some.
    fn queued_shrank(&mut self, len: usize) {
        self.queued.remove(len);
        self.wake_session_writers();
    }

    /// Wakes the writers that waited for room in the session send buffer, once it has some.
    fn wake_session_writers(&mut self) {
        if self.session_writers.is_empty() || !self.session_send_room() {
            return;
        }
        for id in std::mem::take(&mut self.session_writers) {
            if let Some(ch) = self.channels.get_mut(&id) {
                ch.waits_session_buffer = false;
            }
            self.events.push_back(Event::Writable(id));
        }
    }

    /// Takes `len` bytes of the peer's session credit; `false` (a FLOW_CONTROL violation) if it
    /// had less. The window may grow now (see `SessionWindow::grow`).
    pub(crate) fn consume_session(&mut self, len: usize) -> bool {
        if !self.recv_session.consume(len) {
            return false;
        }
        let grown = self.recv_session.grow();
        self.session_credit_owed = self.session_credit_owed.saturating_add(grown);
        true
    }

    /// What took `len` bytes of session credit was read or discarded: the credit goes back
    /// (batched).
    fn session_bytes_done(&mut self, len: usize) {
        if len == 0 || self.state == State::Closed {
            return;
        }
        let rtt = self.keepalive.smoothed_rtt;
        if let Some(credit) = self.recv_session.on_read(len, self.now, rtt) {
            self.session_credit_owed = self.session_credit_owed.saturating_add(credit);
        }
    }

    /// A joining read of `id` is about to take a part of at most `max` bytes: the message it
    /// returned last is let go of, and the part is counted (or, past the bound, the channel is
    /// reset with LIMIT and the error returned).
    fn join_next_part(&mut self, id: ChannelId, max: usize) -> Result<(), ChannelError> {
        let ch = self.channels.get_mut(&id).ok_or(ChannelError::Unknown)?;
        if std::mem::take(&mut ch.holds_message) {
            self.held_messages.remove(std::mem::take(&mut ch.partial_read));
        }
        let Some((len, eom)) = ch.peek_recv() else { return Ok(()) };
        let part = len.min(max);
        let fits =
            self.held_messages.bytes() + part as u64 <= u64::from(self.config.max_reassembly);
        if fits && self.held_messages.add(part, true) {
            ch.partial_read += part;
            ch.holds_message = eom && len <= max;
            return Ok(());
        }
        let reason = "messages held over the session's bound";
        self.local_reset(self.now, id, ErrorCode::LIMIT, reason);
        let ch = self.channels.get(&id).ok_or(ChannelError::Unknown)?;
        Err(ch.failure())
    }

    /// Gives back everything reserved from the memory budget (the session ended).
    fn release_budget(&mut self) {
        self.recv_session.release();
        self.held_messages.release();
        self.queued.release();
    }

    fn wake_both(&mut self, id: ChannelId) {
        self.events.push_back(Event::Readable(id));
        self.events.push_back(Event::Writable(id));
    }

    /// After a state change of `id`: stop counting it once both directions are over on the
    /// wire, free it once the application released it too, and see whether a drain is done.
    fn settle(&mut self, id: ChannelId) {
        let Some(ch) = self.channels.get_mut(&id) else { return };
        let dropped = std::mem::take(&mut ch.dropped);
        let partial = match ch.recv == RecvState::Reset || ch.released {
            true => std::mem::take(&mut ch.partial_read),
            false => 0,
        };
        if dropped.recv_cost + dropped.send_bytes + partial > 0 {
            self.unread_cost -= dropped.recv_cost;
            self.queued_shrank(dropped.send_bytes);
            self.held_messages.remove(partial);
            self.session_bytes_done(dropped.recv_cost);
        }
        let Some(ch) = self.channels.get_mut(&id) else { return };
        if ch.counted && ch.wire_done() && ch.pending_open.is_none() {
            ch.counted = false;
            if id.opener() == self.side {
                self.local_count -= 1;
                self.events.push_back(Event::OpenCapacity);
            } else {
                self.peer_count -= 1;
            }
        }
        if ch.removable() {
            if let Some(mut ch) = self.channels.remove(&id) {
                if self.spare_channels.len() < MAX_SPARE_CHANNELS && ch.reusable() {
                    ch.clear_send();
                    ch.clear_recv();
                    self.spare_channels.push(ch);
                }
            }
        }
        self.check_drained();
    }

    /// The state of a new channel `id`: a spare one if there is one (see `Channel::reuse`).
    fn new_channel(&mut self, id: ChannelId) -> Box<Channel> {
        let (credit, window) = (self.peer.initial_window, self.local.initial_window);
        let max = self.config.max_channel_window;
        match self.spare_channels.pop() {
            Some(mut ch) => {
                ch.reuse(id, credit, window, max);
                ch
            }
            None => Box::new(Channel::new(id, credit, window, max)),
        }
    }

    /// Queues a RESET. One the peer provoked (`provoked`) counts against the control queue's
    /// bound: a peer that provokes replies and does not read them ends the session.
    fn push_reset(&mut self, id: ChannelId, code: ErrorCode, reason: &str, provoked: bool) {
        if provoked && self.control.len() >= self.config.max_control_queue {
            return self.violation(ErrorCode::LIMIT, "control queue full: peer is not reading");
        }
        self.control.push_back(Frame::Reset { id, code, reason: reason.to_owned() });
    }

    /// A reset this end makes because of something the peer did: counted against the budget.
    fn local_reset(&mut self, now: Instant, id: ChannelId, code: ErrorCode, reason: &str) {
        if !self.local_resets.take(now) {
            return self.violation(ErrorCode::LIMIT, "too many channels reset because of the peer");
        }
        let error = ChannelError::LocallyReset { code, reason: reason.to_owned() };
        self.reset_channel(id, code, reason, error, true);
    }

    fn reset_channel(
        &mut self,
        id: ChannelId,
        code: ErrorCode,
        reason: &str,
        err: ChannelError,
        provoked: bool,
    ) {
        let Some(ch) = self.channels.get_mut(&id) else { return };
        if ch.send == SendState::Reset && ch.recv == RecvState::Reset {
            return;
        }
        // A peer that never saw the OPEN, or that is done with both directions, needs no RESET.
        let tell_peer = ch.pending_open.is_none() && !ch.wire_done();
        ch.set_reset(err);
        if tell_peer {
            self.push_reset(id, code, reason, provoked);
        }
        self.wake_both(id);
        self.settle(id);
    }

    /// The peer broke a rule: GOAWAY with `code`, every channel fails, the session closes.
    fn violation(&mut self, code: ErrorCode, reason: &str) {
        self.fail(SessionError::PeerViolation { code, reason: reason.to_owned() });
    }

    fn fail(&mut self, err: SessionError) {
        if self.state == State::Closed {
            return;
        }
        tracing::debug!(side = ?self.side, error = %err, "session failed");
        self.control.clear();
        if !self.settings_sent {
            // The peer must see our SETTINGS first, or it cannot tell a version mismatch from a
            // broken peer.
            self.control.push_back(Frame::Settings(self.local));
        }
        let last_id = ChannelId(self.last_peer_id);
        let reason = frame::truncate_utf8(&err.to_string(), frame::MAX_REASON_LEN).to_owned();
        self.control.push_back(Frame::GoAway { last_id, code: err.code(), reason });
        self.close_channels(&err);
        self.enter_closed(Some(err));
    }

    /// The peer's GOAWAY as a session error, if it sent one.
    fn peer_goaway_error(&self) -> Option<SessionError> {
        let (code, reason) = self.peer_goaway.clone()?;
        Some(SessionError::PeerGoAway { code, reason })
    }

    /// Every channel not already over in a direction fails in it with `err`. Requests that
    /// arrived complete (with FIN) and wait to be accepted stay acceptable.
    fn close_channels(&mut self, err: &SessionError) {
        self.ready.clear();
        self.window_queue.clear();
        self.pong = None;
        let channels = &mut self.channels;
        self.accept_queue.retain(|incoming| match channels.get_mut(&incoming.id) {
            Some(ch) if ch.recv == RecvState::Finished => true,
            Some(ch) => {
                ch.released = true; // nobody will ever hold it
                false
            }
            None => false,
        });
        let mut woken = Vec::with_capacity(self.channels.len());
        self.channels.retain(|&id, ch| {
            ch.pending_open = None;
            ch.counted = false; // the counts are reset below
            if ch.send != SendState::Finished {
                ch.send = SendState::Reset;
                ch.clear_send();
            }
            if ch.recv == RecvState::Open {
                ch.recv = RecvState::Reset;
            }
            if ch.send == SendState::Reset || ch.recv == RecvState::Reset {
                ch.fail_with(ChannelError::Session(err.clone()));
            }
            woken.push(id);
            !ch.released
        });
        self.local_count = 0;
        self.peer_count = 0;
        for id in woken {
            self.wake_both(id);
        }
    }

    fn enter_draining(&mut self, now: Instant) {
        if self.state == State::Open {
            self.state = State::Draining;
            self.drain_deadline = Some(now + self.config.drain_timeout);
            self.events.push_back(Event::Draining);
        }
        self.check_drained();
    }

    fn check_drained(&mut self) {
        if self.state == State::Draining && self.local_count + self.peer_count == 0 {
            // Drained: a clean end, unless the peer's GOAWAY named an error.
            let ended = self.peer_goaway_error().filter(|e| e.code() != ErrorCode::NO_ERROR);
            self.enter_closed(ended);
        }
    }

    fn enter_closed(&mut self, error: Option<SessionError>) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        self.error = error;
        self.release_budget();
        self.drain_deadline = None;
        self.events.push_back(Event::Closed);
        self.events.push_back(Event::OpenCapacity);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.release_budget();
    }
}

/// Channel `id` of `channels` if it may still send (see [`Session::send`]).
fn sendable_in(
    channels: &mut HashMap<ChannelId, Box<Channel>, IdHash>,
    id: ChannelId,
) -> Result<&mut Channel, ChannelError> {
    let ch = channels.get_mut(&id).ok_or(ChannelError::Unknown)?;
    match ch.send {
        SendState::Open => Ok(ch),
        SendState::Finishing | SendState::Finished => Err(ChannelError::Finished),
        SendState::Reset => Err(ch.failure()),
    }
}

/// Puts channel `ch` (`id`), not yet scheduled, in the round-robin if it can send with the
/// session credit left (`session`), or among those waiting for session credit if only that
/// stops it.
fn queue_for_sending(
    ch: &mut Channel,
    id: ChannelId,
    session: usize,
    ready: &mut VecDeque<ChannelId>,
    session_blocked: &mut VecDeque<ChannelId>,
) {
    if ch.sendable(session) {
        ch.scheduled = true;
        ready.push_back(id);
    } else if !ch.session_blocked && ch.blocked_by_session(session) {
        ch.session_blocked = true;
        session_blocked.push_back(id);
    }
}
