//! RPC on channels, end to end over a loopback WebSocket: every call shape, statuses,
//! deadlines, cancellation, limits, calls in both directions.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::channel::mpsc;
use futures::StreamExt;

use common::faulty::{IoEvent, Watched};
use common::*;
use wsmux::rpc::{
    Bidi, CallHeader, CallOptions, Client, ClientStreaming, Code, Router, ServerStreaming, Status,
    Unary,
};
use wsmux::{OpenOptions, Session};

const ADD: Unary<(u32, u32), u32> = Unary::new("math.add");
const COUNT: ServerStreaming<u32, u32> = ServerStreaming::new("math.count");
const SUM: ClientStreaming<u32, u64> = ClientStreaming::new("math.sum");
const DOUBLE: Bidi<u32, u32> = Bidi::new("math.double");
const GREET: Unary<String, String> = Unary::new("greet");
const GREET_WITH_NUMBER: Unary<u64, String> = Unary::new("greet");
const FAIL: Unary<u16, ()> = Unary::new("fail");
const WHO: Unary<(), String> = Unary::new("who");

fn math() -> Router {
    Router::new()
        .unary(ADD, |(a, b): (u32, u32), _| async move {
            a.checked_add(b).ok_or_else(|| Status::out_of_range("overflow"))
        })
        .server_streaming(COUNT, |n: u32, mut tx, _| async move {
            for i in 0..n {
                tx.send(&i).await?;
            }
            Ok(())
        })
        .client_streaming(SUM, |mut reqs, _| async move {
            let mut sum = 0u64;
            while let Some(n) = reqs.recv().await {
                sum += u64::from(n?);
            }
            Ok(sum)
        })
        .bidi(DOUBLE, |mut reqs, mut tx, _| async move {
            while let Some(n) = reqs.recv().await {
                tx.send(&(n? * 2)).await?;
            }
            Ok(())
        })
        .unary(GREET, |name: String, _| async move { Ok(format!("hello {name}")) })
        .unary(FAIL, |code: u16, _| async move { Err(Status::new(Code(code), "as asked")) })
}

/// A client session calling a server session that serves `router`.
async fn served(router: Router) -> (Client, Session) {
    let (client, server) = pair().await;
    async_std::task::spawn(router.serve(server.clone()));
    (Client::new(client), server)
}

#[test]
fn every_call_shape_works() {
    run(async {
        let (client, _server) = served(math()).await;
        assert_eq!(client.unary(&ADD, &(2, 3)).await, Ok(5));

        let mut counted = client.server_streaming(&COUNT, &4, CallOptions::new()).await.unwrap();
        let mut got = Vec::new();
        while let Some(n) = counted.recv().await {
            got.push(n.unwrap());
        }
        assert_eq!(got, [0, 1, 2, 3]);

        let mut sum = client.client_streaming(&SUM, CallOptions::new()).await.unwrap();
        for n in 1..=100 {
            sum.send(&n).await.unwrap();
        }
        assert_eq!(sum.finish().await, Ok(5050));

        let mut double = client.bidi(&DOUBLE, CallOptions::new()).await.unwrap();
        for n in 1..=3 {
            double.send(&n).await.unwrap();
            assert_eq!(double.recv().await, Some(Ok(n * 2)), "answered before the next request");
        }
        double.finish().await.unwrap();
        assert_eq!(double.recv().await, None, "the call ended OK");
    });
}

#[test]
fn values_of_every_size_round_trip_in_any_order() {
    // Small messages are encoded in a reused buffer and copied out; large ones take it: each
    // size must come out whole whatever came before it.
    const ECHO: Unary<Vec<u8>, Vec<u8>> = Unary::new("echo");
    run(async {
        let router = Router::new().unary(ECHO, |v: Vec<u8>, _| async move { Ok(v) });
        let (client, _server) = served(router).await;
        for len in [0, 1, 4094, 4095, 4096, 100_000, 7, 70_000, 4093, 0] {
            let value: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            assert_eq!(client.unary(&ECHO, &value).await.as_ref(), Ok(&value), "{len} bytes");
        }
    });
}

