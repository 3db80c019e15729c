//! A key-value store served over wsmux RPC, and a client that uses every kind of call:
//! unary `put` and `get` (with NOT_FOUND), a `watch` stream of changes, a client-streaming
//! `put_many`, a slow call cut short by its deadline, and the server calling the client back
//! on the same session.
//!
//! Run both ends on loopback:   `cargo run --example rpc`
//! Or apart:                     `cargo run --example rpc -- --server 127.0.0.1:9001`
//!                               `cargo run --example rpc -- --client ws://127.0.0.1:9001/rpc`

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use futures::channel::mpsc;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use wsmux::rpc::{
    CallOptions, Client, ClientStreaming, Code, Router, ServerStreaming, Status, Unary,
};
use wsmux::server::{Server, ServerConfig};
use wsmux::{Config, Session};

/// The service, declared once for both sides.
mod kv {
    use super::*;

    /// Sets a key; answers the previous value.
    pub(crate) const PUT: Unary<(String, String), Option<String>> = Unary::new("kv.put");
    /// Reads a key; NOT_FOUND if it is not set.
    pub(crate) const GET: Unary<String, String> = Unary::new("kv.get");
    /// Streams the keys that start with the prefix: their current values, then every change.
    pub(crate) const WATCH: ServerStreaming<String, Change> = ServerStreaming::new("kv.watch");
    /// Sets many keys; answers how many.
    pub(crate) const PUT_MANY: ClientStreaming<(String, String), u32> =
        ClientStreaming::new("kv.put_many");
    /// Works for the given number of milliseconds (to show deadlines).
    pub(crate) const SLOW: Unary<u64, ()> = Unary::new("kv.slow");
    /// Asks the caller for its name, through a call the other way.
    pub(crate) const WHOAMI: Unary<(), String> = Unary::new("kv.whoami");

    /// Served by the CLIENT: its name.
    pub(crate) const NAME: Unary<(), String> = Unary::new("client.name");

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub(crate) struct Change {
        pub(crate) key: String,
        pub(crate) value: String,
    }
}

/// Changes a slow watcher has not taken yet; past this it is dropped (its stream ends with
/// RESOURCE_EXHAUSTED), so one slow watcher never makes the store buffer without bound.
const WATCH_BACKLOG: usize = 64;

#[derive(Default)]
struct Store {
    values: DashMap<String, String>,
    watchers: Mutex<Vec<(String, mpsc::Sender<kv::Change>)>>,
}

impl Store {
    fn put(&self, key: String, value: String) -> Option<String> {
        let previous = self.values.insert(key.clone(), value.clone());
        let change = kv::Change { key, value };
        let mut watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        // A watcher that is gone or too far behind is dropped.
        watchers.retain_mut(|(prefix, tx)| {
            if !change.key.starts_with(prefix.as_str()) {
                return !tx.is_closed();
            }
            tx.try_send(change.clone()).is_ok()
        });
        previous
    }
}

fn router(store: Arc<Store>) -> Router {
    let (s1, s2, s3, s4) = (store.clone(), store.clone(), store.clone(), store);
    Router::new()
        .unary(kv::PUT, move |(key, value): (String, String), _| {
            let store = s1.clone();
            async move { Ok(store.put(key, value)) }
        })
        .unary(kv::GET, move |key: String, _| {
            // Read under the map's guard and drop it at once: never hold it across an await.
            let found = s2.values.get(&key).map(|v| v.clone());
            async move { found.ok_or_else(|| Status::not_found(format!("no key {key:?}"))) }
        })
        .server_streaming(kv::WATCH, move |prefix: String, mut tx, _| {
            let (watch_tx, mut changes) = mpsc::channel(WATCH_BACKLOG);
            s3.watchers.lock().unwrap_or_else(|e| e.into_inner()).push((prefix.clone(), watch_tx));
            // Registered first, then the current values: a put racing with this call shows up
            // in one or the other (maybe both), never in neither.
            let current: Vec<kv::Change> = s3
                .values
                .iter()
                .filter(|e| e.key().starts_with(prefix.as_str()))
                .map(|e| kv::Change { key: e.key().clone(), value: e.value().clone() })
                .collect();
            async move {
                for change in &current {
                    tx.send(change).await?;
                }
                while let Some(change) = changes.next().await {
                    tx.send(&change).await?;
                }
                Err(Status::resource_exhausted("the watcher fell too far behind"))
            }
        })
        .client_streaming(kv::PUT_MANY, move |mut pairs, _| {
            let store = s4.clone();
            async move {
                let mut n = 0;
                while let Some(pair) = pairs.recv().await {
                    let (key, value) = pair?;
                    store.put(key, value);
                    n += 1;
                }
                Ok(n)
            }
        })
        .unary(kv::SLOW, |ms: u64, _| async move {
            let started = Instant::now();
            // Printed if the call is cut short: the future is dropped mid-sleep.
            let _report = OnDrop(move || {
                println!("  server: slow call stopped after {} ms", started.elapsed().as_millis())
            });
            futures_timer::Delay::new(Duration::from_millis(ms)).await;
            Ok(())
        })
        .unary(kv::WHOAMI, |(), ctx| async move {
            // The handler calls the caller back on the same session.
            Client::new(ctx.session().clone()).unary(&kv::NAME, &()).await
        })
}

struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

async fn serve(addr: &str) -> Arc<Server> {
    let mut config = ServerConfig::default();
    config.path = Some("/rpc".into());
    let server = Server::bind(addr, config).await;
    let server = Arc::new(server.unwrap_or_else(|e| fail(&format!("bind {addr}: {e}"))));
    let router = router(Arc::new(Store::default()));
    let accept = server.clone();
    async_std::task::spawn(async move {
        while let Some(session) = accept.accept().await {
            async_std::task::spawn(router.clone().serve(session));
        }
    });
    server
}

async fn client(url: &str) -> Result<(), Status> {
    let (session, driver) = wsmux::client::connect(url, Config::default())
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    wsmux::spawn(driver);
    // The client serves too: the server may call it.
    let serves =
        Router::new().unary(kv::NAME, |(), _| async move { Ok("the example client".to_owned()) });
    async_std::task::spawn(serves.serve(session.clone()));
    run_calls(session).await
}

async fn run_calls(session: Session) -> Result<(), Status> {
    let kv = Client::new(session);

    let mut watch =
        kv.server_streaming(&kv::WATCH, &"user/".to_owned(), CallOptions::new()).await?;
    kv.unary(&kv::PUT, &("user/ada".into(), "Lovelace".into())).await?;
    let previous = kv.unary(&kv::PUT, &("user/ada".into(), "Byron".into())).await?;
    println!("put user/ada twice; the second put answered the previous value {previous:?}");
    println!("get user/ada -> {:?}", kv.unary(&kv::GET, &"user/ada".into()).await?);
    match kv.unary(&kv::GET, &"user/nobody".into()).await {
        Err(status) if status.code() == Code::NOT_FOUND => println!("get user/nobody -> {status}"),
        other => println!("get user/nobody -> unexpected {other:?}"),
    }

    let mut many = kv.client_streaming(&kv::PUT_MANY, CallOptions::new()).await?;
    for i in 0..3 {
        many.send(&(format!("user/{i}"), format!("n{i}"))).await?;
    }
    println!("put_many -> {} keys", many.finish().await?);

    let mut seen = BTreeMap::new();
    while seen.len() < 4 {
        match watch.next().await {
            Some(change) => {
                let change = change?;
                seen.insert(change.key, change.value);
            }
            None => break,
        }
    }
    println!("watch user/ saw the latest of {} keys: {seen:?}", seen.len());
    drop(watch); // cancels the stream: the server's handler stops

    let started = Instant::now();
    let options = CallOptions::new().timeout(Duration::from_millis(100));
    match kv.unary_with(&kv::SLOW, &1000, options).await {
        Err(status) => println!(
            "slow call (1000 ms of work, 100 ms deadline) -> {} after {} ms",
            status.code(),
            started.elapsed().as_millis()
        ),
        Ok(()) => println!("slow call finished?"),
    }
    println!("whoami (the server asks the client back) -> {:?}", kv.unary(&kv::WHOAMI, &()).await?);
    Ok(())
}

const HELP: &str = "wsmux RPC example: a key-value store

USAGE: cargo run --example rpc -- [--server ADDR | --client URL]

  (no option)    server and client in one process, on 127.0.0.1
  --server ADDR  serve on ADDR (for example 127.0.0.1:9001), path /rpc
  --client URL   call a running server (for example ws://127.0.0.1:9001/rpc)";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    async_std::task::block_on(async {
        let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            [] => {
                let server = serve("127.0.0.1:0").await;
                let url = format!("ws://{}/rpc", server.local_addr());
                println!("server on {url}");
                let result = client(&url).await;
                // Give the server's "slow call stopped" line a moment to print.
                futures_timer::Delay::new(Duration::from_millis(50)).await;
                result
            }
            ["--server", addr] => {
                let server = serve(addr).await;
                println!("serving on ws://{}/rpc; Ctrl-C to stop", server.local_addr());
                futures::future::pending().await
            }
            ["--client", url] => client(url).await,
            ["--help" | "-h"] => {
                // Not println!: it panics when stdout is a pipe closed early (`| head`).
                let _ = std::io::Write::write_all(
                    &mut std::io::stdout(),
                    format!("{HELP}\n").as_bytes(),
                );
                return;
            }
            _ => fail("unknown arguments"),
        };
        if let Err(status) = result {
            fail(&format!("call failed: {status}"));
        }
    });
}

fn fail(message: &str) -> ! {
    eprintln!("{message}\n\n{HELP}");
    std::process::exit(2);
}
