//! One running server: its tokio runtime, its accept loop, and how it stops.
//!
//! The listener is bound on the caller's thread, so a port in use or a
//! refused address is an error from `start` and nothing is left listening.
//! Requests are served on the engine's own threads. `stop` closes the
//! listener at once, lets requests in flight finish for up to the grace
//! period, then cuts what is left; `close` also joins the threads.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use pingora_core::apps::ServerApp;
use pingora_core::protocols::l4::stream::Stream as TcpConnection;
use pingora_core::server::configuration::ServerConf;
use pingora_proxy::{HttpProxy, http_proxy};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::proxy::{Counters, Proxy};
use crate::control::Failure;
use crate::result::KrepisResult;

/// How long `stop` waits for the accept loop to close the listener (it
/// does so as soon as it is scheduled).
const CLOSE_LISTENER_WITHIN: Duration = Duration::from_secs(5);
/// How long `close` waits for the engine's threads to end.
const JOIN_WITHIN: Duration = Duration::from_secs(5);

type App = HttpProxy<Proxy>;

/// A started server.
pub struct Engine {
    /// The bound address.
    pub address: SocketAddr,
    /// What it counts.
    pub counters: Arc<Counters>,
    runtime: Mutex<Option<Runtime>>,
    // None while serving; Some(grace) once a stop was asked for.
    stop: watch::Sender<Option<Duration>>,
    listener_closed: Mutex<mpsc::Receiver<()>>,
    stopped: Arc<AtomicBool>,
}

fn failed(action: &str, err: impl std::fmt::Display, hint: &str) -> Failure {
    (
        KrepisResult::Failed,
        format!("Cannot start the server: {action} ({err})\nHint: {hint}"),
    )
}

/// Binds `listen` and starts serving with `threads` worker threads.
pub fn start(listen: SocketAddr, upstreams: &[SocketAddr], threads: usize) -> Result<Engine, Failure> {
    let listener = std::net::TcpListener::bind(listen).map_err(|err| bind_failure(listen, &err))?;
    let address = listener.local_addr().map_err(|err| {
        failed(
            "the bound address cannot be read",
            err,
            "report this with your OS and Deno version",
        )
    })?;
    if let Some(upstream) = upstreams.iter().find(|upstream| is_self(address, **upstream)) {
        return Err(failed(
            &format!("upstream {upstream} is the server itself (listening on {address})"),
            "each request would be forwarded to itself without end",
            "list the servers behind the proxy as upstreams, not its own address",
        ));
    }
    listener.set_nonblocking(true).map_err(|err| {
        failed(
            "the listener cannot be made non-blocking",
            err,
            "report this with your OS and Deno version",
        )
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("krepis-server")
        .enable_all()
        .build()
        .map_err(|err| {
            failed(
                "its threads cannot be started",
                err,
                "free resources or ask for fewer threads",
            )
        })?;
    let listener = {
        let _entered = runtime.enter();
        TcpListener::from_std(listener).map_err(|err| {
            failed(
                "the listener cannot be registered",
                err,
                "report this with your OS and Deno version",
            )
        })?
    };
    let counters = Arc::new(Counters::default());
    let conf = ServerConf {
        threads,
        // Attempts per request: one per upstream (an unreachable one is
        // skipped), and one more for a pooled connection found closed.
        max_retries: upstreams.len() + 1,
        ..ServerConf::default()
    };
    let app = Arc::new(http_proxy(
        &Arc::new(conf),
        Proxy::new(upstreams, Arc::clone(&counters)),
    ));
    let (stop, stop_asked) = watch::channel(None);
    let (closed, listener_closed) = mpsc::channel();
    let stopped = Arc::new(AtomicBool::new(false));
    runtime.spawn(serve(
        listener,
        app,
        stop_asked,
        closed,
        Arc::clone(&counters),
        Arc::clone(&stopped),
    ));
    Ok(Engine {
        address,
        counters,
        runtime: Mutex::new(Some(runtime)),
        stop,
        listener_closed: Mutex::new(listener_closed),
        stopped,
    })
}

/// Whether `upstream` is the server bound at `address`: the same port, on
/// the same IP or with both IPs loopback or unspecified. (Another address
/// of this machine is not detected.)
fn is_self(address: SocketAddr, upstream: SocketAddr) -> bool {
    let local = |ip: std::net::IpAddr| ip.is_unspecified() || ip.is_loopback();
    upstream.port() == address.port() && (upstream.ip() == address.ip() || local(address.ip()) && local(upstream.ip()))
}

fn bind_failure(listen: SocketAddr, err: &std::io::Error) -> Failure {
    let hint = match err.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "another process (or server) listens on port {}; stop it, or listen on port 0 to get a free port",
            listen.port()
        ),
        std::io::ErrorKind::AddrNotAvailable => {
            format!(
                "{} is not an address of this machine; use 127.0.0.1 or 0.0.0.0",
                listen.ip()
            )
        }
        std::io::ErrorKind::PermissionDenied if listen.port() < 1024 => format!(
            "ports below 1024 need privileges on this system; use a port of 1024 or above (or 0), not {}",
            listen.port()
        ),
        std::io::ErrorKind::PermissionDenied => {
            "the system refuses this process that port (a security policy or firewall); try another port or 0"
                .to_owned()
        }
        _ => "check the listen address".to_owned(),
    };
    failed(&format!("cannot listen on {listen}"), err, &hint)
}