#[test]
fn a_unary_call_is_one_websocket_message_each_way() {
    run(async {
        let (client, server) = served(math()).await;
        client.session().ping().await.unwrap(); // SETTINGS and PONGs are out of the way
        let (sent, received) = (client.session().stats().frames_sent, server.stats().frames_sent);
        assert_eq!(client.unary(&ADD, &(40, 2)).await, Ok(42));
        assert_eq!(client.session().stats().frames_sent - sent, 1, "OPEN + request + FIN");
        assert_eq!(server.stats().frames_sent - received, 1, "answer + FIN");
    });
}

#[test]
fn statuses_reach_the_caller_with_code_and_text() {
    run(async {
        let (client, _server) = served(math()).await;
        let failed = client.unary(&FAIL, &Code::NOT_FOUND.0).await.unwrap_err();
        assert_eq!((failed.code(), failed.message()), (Code::NOT_FOUND, "as asked"));
        let failed = client.unary(&FAIL, &0x1234).await.unwrap_err();
        assert_eq!(failed.code(), Code(0x1234), "application codes pass through");
        let overflow = client.unary(&ADD, &(u32::MAX, 1)).await.unwrap_err();
        assert_eq!(overflow.code(), Code::OUT_OF_RANGE);
        let missing = client.unary(&WHO, &()).await.unwrap_err();
        assert_eq!(missing.code(), Code::UNIMPLEMENTED);
        assert!(missing.message().contains("who"), "{missing}");
        assert_eq!(client.unary(&ADD, &(1, 1)).await, Ok(2), "the session still works");
    });
}

#[test]
fn an_undecodable_request_is_invalid_argument_and_the_session_keeps_working() {
    run(async {
        let (client, _server) = served(math()).await;
        // The server reads a String; 5 as a u64 is the bincode byte 05: a length without bytes.
        let status = client.unary(&GREET_WITH_NUMBER, &5).await.unwrap_err();
        assert_eq!(status.code(), Code::INVALID_ARGUMENT, "{status}");
        assert_eq!(client.unary(&GREET, &"you".to_owned()).await.unwrap(), "hello you");

        // A malformed call header is INVALID_ARGUMENT too.
        let open = OpenOptions::new("greet").metadata(Bytes::from_static(b"\x00\x00")).finish();
        let mut ch = client.session().open_with(open).await.unwrap();
        let answer = ch.recv().await.unwrap().unwrap();
        assert_eq!(answer[..3], [1, 0, 3], "a STATUS with INVALID_ARGUMENT");
        assert_eq!(client.unary(&ADD, &(1, 2)).await, Ok(3));
    });
}

/// Sends `()` when dropped: tells the test that a handler's future is gone.
struct OnDrop(mpsc::UnboundedSender<()>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        let _ = self.0.unbounded_send(());
    }
}

/// A router whose `stall` method never answers, with receivers that hear when one of its
/// handlers starts and when its future is dropped.
fn stalling() -> (Router, mpsc::UnboundedReceiver<()>, mpsc::UnboundedReceiver<()>) {
    let (started_tx, started) = mpsc::unbounded();
    let (dropped_tx, dropped) = mpsc::unbounded();
    let router = Router::new().unary(STALL, move |(), _| {
        let on_drop = OnDrop(dropped_tx.clone());
        let started = started_tx.clone();
        async move {
            let _on_drop = on_drop;
            started.unbounded_send(()).unwrap();
            futures::future::pending::<Result<(), Status>>().await
        }
    });
    (router, started, dropped)
}

const STALL: Unary<(), ()> = Unary::new("stall");

#[test]
fn the_caller_gets_deadline_exceeded_at_once_and_the_handler_is_stopped() {
    run(async {
        let (router, mut started, mut dropped) = stalling();
        let (client, _server) = served(router).await;
        let options = CallOptions::new().timeout(Duration::from_millis(50));
        let status = client.unary_with(&STALL, &(), options).await.unwrap_err();
        assert_eq!(status.code(), Code::DEADLINE_EXCEEDED);
        started.next().await.unwrap();
        dropped.next().await.unwrap(); // the handler's future was dropped
    });
}

#[test]
fn the_caller_keeps_its_deadline_against_a_callee_that_never_answers() {
    run(async {
        let (client, server) = pair().await;
        // A callee that accepts calls and never answers (and enforces no deadline).
        async_std::task::spawn(async move {
            let mut held = Vec::new();
            while let Some(incoming) = server.accept().await {
                held.push(incoming.accept());
            }
        });
        let client = Client::new(client);
        let options = CallOptions::new().timeout(Duration::from_millis(50));
        let status = client.unary_with(&STALL, &(), options).await.unwrap_err();
        assert_eq!(status.code(), Code::DEADLINE_EXCEEDED);
    });
}

