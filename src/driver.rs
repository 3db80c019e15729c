//! The driver: the one future per connection that owns the WebSocket.
//!
//! It moves bytes between the WebSocket and the proto session and nothing else: it reads every
//! message that is ready (in an early poll, see [`Driver::poll_early`], it may read the rest
//! just after) and hands it to proto, asks proto for due timers, writes every frame
//! proto has ready and then flushes ONCE (so an OPEN, its data and FIN written in one go leave
//! as one batch), and wakes the handles proto's events concern. It never waits on one
//! channel's consumer: a slow channel is bounded by its window, so the socket is always read.
//!
//! Its state sits behind a lock, and its write step can run in two places. Mostly it runs in
//! the driver's own poll. But a handle that queues frames while the driver is idle runs that
//! step itself, straight away, with the driver's waker (so whatever the socket must wait for
//! wakes the driver, never the handle; with the read lease on, the lease's waker, see
//! [`Lease`]): a request or reply then leaves without a hand-off to another task, which on a
//! multi-threaded runtime is a wake of another thread. It does this at most once between two
//! rounds; later frames wait for the next round, which writes all that is ready under one
//! flush. A handle that finds the task busy leaves its frames to whoever holds it, who writes
//! them as it lets go (the driver at the end of its poll): no wake, so no hop to another
//! thread either. Either way there is one writer at a time, and frames leave in the order
//! proto gives them.
//!
//! The read step can run in two places too: a task that waits on the session's only channel
//! may run a whole round itself (the read lease, [`Lease`]), so the socket wakes it rather
//! than the driver.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::frame::coding::{Data as OpData, OpCode};
use async_tungstenite::tungstenite::protocol::frame::Frame;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use async_tungstenite::WebSocketStream;
use bytes::BytesMut;
use futures::io::{AsyncRead, AsyncWrite};
use futures::task::AtomicWaker;
use futures::{FutureExt, SinkExt, StreamExt};
use futures_timer::Delay;
use wsmux_proto::Frame as ProtoFrame;

/// Why reading the WebSocket stopped.
enum ReadEnd {
    /// The transport closed or failed.
    Lost(String),
    /// The peer broke the WebSocket protocol.
    Violation(String),
    /// The peer sent a WebSocket message over the limit (a LIMIT session error, close 1009).
    TooLarge(String),
}

impl From<tungstenite::Error> for ReadEnd {
    /// A read error is the peer breaking RFC 6455 (a PROTOCOL session error, close 1002) when
    /// the bytes it sent were wrong: reserved bits, masking, control frames, opcodes, a text
    /// message that is not UTF-8; a message over the WebSocket limit is a LIMIT session error
    /// (close 1009). A connection that ended without a close frame, and IO errors, are a lost
    /// connection.
    fn from(e: tungstenite::Error) -> Self {
        use tungstenite::error::ProtocolError;
        match e {
            tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                ReadEnd::Lost(e.to_string())
            }
            tungstenite::Error::Protocol(_) | tungstenite::Error::Utf8(_) => {
                ReadEnd::Violation(e.to_string())
            }
            tungstenite::Error::Capacity(_) => ReadEnd::TooLarge(e.to_string()),
            e => ReadEnd::Lost(e.to_string()),
        }
    }
}

use crate::error::Error;
use crate::progress::Clock;
use crate::shared::{park, Shared, WriteNow};

/// Frames read or taken for writing per acquisition of the shared lock: handles wait on that
/// lock, so the driver takes it once per batch, not once per frame.
const BATCH: usize = 64;
/// Bytes of frames taken for writing per lock: about two full frames, which then leave as one
/// PACK (a browser pays per WebSocket message and frame), while the scheduler still picks
/// every frame in turn. It is also what a small message on another channel may wait behind:
/// with 64 KiB, tokio's echo p99 under bulk (bench `hol`) went from 193-199 us to 368-1064 us;
/// with 32 KiB it is 203-247 us, and Chromium's download 0.66-0.70x plain (0.73-0.77x at 64).
const BATCH_BYTES: usize = 32 * 1024;
/// Messages read in one poll before the driver yields to other tasks (in one run of early
/// polls, all of them together, see [`Driver::poll_early`]).
pub(crate) const READ_BUDGET: usize = 256;
/// A round run by a reader holding the lease (see [`Lease`]) has the task's timer fire within
/// this: the bound on how long the session waits for a reader that was woken and is not
/// polled.
const LEASE_TICK: Duration = Duration::from_millis(10);
/// Payloads from this size on are sent as a separate WebSocket fragment instead of being
/// copied next to their header. Below it, the copy is cheaper than a second WebSocket frame.
const FRAGMENT_FROM: usize = 4 * 1024;
/// The most bytes one PACK holds (PROTOCOL.md section 4.8): below the smallest WebSocket
/// message limit a receiver may set (82183 bytes, section 12), and room for four full frames
/// of 16 KiB. Frames taken together are packed up to this, large ones too: one WebSocket
/// message, one header, one receiver wake-up for all.
const PACK_MAX: usize = 80 * 1024;

/// The future that runs one connection. Spawn it (or `.await` it) for the session to make
/// progress; it completes when the session has ended and the WebSocket is closed.
///
/// It resolves to `Ok(())` after a clean close and to the session's error otherwise. Dropping
/// it ends the session: every channel fails with a connection-lost error.
#[must_use = "the session makes no progress unless the driver is polled"]
pub struct Driver {
    task: Arc<dyn Drive>,
}

