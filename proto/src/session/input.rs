//! Input: what arrives from the peer (frames, the transport's end) and from the clock.
//!
//! Every peer-controlled value is checked here before it touches channel state; a violation
//! becomes a session error (GOAWAY with the code) or a channel reset, never a panic.

use std::time::Instant;

use bytes::Bytes;

use super::{Event, Incoming, Session, State};
use crate::channel::{RecvState, SendState};
use crate::code::ErrorCode;
use crate::error::{ChannelError, SessionError};
use crate::flow::credit_cost;
use crate::frame::{self, Frame, Open};
use crate::id::ChannelId;
use crate::settings::{Settings, VERSION};

impl Session {
    // ----- input -----

    /// Handles one received WebSocket binary message: one frame, or a PACK of several, handled
    /// in order as if each had come alone.
    pub fn handle_message(&mut self, now: Instant, msg: Bytes) {
        if self.state == State::Closed {
            return;
        }
        self.now = self.now.max(now);
        self.stats.messages_received += 1;
        self.stats.bytes_received += msg.len() as u64;
        let frames = match frame::frames_of(msg) {
            Ok(frames) => frames,
            Err(e) => return self.fail(SessionError::from_decode(&e)),
        };
        for frame in frames {
            self.stats.frames_received += 1;
            match frame {
                Ok(frame) => self.handle_frame(now, frame),
                Err(e) => return self.fail(SessionError::from_decode(&e)),
            }
            if self.state == State::Closed {
                return;
            }
        }
    }

    /// Handles a WebSocket text message: a protocol error (wsmux frames are binary).
    pub fn handle_text(&mut self) {
        self.violation(ErrorCode::PROTOCOL, "text message received; wsmux frames are binary");
    }

    /// Handles a breach of the WebSocket protocol itself (RFC 6455: an unmasked client frame, a
    /// fragmented control frame, reserved bits): a PROTOCOL session error, so the GOAWAY and the
    /// WebSocket close (1002) say so. Nothing more is read from the transport after it.
    pub fn handle_websocket_violation(&mut self, reason: &str) {
        self.violation(ErrorCode::PROTOCOL, &format!("websocket: {reason}"));
    }

    /// Handles a WebSocket message (or the fragments of one) longer than the WebSocket layer's
    /// limit, refused before it was buffered: a LIMIT session error, and the WebSocket closes
    /// with 1009 ("message too big", RFC 6455 section 7.4.1) instead of LIMIT's usual 1008.
    /// Nothing more is read from the transport after it.
    pub fn handle_websocket_too_large(&mut self, reason: &str) {
        if self.state != State::Closed {
            self.close_too_big = true;
        }
        self.violation(ErrorCode::LIMIT, &format!("websocket: {reason}"));
    }

    /// Handles the end of the transport. Channels the peer had finished stay readable; every
    /// other channel fails with [`SessionError::ConnectionLost`] (or the peer's GOAWAY error).
    pub fn handle_transport_closed(&mut self, reason: &str) {
        if self.state == State::Closed {
            return;
        }
        // A GOAWAY with an error code explains the close that follows it.
        let err = self
            .peer_goaway_error()
            .filter(|e| e.code() != ErrorCode::NO_ERROR)
            .unwrap_or_else(|| SessionError::ConnectionLost(reason.to_owned()));
        let active = self.local_count + self.peer_count > 0;
        // A drain that completed, or that the peer's GOAWAY(NO_ERROR) announced, ends cleanly
        // even if channels were cut (they fail with the error above).
        let peer_said_clean =
            self.peer_goaway.as_ref().is_some_and(|(c, _)| *c == ErrorCode::NO_ERROR);
        let graceful = self.state == State::Draining && (!active || peer_said_clean);
        self.control.clear();
        self.close_channels(&err);
        self.enter_closed(if graceful { None } else { Some(err) });
    }