#[test]
fn the_callee_enforces_the_deadline_it_was_sent() {
    run(async {
        let (router, mut started, mut dropped) = stalling();
        let (client, _server) = served(router).await;
        // A raw call with a 50 ms deadline in its header, and no timer of our own.
        let header = CallHeader { timeout_ms: 50, headers: Vec::new() };
        let open = OpenOptions::new("stall").metadata(header.encode()).message(vec![0u8]).finish();
        let mut ch = client.session().open_with(open).await.unwrap();
        started.next().await.unwrap();
        let answer = ch.recv().await.unwrap().unwrap();
        assert_eq!(answer[..3], [1, 0, 4], "a STATUS with DEADLINE_EXCEEDED");
        assert_eq!(ch.recv().await.unwrap(), None);
        dropped.next().await.unwrap();
    });
}

#[test]
fn dropping_the_call_stops_the_handler() {
    run(async {
        let (router, mut started, mut dropped) = stalling();
        let (client, _server) = served(router).await;
        let call = {
            let client = client.clone();
            async_std::task::spawn(async move { client.unary(&STALL, &()).await })
        };
        started.next().await.unwrap();
        call.cancel().await; // drops the call's future: its channel is reset with CANCEL
        dropped.next().await.unwrap();
        assert_eq!(client.unary(&ADD, &(1, 1)).await.unwrap_err().code(), Code::UNIMPLEMENTED);
    });
}

#[test]
fn past_the_limit_a_call_is_refused_with_resource_exhausted() {
    run(async {
        let (router, mut started, _dropped) = stalling();
        let (client, _server) = served(router.max_in_flight(2)).await;
        let calls: Vec<_> = (0..2)
            .map(|_| {
                let client = client.clone();
                async_std::task::spawn(async move { client.unary(&STALL, &()).await })
            })
            .collect();
        started.next().await.unwrap();
        started.next().await.unwrap();
        let status = client.unary(&STALL, &()).await.unwrap_err();
        assert_eq!(status.code(), Code::RESOURCE_EXHAUSTED);
        for call in calls {
            call.cancel().await;
        }
    });
}

#[test]
fn the_server_calls_methods_the_client_serves_on_the_same_session() {
    run(async {
        let (client_session, server_session) = pair().await;
        // The server serves math; the client serves greet. Each calls the other.
        async_std::task::spawn(math().serve(server_session.clone()));
        let client_router =
            Router::new().unary(GREET, |name: String, _| async move { Ok(format!("hi {name}")) });
        async_std::task::spawn(client_router.serve(client_session.clone()));

        let from_server = Client::new(server_session);
        assert_eq!(from_server.unary(&GREET, &"server".to_owned()).await.unwrap(), "hi server");
        let from_client = Client::new(client_session);
        assert_eq!(from_client.unary(&ADD, &(20, 22)).await, Ok(42));
    });
}

#[test]
fn a_handler_calls_back_the_caller_through_its_context() {
    run(async {
        let (client_session, server_session) = pair().await;
        async_std::task::spawn(
            Router::new()
                .unary(GREET, |name: String, _| async move { Ok(format!("hi {name}")) })
                .serve(client_session.clone()),
        );
        let router = Router::new().unary(WHO, |(), ctx| async move {
            let back = Client::new(ctx.session().clone());
            back.unary(&GREET, &"back".to_owned()).await
        });
        async_std::task::spawn(router.serve(server_session));
        let client = Client::new(client_session);
        assert_eq!(client.unary(&WHO, &()).await.unwrap(), "hi back");
    });
}

#[test]
fn headers_and_deadline_reach_the_handler() {
    run(async {
        const ECHO_HEADER: Unary<String, Option<Vec<u8>>> = Unary::new("header");
        let router = Router::new().unary(ECHO_HEADER, |name: String, ctx| async move {
            assert!(ctx.deadline().is_some(), "the deadline came with the call");
            assert_eq!(ctx.method(), "header");
            Ok(ctx.header(&name).map(|v| v.to_vec()))
        });
        let (client, _server) = served(router).await;
        let options = CallOptions::new()
            .timeout(Duration::from_secs(5))
            .header("trace", Bytes::from_static(b"ab"))
            .header("empty", Bytes::new());
        let got = client.unary_with(&ECHO_HEADER, &"trace".into(), options).await.unwrap();
        assert_eq!(got, Some(b"ab".to_vec()));
    });
}