/// The connection's task, behind a lock: the driver polls it, and a handle that queued frames
/// while the driver was idle writes them through it (see [`WriteNow`]).
trait Drive: Send + Sync {
    /// Polls the task; `early`: see [`Driver::poll_early`]. Also returns whether the poll
    /// stopped reading early.
    fn poll_drive(
        &self,
        cx: &mut Context<'_>,
        early: Option<&mut usize>,
    ) -> (Poll<Result<(), Error>>, bool);
    /// The state of the session this task drives.
    fn shared(&self) -> &Shared;
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").finish_non_exhaustive()
    }
}

impl Future for Driver {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.task.poll_drive(cx, None).0
    }
}

/// The task, and how the driver learns that a handle held it while the driver wanted to run
/// (the driver never blocks its thread waiting for a handle's write).
struct Cell<S> {
    task: Mutex<Task<S>>,
    /// The state the task shares with the session's handles (lent to the task's steps).
    shared: Shared,
    /// The driver found the task busy: whoever holds it wakes the driver when done.
    wanted: AtomicBool,
    waker: AtomicWaker,
    /// A handle queued frames while the task was busy: whoever holds it writes them once it
    /// lets go (see [`Cell::write_pending`]), rather than waking the driver, which on a
    /// multi-threaded runtime would often run on another thread.
    write_wanted: AtomicBool,
    lease: Arc<Lease>,
    /// Wakes through `lease`: the waker of a round a reader runs.
    lease_waker: Waker,
    /// The waker of that round's timer.
    tick_waker: Waker,
}

/// The read lease: a task that waits to receive, finding the driver's task free, runs a round
/// of it itself (see [`Cell::read_now`]), with this as the waker of everything that round
/// waits on (the socket, the WebSocket). Readiness then wakes that reader, which reads in its
/// own poll: the answer to a call reaches its caller with no hand-off from the driver's task.
/// Where the runtime's reactor runs on the waiting thread (async-io's `block_on`: async-std,
/// smol), that is no thread hop at all. See [`crate::Config::caller_reads`].
///
/// The holder must not hold up the session: its round also arms the timer to fire within
/// [`LEASE_TICK`], which wakes the driver (see [`Tick`]), and each driver poll
/// takes the socket back. So a holder that is woken but not polled (say, the losing branch of
/// a `select` kept aside) delays the other channels by that much at most. With no holder,
/// this wakes the driver.
struct Lease {
    /// The holder's token (its channel's id + 1); 0 when nobody holds the lease.
    holder: AtomicU64,
    /// The socket's reader waker is this, from a holder's round, and has not fired since: the
    /// next holder's round need not read to be woken (see [`Task::arm_for_lease`]).
    armed: AtomicBool,
    reader: Mutex<Option<Waker>>,
    /// The driver's own waker, from its latest poll.
    driver: Mutex<Option<Waker>>,
}

impl Lease {
    fn park(slot: &Mutex<Option<Waker>>, waker: &Waker) {
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        crate::shared::park(&mut slot, waker);
    }

    fn wake_slot(slot: &Mutex<Option<Waker>>) {
        let waker = slot.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Wake for Lease {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.armed.store(false, Ordering::SeqCst);
        match self.holder.load(Ordering::SeqCst) {
            0 => Lease::wake_slot(&self.driver),
            _ => Lease::wake_slot(&self.reader),
        }
    }
}

/// A holder's round under way: if it unwinds (a panic), the lease ends and the driver is woken,
/// so the socket is not left to a reader that is gone.
struct HolderRound<'a> {
    lease: &'a Lease,
    done: bool,
}

impl Drop for HolderRound<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.lease.holder.store(0, Ordering::SeqCst);
            Lease::wake_slot(&self.lease.driver);
        }
    }
}

/// What the timer of a holder's round wakes: the driver, which takes the socket back (the
/// holder takes it again at its next wait).
struct Tick(Arc<Lease>);

impl Wake for Tick {
    fn wake(self: Arc<Self>) {
        Lease::wake_slot(&self.0.driver);
    }
}

impl<S> Cell<S> {
    /// The task, unless someone else is running it right now.
    fn try_task(&self) -> Option<MutexGuard<'_, Task<S>>> {
        match self.task.try_lock() {
            Ok(task) => Some(task),
            Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}

impl<S> Cell<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Writes the frames handles queued (`write_wanted`), unless someone holds the task: then
    /// the holder writes them as it lets go, for everyone who lets go of the task comes here
    /// (the driver at the end of its poll). So a handle's frames are never left behind: either
    /// the handle finds the task free, or the holder sees the flag (both sides fence between
    /// their write and their read). `by_handle`: as for [`Task::write_inline`].
    fn write_pending(&self, driver: &Waker, by_handle: bool) {
        loop {
            fence(Ordering::SeqCst);
            if !self.write_wanted.load(Ordering::Relaxed) {
                return;
            }
            // Whatever happens (a panic included), the driver hears what it must once the task
            // is let go: `release` is dropped after `task`.
            let mut release = Release { cell: self, driver: None };
            let Some(mut task) = self.try_task() else { return };
            if !self.write_wanted.swap(false, Ordering::SeqCst) {
                return; // written by whoever held the task a moment ago
            }
            release.driver = Some(driver);
            if task.write_inline(&self.shared, driver, by_handle) {
                release.driver = None; // nothing left for the driver to do
            }
        }
    }
}