impl Engine {
    /// Whether the stop finished: no request is in flight any more.
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Stops listening (the port is free when this returns) and gives
    /// requests in flight `grace` to finish. A second stop changes nothing.
    pub fn stop(&self, grace: Duration) {
        let asked = self.stop.send_if_modified(|stop| {
            if stop.is_some() {
                return false;
            }
            *stop = Some(grace);
            true
        });
        if asked {
            let closed = self
                .listener_closed
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // Disconnected: the loop already ended (its runtime is gone).
            let _ = closed.recv_timeout(CLOSE_LISTENER_WITHIN);
        }
    }

    /// Stops without grace if still serving, then ends the engine's threads.
    pub fn close(&self) {
        self.stop(Duration::ZERO);
        let runtime = self
            .runtime
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(runtime) = runtime {
            // Drops every task that is left and joins the worker threads.
            runtime.shutdown_timeout(JOIN_WITHIN);
        }
        self.stopped.store(true, Ordering::Release);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.close();
    }
}

/// Accepts connections until a stop is asked for, then drains.
async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    mut stop: watch::Receiver<Option<Duration>>,
    listener_closed: mpsc::Sender<()>,
    counters: Arc<Counters>,
    stopped: Arc<AtomicBool>,
) {
    // Pingora's shutdown signal: a request that finishes after it is set
    // does not keep its connection alive.
    let (shutdown, shutdown_seen) = watch::channel(false);
    let mut connections = JoinSet::new();
    let grace = loop {
        tokio::select! {
            changed = stop.changed() => {
                match (changed, *stop.borrow()) {
                    (Ok(()), None) => continue,
                    (Ok(()), Some(grace)) => break grace,
                    // The engine is gone: stop without grace.
                    (Err(_), _) => break Duration::ZERO,
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let connection = Connection::open(&counters);
                    let app = Arc::clone(&app);
                    let shutdown = shutdown_seen.clone();
                    connections.spawn(async move {
                        let _open = connection;
                        let mut next: Option<pingora_core::protocols::Stream> = Some(Box::new(TcpConnection::from(stream)));
                        while let Some(stream) = next {
                            next = app.process_new(stream, &shutdown).await;
                        }
                    });
                }
                // Out of file descriptors or a connection reset before it
                // was accepted: pause rather than spin, then go on.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    };
    drop(listener);
    let _ = listener_closed.send(());
    let _ = shutdown.send(true);
    // Wakes keep-alive connections waiting for a next request: they close.
    app.cleanup().await;
    let drained = tokio::time::timeout(grace, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    stopped.store(true, Ordering::Release);
}

/// An open downstream connection, counted while it lives.
struct Connection(Arc<Counters>);

impl Connection {
    fn open(counters: &Arc<Counters>) -> Self {
        counters
            .active_connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(Arc::clone(counters))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.0
            .active_connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