#[test]
fn a_panicking_handler_answers_internal() {
    run(async {
        const PANIC: Unary<(), ()> = Unary::new("panic");
        let router = Router::new().unary(PANIC, |(), _| async move { panic!("handler bug") });
        let (client, _server) = served(router).await;
        let status = client.unary(&PANIC, &()).await.unwrap_err();
        assert_eq!(status.code(), Code::INTERNAL);
    });
}

#[test]
fn a_thousand_concurrent_calls_on_one_session() {
    run(async {
        let (client, _server) = served(math()).await;
        let done = Arc::new(AtomicUsize::new(0));
        let calls = (0..1000u32).map(|i| {
            let (client, done) = (client.clone(), done.clone());
            async move {
                assert_eq!(client.unary(&ADD, &(i, i)).await, Ok(2 * i));
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
        futures::future::join_all(calls).await;
        assert_eq!(done.load(Ordering::Relaxed), 1000);
        assert_eq!(client.session().stats().open_channels, 0, "every call's channel is freed");
    });
}

#[test]
fn a_streaming_call_dropped_midway_stops_its_handler() {
    run(async {
        const FOREVER: ServerStreaming<(), u64> = ServerStreaming::new("forever");
        let (stopped_tx, mut stopped) = mpsc::unbounded::<()>();
        let router = Router::new().server_streaming(FOREVER, move |(), mut tx, _| {
            let stopped = stopped_tx.clone();
            async move {
                let _on_drop = OnDrop(stopped);
                for i in 0.. {
                    tx.send(&i).await?;
                }
                Ok(())
            }
        });
        let (client, _server) = served(router).await;
        let mut stream = client.server_streaming(&FOREVER, &(), CallOptions::new()).await.unwrap();
        for i in 0..10 {
            assert_eq!(stream.next().await, Some(Ok(i)));
        }
        drop(stream);
        stopped.next().await.unwrap();
    });
}

/// Waits until `cond` holds, looking again after each PING round trip on `session`: each is
/// progress at both ends (not a sleep). A PING may overtake queued data, so one round trip is
/// no barrier: hence the loop.
async fn until(session: &Session, mut cond: impl FnMut() -> bool) {
    while !cond() {
        session.ping().await.expect("the session lives");
    }
}

#[test]
fn an_answer_given_before_the_caller_finished_is_the_outcome() {
    run(async {
        const FIRST: ClientStreaming<u32, u32> = ClientStreaming::new("first");
        let router = Router::new()
            .client_streaming(FIRST, |mut reqs, _| async move { reqs.recv().await.unwrap() });
        let (client, _server) = served(router).await;
        let mut call = client.client_streaming(&FIRST, CallOptions::new()).await.unwrap();
        call.send(&7).await.unwrap();
        // The answer and FIN arrive, then the RESET of the callee's dropped channel.
        until(client.session(), || client.session().stats().resets_received == 1).await;
        assert_eq!(call.finish().await, Ok(7));
    });
}

#[test]
fn a_failed_send_reports_the_callee_status_and_keeps_unread_responses() {
    run(async {
        const ECHO_THEN_ABORT: Bidi<u32, u32> = Bidi::new("echo_then_abort");
        let router = Router::new().bidi(ECHO_THEN_ABORT, |mut reqs, mut tx, _| async move {
            let n = reqs.recv().await.unwrap()?;
            tx.send(&n).await?;
            Err(Status::aborted("done"))
        });
        let (client, _server) = served(router).await;
        let mut call = client.bidi(&ECHO_THEN_ABORT, CallOptions::new()).await.unwrap();
        call.send(&5).await.unwrap();
        until(client.session(), || client.session().stats().resets_received == 1).await;
        assert_eq!(call.send(&6).await.unwrap_err().code(), Code::ABORTED);
        assert_eq!(call.recv().await, Some(Ok(5)), "the response read ahead is still there");
        assert_eq!(call.recv().await.unwrap().unwrap_err().code(), Code::ABORTED);
        assert_eq!(call.recv().await, None);
    });
}

#[test]
fn requests_end_once_the_caller_is_gone_so_a_handler_skipping_errors_stops() {
    run(async {
        const SKIP: ClientStreaming<u32, u32> = ClientStreaming::new("skip");
        let (read_tx, mut read) = mpsc::unbounded::<u32>();
        let (counted_tx, mut counted) = mpsc::unbounded::<usize>();
        let router = Router::new().client_streaming(SKIP, move |mut reqs, _| {
            // The requests are read by a task of their own, which the router does not stop
            // when the caller leaves: only the end of `Requests` lets it finish. It skips
            // errors, and reports each request it read.
            let (read, counted) = (read_tx.clone(), counted_tx.clone());
            async_std::task::spawn(async move {
                let mut n = 0;
                while let Some(request) = reqs.next().await {
                    if let Ok(value) = request {
                        n += 1;
                        read.unbounded_send(value).unwrap();
                    }
                }
                counted.unbounded_send(n).unwrap();
            });
            futures::future::pending::<Result<u32, Status>>()
        });
        let (client, _server) = served(router).await;
        let mut call = client.client_streaming(&SKIP, CallOptions::new()).await.unwrap();
        call.send(&1).await.unwrap();
        assert_eq!(read.next().await, Some(1), "the handler's task has the request");
        drop(call); // reset CANCEL
        assert_eq!(counted.next().await, Some(1), "the requests ended after the one sent");
    });
}

#[test]
fn a_sender_moved_to_another_task_is_woken_while_the_call_task_watches() {
    run(async {
        const SPLIT: Bidi<u32, Vec<u8>> = Bidi::new("split");
        const N: usize = 40;
        let router = Router::new().bidi(SPLIT, |mut reqs, mut tx, _| async move {
            let sender = async_std::task::spawn(async move {
                for _ in 0..N {
                    tx.send(&vec![0u8; 64 * 1024]).await?;
                }
                Ok::<(), Status>(())
            });
            while let Some(r) = reqs.recv().await {
                r?;
            }
            sender.await
        });
        let (client, _server) = served(router).await;
        let mut call = client.bidi(&SPLIT, CallOptions::new()).await.unwrap();
        call.send(&1).await.unwrap();
        // The sender task fills our window and parks; a second request re-polls the call task.
        until(client.session(), || client.session().stats().bytes_received >= 256 * 1024).await;
        call.send(&2).await.unwrap();
        call.finish().await.unwrap();
        let mut n = 0;
        while let Some(r) = call.recv().await {
            r.unwrap();
            n += 1;
        }
        assert_eq!(n, N);
    });
}

#[test]
fn finishing_a_streaming_call_keeps_to_the_deadline() {
    run(async {
        const BLOB: ClientStreaming<Vec<u8>, u32> = ClientStreaming::new("blob");
        let (client, server) = pair().await;
        // A callee that accepts and never reads nor answers.
        async_std::task::spawn(async move {
            let mut held = Vec::new();
            while let Some(incoming) = server.accept().await {
                held.push(incoming.accept());
            }
        });
        client.ping().await.unwrap(); // the callee's SETTINGS: a 256 KiB window
        let client = Client::new(client);
        let options = CallOptions::new().timeout(Duration::from_millis(200));
        let mut call = client.client_streaming(&BLOB, options).await.unwrap();
        // 500 KiB: the window takes 256 KiB, the send buffer the rest; none is read.
        for _ in 0..5 {
            call.send(&vec![0u8; 100 * 1024]).await.unwrap();
        }
        // finish waits for the queued requests to leave, which never happens: the deadline
        // ends the call.
        assert_eq!(call.finish().await.unwrap_err().code(), Code::DEADLINE_EXCEEDED);
    });
}

/// A client session and an unspawned server (session, driver) over loopback TCP.
async fn unspawned_server() -> (Session, (Session, wsmux::Driver)) {
    let listener = async_std::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = async {
        let (tcp, _) = listener.accept().await.unwrap();
        wsmux::server::accept(tcp, &wsmux::server::ServerConfig::default()).await.unwrap()
    };
    let client = async {
        let tcp = async_std::net::TcpStream::connect(addr).await.unwrap();
        let url = format!("ws://{addr}/mux");
        wsmux::client::connect_on(tcp, &url, wsmux::Config::default()).await.unwrap()
    };
    let ((client, client_driver), server) = futures::join!(Box::pin(client), Box::pin(server));
    wsmux::spawn(client_driver);
    (client, server)
}

#[test]
fn serve_connection_answers_at_once_in_place_and_spawns_calls_that_wait() {
    const SLOW: Unary<u32, u32> = Unary::new("slow");
    run(async {
        let (client, (server, driver)) = unspawned_server().await;
        // The slow call waits until the test lets it go.
        let (release, released) = futures::channel::oneshot::channel::<()>();
        let released = Arc::new(std::sync::Mutex::new(Some(released)));
        let router = math().unary(SLOW, move |n: u32, _| {
            let released = released.lock().unwrap().take();
            async move {
                released.expect("one slow call").await.unwrap();
                Ok(n + 1)
            }
        });
        let spawned = Arc::new(AtomicUsize::new(0));
        let counter = spawned.clone();
        let (spawn_tx, mut spawns) = mpsc::unbounded();
        let connection = router.serve_connection_with(server, driver, move |call| {
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = spawn_tx.unbounded_send(());
            async_std::task::spawn(call);
        });
        let connection = async_std::task::spawn(connection);
        let client = Client::new(client);
        for i in 0..10 {
            assert_eq!(client.unary(&ADD, &(i, 1)).await, Ok(i + 1));
        }
        assert_eq!(spawned.load(Ordering::SeqCst), 0, "answered without a task of their own");
        // A call that waits runs as a task, and the connection serves others meanwhile.
        let slow_client = client.clone();
        let slow = async_std::task::spawn(async move { slow_client.unary(&SLOW, &41).await });
        spawns.next().await.unwrap(); // the slow call waits, in a task of its own
        assert_eq!(client.unary(&ADD, &(1, 1)).await, Ok(2), "served while the slow call waits");
        release.send(()).unwrap();
        assert_eq!(slow.await, Ok(42));
        assert_eq!(spawned.load(Ordering::SeqCst), 1);
        // Streaming calls work the same way.
        let mut counted = client.server_streaming(&COUNT, &3, CallOptions::new()).await.unwrap();
        let mut got = Vec::new();
        while let Some(n) = counted.recv().await {
            got.push(n.unwrap());
        }
        assert_eq!(got, [0, 1, 2]);
        // The future ends with the connection.
        client.session().close(wsmux::ErrorCode::NO_ERROR, "done");
        drop(client);
        async_std::future::timeout(Duration::from_secs(10), connection)
            .await
            .expect("the connection's future ends when the session does")
            .unwrap();
    });
}

#[test]
#[should_panic(expected = "the driver of another connection")]
fn serve_connection_refuses_a_driver_of_another_connection() {
    run(async {
        let (_c1, (server_one, _driver_one)) = unspawned_server().await;
        let (_c2, (_server_two, driver_two)) = unspawned_server().await;
        drop(math().serve_connection(server_one, driver_two));
    });
}

/// `serve_connection` writes the answer to a call that arrived whole before it reads the
/// socket again: the read that finds it empty (a system call on async-io) comes after the
/// answer, not between the request and the answer. It still comes, so later calls are heard.
#[test]
fn serve_connection_answers_before_the_read_that_finds_the_socket_empty() {
    run(async {
        let (client_io, server_io) = common::faulty::duplex(1 << 20);
        // What the server's transport is asked to do, in order.
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = log.clone();
        let watch = move |event| {
            if event != IoEvent::ReadStart {
                record.lock().unwrap().push(event);
            }
        };
        let server_io = Watched { inner: server_io, watch: Arc::new(watch) };
        // No keepalive: every message the server reads is a call's.
        let mut session = wsmux::Config::default();
        session.protocol.keepalive_interval = None;
        let mut config = wsmux::server::ServerConfig::default();
        config.session = session.clone();
        let server = wsmux::server::accept(server_io, &config);
        let client = wsmux::client::connect_on(client_io, "ws://in-memory/mux", session);
        let ((client, client_driver), (server, server_driver)) =
            futures::try_join!(Box::pin(client), Box::pin(server)).unwrap();
        wsmux::spawn(client_driver);
        let connection = math().serve_connection(server, server_driver);
        let connection = async_std::task::spawn(connection);
        let client = Client::new(client);
        assert_eq!(client.unary(&ADD, &(1, 1)).await, Ok(2));
        for i in 0..20 {
            log.lock().unwrap().clear();
            assert_eq!(client.unary(&ADD, &(i, 1)).await, Ok(i + 1), "later calls are heard");
            let ops = log.lock().unwrap().clone();
            let read =
                ops.iter().position(|&op| op == IoEvent::Read).expect("the request was read");
            assert_eq!(ops.get(read + 1), Some(&IoEvent::Write), "answered first: {ops:?}");
        }
        client.session().close(wsmux::ErrorCode::NO_ERROR, "done");
        drop(client);
        async_std::future::timeout(Duration::from_secs(10), connection).await.unwrap().unwrap();
    });
}

#[test]
fn the_interop_service_answers_every_shape_in_raw_bytes_beside_the_reference_routes() {
    use wsmux::interop;
    run(async {
        let (client, server) = pair().await;
        async_std::task::spawn(interop::serve(server));
        let rpc = Client::with_codec(client.clone(), wsmux::Raw);
        let bytes = |s: &str| Bytes::copy_from_slice(s.as_bytes());

        assert_eq!(rpc.unary(&interop::UNARY, &bytes("hi")).await.unwrap(), "hi");
        let mut fail = vec![0x01, 0x05];
        fail.extend_from_slice(b"as asked");
        let status = rpc.unary(&interop::FAIL, &Bytes::from(fail)).await.unwrap_err();
        assert_eq!((status.code(), status.message()), (Code(0x105), "as asked"));
        let status = rpc.unary(&interop::FAIL, &Bytes::from_static(&[0, 0])).await.unwrap_err();
        assert_eq!(status.code(), Code::INVALID_ARGUMENT);
        let traced = CallOptions::new().header("trace", "ab");
        let value = rpc.unary_with(&interop::HEADER, &bytes("trace"), traced).await.unwrap();
        assert_eq!(value, "ab");
        let status = rpc.unary(&interop::HEADER, &bytes("none")).await.unwrap_err();
        assert_eq!(status.code(), Code::NOT_FOUND);

        let mut counted =
            rpc.server_streaming(&interop::COUNT, &bytes("3"), CallOptions::new()).await.unwrap();
        let mut got = Vec::new();
        while let Some(v) = counted.recv().await {
            got.push(v.unwrap());
        }
        assert_eq!(got, ["0", "1", "2"]);
        let mut counted = rpc
            .server_streaming(&interop::COUNT, &bytes("65537"), CallOptions::new())
            .await
            .unwrap();
        assert_eq!(counted.recv().await.unwrap().unwrap_err().code(), Code::INVALID_ARGUMENT);

        let mut concat = rpc.client_streaming(&interop::CONCAT, CallOptions::new()).await.unwrap();
        for part in ["ab", "", "cd"] {
            concat.send(&bytes(part)).await.unwrap();
        }
        assert_eq!(concat.finish().await.unwrap(), "abcd");

        let mut echo = rpc.bidi(&interop::ECHO, CallOptions::new()).await.unwrap();
        for part in ["x", "yz"] {
            echo.send(&bytes(part)).await.unwrap();
            assert_eq!(echo.recv().await.unwrap().unwrap(), part);
        }
        echo.finish().await.unwrap();
        assert!(echo.recv().await.is_none());

        // interop.hang never answers: the callee's deadline (from the call header) ends it.
        let header = CallHeader { timeout_ms: 50, headers: Vec::new() };
        let open = OpenOptions::new("interop.hang").metadata(header.encode()).message(vec![0u8]);
        let mut ch = client.open_with(open.finish()).await.unwrap();
        assert_eq!(ch.recv().await.unwrap().unwrap()[..3], [1, 0, 4], "DEADLINE_EXCEEDED");
        assert_eq!(ch.recv().await.unwrap(), None);

        // The plain routes share the session with the calls; unknown ones are still refused.
        let mut echo = client.open("echo").await.unwrap();
        echo.send(bytes("plain")).await.unwrap();
        assert_eq!(echo.recv().await.unwrap().unwrap(), "plain");
        let err = client.open("interop.nope").await.unwrap().recv().await.unwrap_err();
        assert!(err.to_string().contains("no route"), "{err}");
    });
}

#[cfg(feature = "json")]
#[test]
fn the_json_interop_methods_sum_and_call_the_caller_back_in_every_shape() {
    use serde_json::{json, Value};
    use wsmux::interop::json::{self as ij, peer, Answers, Callback};
    run(async {
        let (client, server) = pair().await;
        async_std::task::spawn(wsmux::interop::serve(server));
        // The client serves the methods the server calls back, JSON values as a browser would.
        let peer_methods = Router::with_codec(wsmux::Json)
            .unary(peer::UNARY, |v: Value, _| async move { Ok(json!({ "got": v })) })
            .server_streaming(peer::SERVER_STREAMING, |v: Value, mut out, _| async move {
                let n = v.as_u64().ok_or_else(|| Status::invalid_argument("a count"))?;
                for i in 0..n {
                    out.send(&json!(i)).await?;
                }
                Ok(())
            })
            .client_streaming(peer::CLIENT_STREAMING, |mut reqs, _| async move {
                let mut all = Vec::new();
                while let Some(v) = reqs.recv().await {
                    all.push(v?);
                }
                Ok(Value::Array(all))
            })
            .bidi(peer::BIDI, |mut reqs, mut out, _| async move {
                while let Some(v) = reqs.recv().await {
                    out.send(&json!([v?])).await?;
                }
                Ok(())
            });
        async_std::task::spawn(peer_methods.serve(client.clone()));
        let rpc = Client::with_codec(client.clone(), wsmux::Json);

        let sum = rpc.unary(&ij::SUM, &vec![1, -2, 30]).await.unwrap();
        assert_eq!((sum.sum, sum.count), (29, 3));
        let big = rpc.unary(&ij::SUM, &vec![ij::MAX_SAFE_INTEGER, 1]).await.unwrap_err();
        assert_eq!(big.code(), Code::OUT_OF_RANGE);
        // Not a list of integers: the codec refuses it, INVALID_ARGUMENT.
        let floats = Unary::<Value, Value>::new("interop.json.sum");
        let status = rpc.unary(&floats, &json!([1.5])).await.unwrap_err();
        assert_eq!(status.code(), Code::INVALID_ARGUMENT, "{status:?}");

        let call = |kind: &str, requests: Vec<Value>| Callback {
            kind: kind.into(),
            requests,
            timeout_ms: None,
        };
        let back = |a: Answers| a.responses;
        let answers = rpc.unary(&ij::CALLBACK, &call("unary", vec![json!("hi")])).await.unwrap();
        assert_eq!(back(answers), [json!({ "got": "hi" })]);
        let answers =
            rpc.unary(&ij::CALLBACK, &call("server_streaming", vec![json!(3)])).await.unwrap();
        assert_eq!(back(answers), [json!(0), json!(1), json!(2)]);
        let reqs = vec![json!(1), json!("two"), json!(null)];
        let answers =
            rpc.unary(&ij::CALLBACK, &call("client_streaming", reqs.clone())).await.unwrap();
        assert_eq!(back(answers), [Value::Array(reqs.clone())]);
        let answers = rpc.unary(&ij::CALLBACK, &call("bidi", reqs.clone())).await.unwrap();
        assert_eq!(back(answers), reqs.iter().map(|v| json!([v])).collect::<Vec<_>>());
        // The callee's failure comes back as the callback's status.
        let status = rpc
            .unary(&ij::CALLBACK, &call("server_streaming", vec![json!("x")]))
            .await
            .unwrap_err();
        assert_eq!((status.code(), status.message()), (Code::INVALID_ARGUMENT, "a count"));
        let status = rpc.unary(&ij::CALLBACK, &call("unary", vec![])).await.unwrap_err();
        assert_eq!(status.code(), Code::INVALID_ARGUMENT);
        let status = rpc.unary(&ij::CALLBACK, &call("sideways", vec![])).await.unwrap_err();
        assert_eq!(status.code(), Code::INVALID_ARGUMENT);
        // timeout_ms 0 is a deadline already passed: no callback, whatever the callee would do.
        let expired = Callback { timeout_ms: Some(0), ..call("unary", vec![json!("hi")]) };
        let status = rpc.unary(&ij::CALLBACK, &expired).await.unwrap_err();
        assert_eq!(status.code(), Code::DEADLINE_EXCEEDED, "{status:?}");
    });
}