impl<S> Drive for Cell<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    fn poll_drive(
        &self,
        cx: &mut Context<'_>,
        early: Option<&mut usize>,
    ) -> (Poll<Result<(), Error>>, bool) {
        let mut task = match self.try_task() {
            Some(task) => task,
            None => {
                // A handle is writing: it wakes us when it lets go. Look once more, in case it
                // let go before it could see the flag.
                self.waker.register(cx.waker());
                self.wanted.store(true, Ordering::SeqCst);
                match self.try_task() {
                    Some(task) => task,
                    None => return (Poll::Pending, false),
                }
            }
        };
        self.wanted.store(false, Ordering::SeqCst);
        // The driver takes the socket back: what still names the lease wakes the driver, until
        // a reader's round takes it again.
        if self.shared.caller_reads() {
            self.lease.holder.store(0, Ordering::SeqCst);
            self.lease.armed.store(false, Ordering::SeqCst);
            Lease::park(&self.lease.driver, cx.waker());
            task.tick_waker = None; // left by a holder's round that panicked
        }
        task.early = early.is_some();
        task.stopped_early = false;
        task.read_budget = early.as_deref().copied().unwrap_or(READ_BUDGET);
        let result = task.poll(&self.shared, cx);
        let stopped_early = std::mem::take(&mut task.stopped_early);
        task.early = false;
        if let Some(budget) = early {
            *budget = task.read_budget;
        }
        drop(task);
        if result.is_pending() {
            self.write_pending(cx.waker(), false);
        }
        let stopped_early = stopped_early && result.is_pending();
        (result, stopped_early)
    }

    fn shared(&self) -> &Shared {
        &self.shared
    }
}

impl<S> WriteNow for Cell<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    fn write_now(&self, driver: Waker) {
        self.write_wanted.store(true, Ordering::SeqCst);
        // What the write waits for wakes the lease's holder if there is one, else the driver.
        let waker = if self.shared.caller_reads() { &self.lease_waker } else { &driver };
        self.write_pending(waker, true);
    }

    fn read_now(&self, token: u64, reader: &Waker) -> bool {
        let lease = &self.lease;
        let holder = lease.holder.load(Ordering::SeqCst);
        if holder != 0 && holder != token {
            return false; // another reader reads for everyone
        }
        let ran = {
            // Dropped after the task: wakes the driver if it found the task busy meanwhile.
            let mut release = Release { cell: self, driver: None };
            let Some(mut task) = self.try_task() else { return false };
            // A session that ended closes in the driver's own poll.
            let ran = matches!(task.phase, Phase::Running)
                && lease
                    .holder
                    .compare_exchange(holder, token, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok();
            if ran {
                // Dropped before the task: if the round panics, the driver gets the socket.
                let mut round = HolderRound { lease, done: false };
                Lease::park(&lease.reader, reader);
                let mut cx = Context::from_waker(&self.lease_waker);
                task.tick_waker = Some(self.tick_waker.clone());
                // Set before the round reads: a wake meanwhile clears it, and the round's
                // reading ends with the socket waiting for more, this waker in place.
                let armed = lease.armed.swap(true, Ordering::SeqCst);
                // A whole round, whatever a poll that panicked left.
                (task.early, task.read_budget) = (false, READ_BUDGET);
                let result = match task.arm_for_lease(&self.shared, &mut cx, armed) {
                    true => Poll::Pending,
                    false => task.poll(&self.shared, &mut cx),
                };
                task.tick_waker = None;
                if result.is_ready() || !matches!(task.phase, Phase::Running) {
                    // The session ended: its close, and the driver's future, are the driver's.
                    lease.holder.store(0, Ordering::SeqCst);
                    release.driver = Some(&self.lease_waker);
                }
                round.done = true;
            }
            ran
        };
        // Frames a handle queued while this held the task are this one's to write.
        self.write_pending(&self.lease_waker, false);
        ran
    }

    fn end_lease(&self, token: u64, wake_driver: bool) {
        let lease = &self.lease;
        let ended = lease.holder.compare_exchange(token, 0, Ordering::SeqCst, Ordering::SeqCst);
        if ended.is_ok() && wake_driver {
            Lease::wake_slot(&lease.driver);
        }
    }
}

/// Ends an inline write: wakes the driver if it found the task busy meanwhile, or if the write
/// left it something to do (or panicked). Dropped after the task's guard.
struct Release<'a, S> {
    cell: &'a Cell<S>,
    driver: Option<&'a Waker>,
}

impl<S> Drop for Release<'_, S> {
    fn drop(&mut self) {
        if self.cell.wanted.swap(false, Ordering::SeqCst) {
            self.cell.waker.wake();
        }
        if let Some(driver) = self.driver.take() {
            driver.wake_by_ref();
        }
    }
}

impl Driver {
    /// Whether this is the driver of `session`'s connection.
    pub(crate) fn drives(&self, session: &crate::Session) -> bool {
        self.task.shared().same(session.shared())
    }