    /// Handles the passing of time: keepalive, drain and stall deadlines.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        self.now = self.now.max(now);
        if let Err(timeout) = self.keepalive.on_timeout(now) {
            self.fail(SessionError::KeepaliveTimeout(timeout));
            return;
        }
        if self.stall_check.is_some_and(|at| now >= at) {
            self.check_stalls(now);
        }
        if self.drain_deadline.is_some_and(|d| now >= d) {
            // Whoever sent the GOAWAY is the one whose drain ran out.
            let err = self.peer_goaway_error().unwrap_or(SessionError::LocallyClosed);
            self.close_channels(&err);
            let ended = self.peer_goaway_error().filter(|e| e.code() != ErrorCode::NO_ERROR);
            self.enter_closed(ended);
        }
    }

    fn handle_frame(&mut self, now: Instant, frame: Frame) {
        if !self.settings_received {
            return match frame {
                Frame::Settings(s) => self.on_settings(s),
                _ => self.violation(ErrorCode::PROTOCOL, "first frame is not SETTINGS"),
            };
        }
        match frame {
            Frame::Settings(_) => self.violation(ErrorCode::PROTOCOL, "second SETTINGS frame"),
            Frame::Data(d) => self.on_data(now, d.id, d.payload, d.eom, d.fin),
            Frame::Open(o) => self.on_open(now, o),
            Frame::Window { id, increment } => self.on_window(id, increment),
            Frame::Reset { id, code, reason } => {
                self.on_abort(now, id, false, ChannelError::Reset { code, reason })
            }
            Frame::Stop { id, code, reason } => {
                self.on_abort(now, id, true, ChannelError::Stopped { code, reason })
            }
            Frame::Ping { ack: false, payload } => self.pong = Some(payload),
            Frame::Ping { ack: true, payload } => {
                if self.keepalive.on_pong(now, payload) {
                    self.events.push_back(Event::Pong);
                }
            }
            Frame::GoAway { last_id, code, reason } => self.on_goaway(now, last_id, code, reason),
            Frame::Extension { .. } => {}
        }
    }

    fn on_settings(&mut self, s: Settings) {
        if s.version != VERSION {
            let reason = format!("unsupported version {}; this end speaks {VERSION}", s.version);
            return self.violation(ErrorCode::VERSION, &reason);
        }
        if let Err(why) = s.validate() {
            return self.violation(ErrorCode::PROTOCOL, why);
        }
        // Until now the session credit was the default; it grows to what the peer announced.
        self.send_session.grant(s.session_window - self.peer.session_window);
        // Channels opened before the SETTINGS assumed the default window; top them up.
        let delta = s.initial_window - self.peer.initial_window;
        let mut overflow = false;
        for ch in self.channels.values_mut() {
            overflow |= !ch.credit.grant(delta);
        }
        if overflow {
            return self.violation(ErrorCode::FLOW_CONTROL, "initial window overflows credit");
        }
        self.peer = s;
        self.settings_received = true;
        let ids: Vec<ChannelId> = self.channels.keys().copied().collect();
        for id in ids {
            self.schedule(id);
        }
        self.unblock_session();
        self.events.push_back(Event::OpenCapacity);
    }

    fn on_open(&mut self, now: Instant, open: Open) {
        let Open { id, route, metadata, eom, fin, payload } = open;
        if payload.len() > self.local.max_frame_payload as usize {
            return self.violation(ErrorCode::PROTOCOL, "frame payload exceeds max frame payload");
        }
        if id.opener() != self.side.peer() {
            return self.violation(ErrorCode::PROTOCOL, "OPEN with an id of this end's parity");
        }
        if id.0 <= self.last_peer_id {
            return self.violation(ErrorCode::PROTOCOL, "OPEN reuses or decreases a channel id");
        }
        self.last_peer_id = id.0;
        // The data part takes session credit whatever becomes of the channel; a channel never
        // had any before its OPEN, so its own credit is checked with the rest, below.
        let cost = credit_cost(payload.len(), eom);
        if !self.consume_session(cost) {
            return self.violation(ErrorCode::FLOW_CONTROL, "data exceeds the session's credit");
        }
        let refusal = if self.state != State::Open {
            Some((ErrorCode::REFUSED, "session is going away"))
        } else if metadata.len() > self.config.max_metadata as usize {
            Some((ErrorCode::LIMIT, "metadata exceeds the limit"))
        } else if self.peer_count >= self.config.max_channels {
            Some((ErrorCode::LIMIT, "too many concurrent channels"))
        } else if self.accept_queue.len() >= self.config.accept_backlog {
            Some((ErrorCode::REFUSED, "accept backlog full"))
        } else {
            None
        };
        if let Some((code, reason)) = refusal {
            // The channel never exists; its data part is dropped unread.
            self.stats.opens_refused += 1;
            if !self.local_resets.take(now) {
                return self.violation(ErrorCode::LIMIT, "too many refused opens");
            }
            self.session_bytes_done(cost);
            return self.push_reset(id, code, reason, true);
        }
        let ch = self.new_channel(id);
        self.channels.insert(id, ch);
        self.peer_count += 1;
        self.stats.channels_accepted += 1;
        self.accept_queue.push_back(Incoming { id, route: route.into_owned(), metadata });
        self.events.push_back(Event::Incoming);
        if (!payload.is_empty() || eom || fin) && !self.on_channel_data(now, id, payload, eom, fin)
        {
            self.session_bytes_done(cost);
        }
    }

    fn on_data(&mut self, now: Instant, id: ChannelId, payload: Bytes, eom: bool, fin: bool) {
        let len = payload.len();
        if len > self.local.max_frame_payload as usize {
            return self.violation(ErrorCode::PROTOCOL, "frame payload exceeds max frame payload");
        }
        // Every part takes session credit, whatever the frame's fate: parts dropped below (a
        // channel reset or gone) give it back at once.
        let cost = credit_cost(len, eom);
        if !self.consume_session(cost) {
            return self.violation(ErrorCode::FLOW_CONTROL, "data exceeds the session's credit");
        }
        if !self.on_channel_data(now, id, payload, eom, fin) {
            self.session_bytes_done(cost);
        }
    }

    /// DATA, or an accepted OPEN's data part, once its session credit is accounted for.
    /// Returns whether the payload went into the channel's queue: if not, it was dropped, and
    /// the caller gives its session credit back.
    #[must_use]
    fn on_channel_data(
        &mut self,
        now: Instant,
        id: ChannelId,
        payload: Bytes,
        eom: bool,
        fin: bool,
    ) -> bool {
        let len = payload.len();
        // A frame that carries nothing (no byte, no end of message, no FIN) is only work for us
        // (CVE-2019-9518). Empty messages carry an event; their memory is bounded per channel.
        if len == 0 && !eom && !fin {
            self.empty_frames += 1;
            if self.empty_frames > self.config.max_empty_frames {
                self.violation(ErrorCode::LIMIT, "too many empty DATA frames");
                return false;
            }
        } else if len > 0 {
            self.empty_frames = 0;
        }
        let max_message = self.local.max_message_size as usize;
        let Some(ch) = self.channels.get_mut(&id) else {
            self.unknown_channel(id, "DATA");
            return false;
        };
        if ch.pending_open.is_some() {
            self.violation(ErrorCode::PROTOCOL, "DATA on a channel not yet opened");
            return false;
        }
        match ch.recv {
            RecvState::Open => {}
            // Both directions are over: the frame is dropped, the good data before FIN kept.
            RecvState::Finished if ch.wire_done() => return false,
            RecvState::Finished => {
                self.local_reset(now, id, ErrorCode::STREAM_CLOSED, "data after FIN");
                return false;
            }
            // Reset by us while the peer was still sending: drop quietly.
            RecvState::Reset => return false,
        }
        if !ch.window.consume(credit_cost(len, eom)) {
            self.violation(ErrorCode::FLOW_CONTROL, "data exceeds the channel's credit");
            return false;
        }
        ch.msg_len += len;
        if ch.msg_len > max_message {
            self.local_reset(now, id, ErrorCode::LIMIT, "message exceeds max message size");
            return false;
        }
        if fin && !eom && ch.msg_len > 0 {
            self.local_reset(now, id, ErrorCode::PROTOCOL, "FIN inside a message");
            return false;
        }
        if eom {
            ch.msg_len = 0;
        }
        // A reader waits only on an empty queue: one event when it stops being empty (or the
        // direction ends on it) is all a reader needs, not one per frame. The part paid for its
        // memory in credit: tiny or empty messages cannot make the queue outgrow the window.
        let was_empty = ch.recv_drained();
        ch.push_recv(payload, eom);
        self.unread_cost += credit_cost(len, eom);
        if fin {
            ch.recv = RecvState::Finished;
        }
        if was_empty {
            self.events.push_back(Event::Readable(id));
        }
        if fin {
            self.settle(id);
        }
        true
    }

    fn on_window(&mut self, id: ChannelId, increment: u32) {
        if id.is_session() {
            if !self.send_session.grant(increment) {
                return self.violation(ErrorCode::FLOW_CONTROL, "session credit exceeds 2^32-1");
            }
            return self.unblock_session();
        }
        let Some(ch) = self.channels.get_mut(&id) else {
            return self.unknown_channel(id, "WINDOW");
        };
        if ch.pending_open.is_some() {
            return self.violation(ErrorCode::PROTOCOL, "WINDOW on a channel not yet opened");
        }
        if !ch.credit.grant(increment) {
            return self.violation(ErrorCode::FLOW_CONTROL, "credit exceeds 2^32-1");
        }
        self.schedule(id);
    }

    /// RESET (`stop` false: both directions end) or STOP (`stop`: only this end's sending
    /// ends): one budget, the same checks of the channel.
    fn on_abort(&mut self, now: Instant, id: ChannelId, stop: bool, error: ChannelError) {
        let what = if stop { "STOP" } else { "RESET" };
        self.stats.resets_received += 1;
        if !self.remote_resets.take(now) {
            return self.violation(ErrorCode::LIMIT, "too many RESET and STOP frames");
        }
        let Some(ch) = self.channels.get_mut(&id) else {
            return self.unknown_channel(id, what);
        };
        if ch.pending_open.is_some() {
            return self
                .violation(ErrorCode::PROTOCOL, &format!("{what} on a channel not yet opened"));
        }
        if stop {
            if matches!(ch.send, SendState::Finished | SendState::Reset) {
                return; // that direction is over already
            }
            ch.abort_send(error);
            self.events.push_back(Event::Writable(id));
        } else {
            if ch.wire_done() {
                return; // nothing left to abort
            }
            if ch.recv == RecvState::Finished {
                // The peer's data is complete (FIN came first): it stays readable; only our
                // sending ends.
                ch.abort_send(error);
            } else {
                ch.set_reset(error);
            }
            self.wake_both(id);
        }
        self.settle(id);
    }

    fn on_goaway(&mut self, now: Instant, last_id: ChannelId, code: ErrorCode, reason: String) {
        self.goaway_received = true;
        self.peer_goaway = Some((code, reason.clone()));
        // Our opens above `last_id` were never processed: they fail as refused, retryable.
        let refused: Vec<ChannelId> = self
            .channels
            .values()
            .filter(|c| c.id.opener() == self.side && c.id > last_id && !c.wire_done())
            .map(|c| c.id)
            .collect();
        for id in refused {
            if let Some(ch) = self.channels.get_mut(&id) {
                let reason = "not processed before the peer's GOAWAY".to_owned();
                ch.set_reset(ChannelError::Reset { code: ErrorCode::REFUSED, reason });
            }
            self.wake_both(id);
            self.settle(id);
        }
        self.events.push_back(Event::GoAway { code, reason });
        self.events.push_back(Event::OpenCapacity);
        self.enter_draining(now);
    }

    /// A frame for a channel not in the table: dropped if the id was used before (the channel
    /// ended; frames in flight are normal), a protocol error if it was never opened. Knowing
    /// which is which needs only the highest id of each side, so nothing is remembered per id.
    fn unknown_channel(&mut self, id: ChannelId, what: &str) {
        let last = if id.opener() == self.side { self.last_local_id } else { self.last_peer_id };
        if id.0 > last {
            let reason = format!("{what} on channel {id}, which was never opened");
            self.violation(ErrorCode::PROTOCOL, &reason);
        }
    }
}