    /// Polls the driver early: its round stops reading right after a message that took the
    /// last of what a socket read brought, when that read was short (see [`Clock::drained`]),
    /// leaving the read that would find the socket empty (and arm its waker) for later;
    /// returns true if it did. The caller must then poll again (early or not), after the work
    /// those messages bring (the answer to a call, say): the socket may have no waker until
    /// then. So that read, a system call on runtimes that do not track readiness (async-io),
    /// is not between a request and its answer. The messages read come out of `budget`
    /// (start a run of early polls with [`READ_BUDGET`]); at 0 the poll wakes its task to read
    /// on later, as a whole poll does.
    ///
    /// Messages tungstenite still holds from that read (pipelined calls) are read by the next
    /// poll: a run of early polls answers the first of them alone.
    pub(crate) fn poll_early(
        &mut self,
        cx: &mut Context<'_>,
        budget: &mut usize,
    ) -> (Poll<Result<(), Error>>, bool) {
        self.task.poll_drive(cx, Some(budget))
    }

    pub(crate) fn new<S>(
        ws: WebSocketStream<S>,
        shared: Shared,
        close_timeout: Duration,
        write_timeout: Option<Duration>,
        transport: Option<Arc<Clock>>,
    ) -> Self
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let task = Task {
            ws,
            timer: None,
            deadline: None,
            phase: Phase::Running,
            flush_pending: false,
            inbox: Vec::new(),
            outbox: VecDeque::new(),
            encode_buf: BytesMut::new(),
            read_end: None,
            read_done: false,
            write_done: false,
            final_writes: None,
            close_timeout,
            wrote_inline: false,
            write_timeout,
            transport,
            early: false,
            stopped_early: false,
            read_budget: READ_BUDGET,
            blocked_since: None,
            write_timer: None,
            tick_waker: None,
            tick: None,
        };
        let lease = Arc::new(Lease {
            holder: AtomicU64::new(0),
            armed: AtomicBool::new(false),
            reader: Mutex::new(None),
            driver: Mutex::new(None),
        });
        let cell = Arc::new(Cell {
            task: Mutex::new(task),
            shared: shared.clone(),
            wanted: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            write_wanted: AtomicBool::new(false),
            lease_waker: Waker::from(lease.clone()),
            tick_waker: Waker::from(Arc::new(Tick(lease.clone()))),
            lease,
        });
        let writer: Weak<Cell<S>> = Arc::downgrade(&cell);
        shared.set_writer(writer);
        Driver { task: cell }
    }
}

enum Phase {
    Running,
    /// The session ended; the WebSocket close handshake is under way until the deadline.
    Closing {
        sent: bool,
        deadline: Delay,
    },
    Done,
}

struct Task<S> {
    ws: WebSocketStream<S>,
    timer: Option<(Instant, Delay)>,
    /// Proto's next deadline as of the end of the last round (see `poll_round`).
    deadline: Option<Instant>,
    phase: Phase,
    flush_pending: bool,
    /// Messages read, waiting to be handed to proto under one lock.
    inbox: Vec<Message>,
    /// Frames taken from proto under one lock, waiting for the WebSocket to accept them.
    outbox: VecDeque<ProtoFrame>,
    /// Where small frames are encoded. The WebSocket copies each one out at once, so the
    /// buffer is free again for the next frame: no allocation per frame.
    encode_buf: BytesMut,
    /// Why reading stopped, once it has, until the round hands it to proto.
    read_end: Option<ReadEnd>,
    read_done: bool,
    write_done: bool,
    /// Started when the session has ended with frames still to write.
    final_writes: Option<Delay>,
    /// [`crate::Config::close_timeout`].
    close_timeout: Duration,
    /// A handle wrote (and flushed) since the driver's last poll: further writes wait for the
    /// driver, which batches them under one flush.
    wrote_inline: bool,
    /// [`crate::Config::write_timeout`]: enforced when the transport's write progress is known
    /// (`transport`).
    write_timeout: Option<Duration>,
    /// The transport's write progress and read state, when wsmux wrapped it (see [`Clock`]).
    transport: Option<Arc<Clock>>,
    /// This poll's rounds stop reading once they have messages and the transport looks
    /// drained (see [`Driver::poll_early`]).
    early: bool,
    /// A round of this poll stopped reading early: the socket may have no waker armed, and the
    /// poll's caller polls again.
    stopped_early: bool,
    /// Messages this poll may still read before it yields (see `READ_BUDGET`).
    read_budget: usize,
    /// While the WebSocket has not taken what the driver has for it (a send or a flush
    /// pending): the start of the current stretch without write progress. `None` while writes
    /// go through.
    blocked_since: Option<Instant>,
    /// Armed for the write timeout while writes are blocked.
    write_timer: Option<(Instant, Delay)>,
    /// In a round run by a reader holding the lease, the waker of the timer (see [`Lease`]).
    tick_waker: Option<Waker>,
    /// When the timer of a holder's round fires at the latest.
    tick: Option<Instant>,
}

impl<S> Task<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Drives the connection (the driver's poll); `shared` is the session's state.
    fn poll(&mut self, shared: &Shared, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self;
        loop {
            match this.phase {
                Phase::Running => match this.poll_running(shared, cx) {
                    Poll::Ready(()) => {
                        let deadline = Delay::new(this.close_timeout);
                        this.phase = Phase::Closing { sent: false, deadline };
                    }
                    Poll::Pending => return Poll::Pending,
                },
                Phase::Closing { .. } => {
                    if this.poll_closing(shared, cx).is_pending() {
                        return Poll::Pending;
                    }
                    this.phase = Phase::Done;
                    let mut inner = shared.lock();
                    inner.driver_gone = true;
                    inner.wake_all();
                }
                // Also when a reader's round ended the session: the driver's poll comes next.
                Phase::Done => {
                    return Poll::Ready(match shared.lock().proto.error() {
                        None => Ok(()),
                        Some(e) => Err(Error::Session(e.clone())),
                    })
                }
            }
        }
    }
}

impl<S> Task<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// One round of reading, timers and writing. Ready once the session has ended and every
    /// frame it queued (its GOAWAY) is written.
    fn poll_running(&mut self, shared: &Shared, cx: &mut Context<'_>) -> Poll<()> {
        // The round's locks park the driver and hold wakes back (see `lock_in_poll`).
        self.wrote_inline = false;
        let result = self.poll_round(shared, cx);
        let mut inner = shared.lock();
        inner.defer_wakes = false;
        drop(inner); // delivers the wakes
        result
    }

    fn poll_round(&mut self, shared: &Shared, cx: &mut Context<'_>) -> Poll<()> {
        let mut budget = self.read_budget;
        let result = self.poll_round_within(shared, cx, &mut budget);
        self.read_budget = budget;
        result
    }

    /// [`Task::poll_round`], reading at most `budget` messages.
    fn poll_round_within(
        &mut self,
        shared: &Shared,
        cx: &mut Context<'_>,
        budget: &mut usize,
    ) -> Poll<()> {
        loop {
            let now = Instant::now();
            // Read all that is ready before writing (many PINGs get one answer), handing full
            // batches to proto on the way.
            let mut read_more = self.read_socket(cx, budget);
            while read_more && *budget > 0 {
                self.hand_inbox(&mut lock_in_poll(shared, cx), now);
                read_more = self.read_socket(cx, budget);
            }
            // One lock per round: what was read goes in, due timers fire, frames to write come
            // out, and the events of all that are dispatched (their wakes wait for the end of
            // the poll anyway).
            let (mut ended, mut next_timeout, mut write_more) = {
                let mut inner = lock_in_poll(shared, cx);
                self.hand_inbox(&mut inner, now);
                // The deadline known from the end of the last round.
                if self.deadline.is_some_and(|d| d <= now) {
                    inner.proto.handle_timeout(now);
                }
                let write_more = self.take_frames(&mut inner, now);
                inner.dispatch_events();
                if !write_more && self.outbox.is_empty() {
                    // Nothing to write: a lone waiting task need not wait for the poll's end.
                    inner.release_lone_wake();
                }
                (inner.proto.is_closed(), inner.proto.poll_timeout(), write_more)
            };
            let failed_before = self.write_done;
            // Frames proto holds beyond this batch leave under the same flush.
            let mut unflushed = self.send_outbox(shared, cx, now, false, write_more);
            while write_more && self.outbox.is_empty() && self.blocked_since.is_none() {
                // A later batch may carry a draining session's last FIN: the session then
                // ends here, and its next deadline moves.
                (ended, next_timeout, write_more) = {
                    let mut inner = lock_in_poll(shared, cx);
                    let more = self.take_frames(&mut inner, now);
                    inner.dispatch_events();
                    (inner.proto.is_closed(), inner.proto.poll_timeout(), more)
                };
                unflushed = self.send_outbox(shared, cx, now, unflushed, write_more);
            }
            // The runs of writes end flushed: the last batch, a block and a failure all flush.
            debug_assert!(!unflushed);
            if self.write_done && !failed_before {
                continue; // dispatch what the failed write did to the session
            }
            if self.write_timed_out(shared, cx, now) {
                continue; // the connection was given up: finish the round as a failed write
            }
            // Once ended, proto queues nothing new: done when its last frames are out.
            let all_out = self.outbox.is_empty() && !self.flush_pending;
            if ended && !write_more && all_out {
                return Poll::Ready(());
            }
            // Frames still queued or unflushed once the session ended get the close timeout.
            if ended && self.close_deadline_passed(cx) {
                // The peer does not take our last frames: give up on them.
                self.write_failed(shared, "the peer stopped reading after the session ended");
                return Poll::Ready(());
            }
            if self.poll_timer(cx, now, next_timeout) {
                continue; // a deadline passed while we worked: handle it now
            }
            if read_more {
                if *budget == 0 {
                    cx.waker().wake_by_ref(); // let other tasks run, then read on
                    return Poll::Pending;
                }
                continue;
            }
            return Poll::Pending;
        }
    }

    /// The start of a reader's round when, most often, nothing has arrived yet (it just sent a
    /// request, say): reads the socket (unless `armed`: nothing came since a holder's round
    /// last found it empty), and if it brought nothing, nothing waits to be written and no
    /// timer is due, arms the timer and returns true: the socket and the timer now wake the
    /// lease's holder and the driver (see [`Lease`]), and the rest of a round would find
    /// nothing to do. Returns false if the whole round is needed.
    fn arm_for_lease(&mut self, shared: &Shared, cx: &mut Context<'_>, armed: bool) -> bool {
        let writing = !self.outbox.is_empty() || self.flush_pending || self.blocked_since.is_some();
        if !matches!(self.phase, Phase::Running)
            || !self.inbox.is_empty()
            || self.read_done
            || writing
        {
            return false;
        }
        if !armed {
            // One message at most: if one came, the round reads on (and finds the socket empty
            // once, not twice).
            let mut budget = 1;
            self.read_socket(cx, &mut budget);
            if !self.inbox.is_empty() || self.read_end.is_some() {
                return false;
            }
        }
        let now = Instant::now();
        // Frames a handle queued and left to the round (it had written once already), and
        // proto's deadline, which may have moved since the last round (a handle's command).
        let (transmit, deadline) = {
            let inner = shared.lock();
            (inner.proto.has_transmit(), inner.proto.poll_timeout())
        };
        !transmit && !self.poll_timer(cx, now, deadline)
    }

    /// A handle's write while the driver is idle: what the driver's write step does, with
    /// `waker` (the driver's, or the lease's). Returns whether the driver has nothing more to
    /// do for it; if not (the session is not running, a write failed, a timer moved), the
    /// caller wakes `waker`. `by_handle`: a handle writes, at most once between two rounds
    /// (see `wrote_inline`); otherwise the task's holder writes, right after its round.
    fn write_inline(&mut self, shared: &Shared, waker: &Waker, by_handle: bool) -> bool {
        if !matches!(self.phase, Phase::Running) || self.write_done {
            return false;
        }
        if by_handle {
            if self.wrote_inline {
                return false;
            }
            self.wrote_inline = true;
        }
        let mut cx = Context::from_waker(waker);
        let now = Instant::now();
        let (more, closed, timer_moved, wakes) = {
            let mut inner = shared.lock();
            let more = self.take_frames(&mut inner, now);
            // Parked before the write: a handle that queues frames meanwhile finds the waker
            // and the task busy, and leaves its frames to us (see `Cell::write_pending`).
            park(&mut inner.driver, waker);
            inner.dispatch_events();
            // Whoever waits on what was taken (room to send, a flush) is woken once it is
            // written (or the write failed), as from the driver's own poll.
            let wakes = inner.take_wakes();
            (more, inner.proto.is_closed(), self.timer_moved_up(&inner), wakes)
        };
        self.send_outbox(shared, &mut cx, now, false, false);
        drop(wakes);
        // More than one batch: the driver writes the rest. A write that failed or was left
        // blocked (frames in the outbox, or unflushed) needs the driver (its write timer, see
        // `write_timed_out`).
        !more && !self.write_done && self.blocked_since.is_none() && !closed && !timer_moved
    }

    /// Whether proto's next deadline is now earlier than the one the driver's timer is set for.
    fn timer_moved_up(&self, inner: &crate::shared::Inner) -> bool {
        match (inner.proto.poll_timeout(), self.deadline) {
            (Some(next), Some(armed)) => next < armed,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// Reads up to [`BATCH`] messages into the inbox, without the lock. Returns whether more
    /// may be ready right away (the batch or the budget ran out first).
    fn read_socket(&mut self, cx: &mut Context<'_>, budget: &mut usize) -> bool {
        if self.read_done {
            return false;
        }
        while self.inbox.len() < BATCH && self.read_end.is_none() {
            if *budget == 0 {
                return true;
            }
            *budget -= 1;
            // In an early round: did this message take the last of what a socket read brought?
            // (Messages from tungstenite's buffer take nothing: reading on is cheap for them.)
            let early = self.transport.as_ref().filter(|_| self.early);
            if let Some(transport) = early {
                transport.forget_drained();
            }
            match self.ws.poll_next_unpin(cx) {
                Poll::Pending => return false,
                Poll::Ready(Some(Ok(msg))) => {
                    self.inbox.push(msg);
                    if early.is_some_and(|t| t.drained()) {
                        self.stopped_early = true;
                        return false;
                    }
                }
                Poll::Ready(Some(Err(e))) => self.read_end = Some(ReadEnd::from(e)),
                Poll::Ready(None) => {
                    let reason = "the peer closed the connection".to_owned();
                    self.read_end = Some(ReadEnd::Lost(reason));
                }
            }
        }
        self.read_end.is_none()
    }

    /// Hands what [`Task::read_socket`] read to proto, and the end of the stream if it came.
    fn hand_inbox(&mut self, inner: &mut crate::shared::Inner, now: Instant) {
        for msg in self.inbox.drain(..) {
            match msg {
                Message::Binary(bytes) => inner.proto.handle_message(now, bytes),
                Message::Text(_) => inner.proto.handle_text(),
                // WebSocket pings are answered by tungstenite; close is followed by `None`.
                _ => {}
            }
        }
        match self.read_end.take() {
            Some(ReadEnd::Violation(reason)) => {
                self.read_done = true;
                inner.proto.handle_websocket_violation(&reason);
            }
            Some(ReadEnd::TooLarge(reason)) => {
                self.read_done = true;
                inner.proto.handle_websocket_too_large(&reason);
            }
            Some(ReadEnd::Lost(reason)) => {
                self.read_done = true;
                inner.proto.handle_transport_closed(&reason);
            }
            None => {}
        }
    }

    /// Takes frames to write from proto: many small frames per lock, but few bytes, since
    /// frames taken are committed to the wire order (a later small message could not pass
    /// them any more). Nothing while the outbox still holds frames or writes are blocked.
    /// Returns whether proto may hold more than was taken.
    fn take_frames(&mut self, inner: &mut crate::shared::Inner, now: Instant) -> bool {
        if self.write_done || self.blocked_since.is_some() || !self.outbox.is_empty() {
            return !self.write_done && inner.proto.has_transmit();
        }
        let mut bytes = 0;
        while self.outbox.len() < BATCH && bytes < BATCH_BYTES {
            match inner.proto.poll_transmit_frame(now) {
                Some(frame) => {
                    bytes += frame.encoded_len();
                    self.outbox.push_back(frame);
                }
                None => return false,
            }
        }
        true
    }

    /// Hands the outbox's frames to the WebSocket while it takes them, then flushes once (so
    /// an OPEN, its data and FIN written in one go leave as one batch), unless `more_coming`:
    /// the next batch is taken first, and the flush waits for the last one. `unflushed`: the
    /// previous batch of the run was not flushed. Returns whether this one was not either.
    fn send_outbox(
        &mut self,
        shared: &Shared,
        cx: &mut Context<'_>,
        now: Instant,
        mut unflushed: bool,
        more_coming: bool,
    ) -> bool {
        if self.write_done {
            return false;
        }
        let mut blocked = false;
        while !self.outbox.is_empty() {
            match self.ws.poll_ready_unpin(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => {
                    self.write_failed(shared, &e.to_string());
                    return false;
                }
                Poll::Pending => {
                    blocked = true;
                    break;
                }
            }
            let Some(frame) = self.outbox.pop_front() else { break };
            let sent = match self.outbox.front() {
                Some(next) if packable(&frame) && packable(next) => self.send_pack(frame),
                _ => self.send_frame(&frame),
            };
            if let Err(e) = sent {
                self.write_failed(shared, &e.to_string());
                return false;
            }
            unflushed = true;
        }
        if (unflushed && (!more_coming || blocked)) || self.flush_pending {
            unflushed = false;
            match self.ws.poll_flush_unpin(cx) {
                Poll::Ready(Ok(())) => self.flush_pending = false,
                Poll::Ready(Err(e)) => {
                    self.write_failed(shared, &e.to_string());
                    return false;
                }
                Poll::Pending => self.flush_pending = true,
            }
        }
        if blocked || self.flush_pending {
            self.blocked_since.get_or_insert(now);
        } else {
            self.blocked_since = None;
        }
        unflushed
    }

    /// While writes are blocked, whether the transport has taken no byte for the write
    /// timeout; if so the connection is given up. Otherwise arms the timer for that moment.
    fn write_timed_out(&mut self, shared: &Shared, cx: &mut Context<'_>, now: Instant) -> bool {
        let (Some(mut since), Some(timeout), Some(clock)) =
            (self.blocked_since, self.write_timeout, &self.transport)
        else {
            self.write_timer = None;
            return false;
        };
        // The timer is armed once per timeout, not at every byte the transport takes: when it
        // fires, progress since `since` moves the window on instead of failing.
        loop {
            let Some(at) = since.checked_add(timeout) else { return false }; // never
            if !poll_at(&mut self.write_timer, at, now, cx) {
                return false;
            }
            let last = clock.last_progress();
            if last <= since {
                break;
            }
            since = last;
            self.blocked_since = Some(last);
        }
        self.write_timer = None;
        self.blocked_since = None;
        let reason = format!("write timeout: the peer took no bytes for {timeout:?}");
        self.write_failed(shared, &reason);
        true
    }

    /// Hands one wsmux frame to the WebSocket as one message. A large data payload goes as the
    /// second of two fragments (head, payload) so it is not copied to join its header; the
    /// receiver's WebSocket layer reassembles the message (RFC 6455 section 5.4).
    fn send_frame(&mut self, frame: &ProtoFrame) -> Result<(), WsError> {
        if payload_len(frame) < FRAGMENT_FROM {
            // The reused buffer only for frames of common size: an OPEN with large metadata
            // would leave it large for the connection's lifetime.
            let bytes = if frame.encoded_len() <= 2 * FRAGMENT_FROM {
                self.encode_buf.reserve(frame.encoded_len());
                frame.encode(&mut self.encode_buf);
                self.encode_buf.split().freeze()
            } else {
                frame.to_bytes()
            };
            return self.ws.start_send_unpin(Message::Binary(bytes));
        }
        let (head, payload) = frame.to_split_bytes();
        // The second fragment follows at once: nothing may come between a message's fragments,
        // and the write buffer's bound leaves room for one more frame after a full one.
        let first = Frame::message(head, OpCode::Data(OpData::Binary), false);
        self.ws.start_send_unpin(Message::Frame(first))?;
        let last = Frame::message(payload, OpCode::Data(OpData::Continue), true);
        self.ws.start_send_unpin(Message::Frame(last))
    }

    /// Hands `first` and the frames that follow it in the outbox to the WebSocket as ONE
    /// message, a PACK, up to [`PACK_MAX`] bytes. Only frames already taken are packed: none
    /// waits for company. The PACK is one contiguous WebSocket frame, payloads copied in: a
    /// browser's WebSocket pays per WebSocket frame, fragments included (Chromium's download
    /// of 50 MB: 0.54x a plain WebSocket with every payload a fragment of its own, 0.83-0.91x
    /// as one frame).
    fn send_pack(&mut self, first: ProtoFrame) -> Result<(), WsError> {
        let buf = &mut self.encode_buf;
        buf.reserve(PACK_MAX);
        wsmux_proto::frame::encode_pack_header(buf);
        wsmux_proto::frame::encode_pack_entry(&first, buf);
        while let Some(next) = self.outbox.front() {
            if !packable(next) || buf.len() + 2 + next.encoded_len() > PACK_MAX {
                break;
            }
            if let Some(next) = self.outbox.pop_front() {
                wsmux_proto::frame::encode_pack_entry(&next, buf);
            }
        }
        let bytes = buf.split().freeze();
        self.ws.start_send_unpin(Message::Binary(bytes))
    }

    fn write_failed(&mut self, shared: &Shared, reason: &str) {
        self.write_done = true;
        self.flush_pending = false;
        self.outbox.clear(); // never to be written; an outbox left full would block the close
        shared.lock().proto.handle_transport_closed(reason);
    }

    /// Once the session has ended, its last frames get the close timeout to leave; a peer that
    /// stops reading must not keep the connection (and its server slot) forever.
    fn close_deadline_passed(&mut self, cx: &mut Context<'_>) -> bool {
        let timeout = self.close_timeout;
        let deadline = self.final_writes.get_or_insert_with(|| Delay::new(timeout));
        deadline.poll_unpin(cx).is_ready()
    }

    /// Arms the timer for proto's next deadline. Returns whether that deadline already passed.
    fn poll_timer(
        &mut self,
        cx: &mut Context<'_>,
        now: Instant,
        deadline: Option<Instant>,
    ) -> bool {
        self.deadline = deadline;
        if let Some(tick) = &self.tick_waker {
            // Moved on only once passed: rounds within one tick arm the timer once.
            let next = match self.tick {
                Some(at) if at > now => at,
                _ => *self.tick.insert(now + LEASE_TICK),
            };
            let at = deadline.map_or(next, |at| at.min(next));
            return poll_at(&mut self.timer, at, now, &mut Context::from_waker(tick));
        }
        match deadline {
            Some(at) => poll_at(&mut self.timer, at, now, cx),
            None => {
                self.timer = None;
                false
            }
        }
    }

    /// Sends the WebSocket close frame with the code that fits the session's end, then reads
    /// until the peer answers (or the deadline passes).
    fn poll_closing(&mut self, shared: &Shared, cx: &mut Context<'_>) -> Poll<()> {
        let Phase::Closing { sent, deadline } = &mut self.phase else { return Poll::Ready(()) };
        // Without a working write side no close frame can go out, so no answer will come.
        if self.write_done {
            return Poll::Ready(());
        }
        if deadline.poll_unpin(cx).is_ready() {
            return Poll::Ready(());
        }
        if !*sent && !self.write_done {
            match self.ws.poll_ready_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(())) => {}
            }
            let code = shared.lock().proto.close_code();
            let frame = CloseFrame { code: CloseCode::from(code), reason: "".into() };
            if self.ws.start_send_unpin(Message::Close(Some(frame))).is_err() {
                // Already closed by the peer: flush tungstenite's automatic answer and stop.
                let _ = self.ws.poll_flush_unpin(cx);
                return Poll::Ready(());
            }
            *sent = true;
        }
        if self.ws.poll_flush_unpin(cx).is_ready() && self.read_done {
            return Poll::Ready(());
        }
        // Read (and discard) until the peer's close answer ends the stream, yielding now and then
        // so a peer that keeps sending cannot hold this task (the deadline still applies).
        for _ in 0..READ_BUDGET {
            match self.ws.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(_))) => continue,
                Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The lock, as a round takes it: the round's waker is parked as the driver's (the driver's
/// own, or in a holder's round the lease's; a handle that queues work after this finds it and
/// wakes it; what was queued before, this round takes), and the wakes the round causes wait
/// for its end (see `shared::Guard`).
fn lock_in_poll<'a>(shared: &'a Shared, cx: &Context<'_>) -> crate::shared::Guard<'a> {
    let mut inner = shared.lock();
    park(&mut inner.driver, cx.waker());
    inner.defer_wakes = true;
    inner
}

/// Whether `at` has passed (as of `now`); if not, polls the timer in `slot` for it, arming a
/// new one when the slot holds none or one for another instant.
fn poll_at(
    slot: &mut Option<(Instant, Delay)>,
    at: Instant,
    now: Instant,
    cx: &mut Context<'_>,
) -> bool {
    if at <= now {
        return true;
    }
    let delay = match slot {
        Some((armed, delay)) if *armed == at => delay,
        _ => &mut slot.insert((at, Delay::new(at - now))).1,
    };
    delay.poll_unpin(cx).is_ready()
}

impl<S> Drop for Cell<S> {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        inner.defer_wakes = false; // a poll that panicked must not swallow these wakes
        inner.proto.handle_transport_closed("the driver was dropped");
        inner.driver_gone = true;
        inner.dispatch_events();
        inner.wake_all();
    }
}

/// Whether `frame` is small enough to share a PACK with others.
fn packable(frame: &ProtoFrame) -> bool {
    frame.encoded_len() <= wsmux_proto::frame::MAX_PACK_ENTRY
}

/// Bytes of the data part a DATA or OPEN frame carries.
fn payload_len(frame: &ProtoFrame) -> usize {
    match frame {
        ProtoFrame::Data(d) => d.payload.len(),
        ProtoFrame::Open(o) => o.payload.len(),
        _ => 0,
    }
}
