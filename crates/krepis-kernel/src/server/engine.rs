//! One running server: its tokio runtime, its accept loop, and how it stops.
//!
//! The listener is bound on the caller's thread, so a port in use or a
//! refused address is an error from `start` and nothing is left listening.
//! Requests are served on the engine's own threads. `stop` closes the
//! listener at once, lets requests in flight finish for up to the grace
//! period, then cuts what is left; `close` also joins the threads.
//!
//! Every accepted socket is [`Guarded`]: held to the header and idle
//! deadlines. At most `max_connections` are open at once; one more is
//! answered `503` and closed at once, so no number of clients can take the
//! host process's last file descriptors.

use std::net::{IpAddr, SocketAddr};
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

use super::counters::Counters;
use super::guard::Guarded;
use super::limits::Limits;
use super::proxy::Proxy;
use crate::result::Failure;

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

fn cannot_start(action: &str, err: impl std::fmt::Display, hint: &str) -> Failure {
    Failure::failed(format!("Cannot start the server: {action} ({err})")).with_hint(hint)
}

/// What a connection past the cap is told before it is closed.
const REFUSED_BODY: &str = "503 Service Unavailable: too many connections are open\n";

/// The whole answer to a connection past the cap.
fn refused() -> String {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{REFUSED_BODY}",
        REFUSED_BODY.len()
    )
}

/// Binds `listen` and starts serving with `threads` worker threads.
pub fn start(listen: SocketAddr, upstreams: &[SocketAddr], threads: usize, limits: Limits) -> Result<Engine, Failure> {
    // An IPv4-mapped IPv6 address is bound as the IPv4 address it maps, on
    // every OS: Windows refuses to bind the mapped spelling (its IPv6
    // sockets are IPv6-only), where Linux and macOS take either.
    let listen = SocketAddr::new(canonical(listen.ip()), listen.port());
    let listener = std::net::TcpListener::bind(listen).map_err(|err| bind_failure(listen, &err))?;
    let address = listener.local_addr().map_err(|err| {
        cannot_start(
            "the bound address cannot be read",
            err,
            "report this with your OS and Deno version",
        )
    })?;
    let local = local_addresses();
    if let Some(upstream) = upstreams.iter().find(|upstream| is_self(address, **upstream, &local)) {
        return Err(cannot_start(
            &format!("upstream {upstream} is the server itself (listening on {address})"),
            "each request would be forwarded to itself without end",
            "list the servers behind the proxy as upstreams, not its own address",
        ));
    }
    listener.set_nonblocking(true).map_err(|err| {
        cannot_start(
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
            cannot_start(
                "its threads cannot be started",
                err,
                "free resources or ask for fewer threads",
            )
        })?;
    let listener = {
        let _entered = runtime.enter();
        TcpListener::from_std(listener).map_err(|err| {
            cannot_start(
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
        // Pooled upstream sockets count against the same descriptors.
        upstream_keepalive_pool_size: ServerConf::default()
            .upstream_keepalive_pool_size
            .min(limits.max_connections),
        ..ServerConf::default()
    };
    let app = Arc::new(http_proxy(
        &Arc::new(conf),
        Proxy::new(upstreams, Arc::clone(&counters), limits),
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
        limits,
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

/// An IP in one spelling: an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`)
/// is the IPv4 address it maps.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Whether `upstream` reaches the server bound at `address`: the same
/// port, and an IP that lands on its socket. Addresses are compared in one
/// spelling; a connection to an unspecified IP lands on this machine; a
/// server bound to an unspecified IP is reached through every address of
/// this machine (`local`), and one bound to `[::]` through IPv4 ones too.
fn is_self(address: SocketAddr, upstream: SocketAddr, local: &[IpAddr]) -> bool {
    if upstream.port() != address.port() {
        return false;
    }
    let (bound, to) = (canonical(address.ip()), canonical(upstream.ip()));
    let on_this_machine =
        |ip: IpAddr| ip.is_loopback() || ip.is_unspecified() || local.iter().any(|l| canonical(*l) == ip);
    if bound.is_unspecified() {
        // `0.0.0.0` takes IPv4 only; `[::]` (dual-stack) takes both.
        return on_this_machine(to) && (bound.is_ipv6() || to.is_ipv4());
    }
    to == bound || bound.is_loopback() && (to.is_loopback() || to.is_unspecified())
}

/// Every IP of this machine's interfaces (empty when they cannot be read).
#[cfg(unix)]
fn local_addresses() -> Vec<IpAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr};
    let mut addresses = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&raw mut list) } != 0 {
        return addresses;
    }
    let mut next = list;
    while !next.is_null() {
        // SAFETY: `next` is a node of the list getifaddrs returned, not yet freed.
        let entry = unsafe { &*next };
        if !entry.ifa_addr.is_null() {
            // SAFETY: ifa_addr points to a sockaddr whose family says its size.
            let family = i32::from(unsafe { (*entry.ifa_addr).sa_family });
            if family == libc::AF_INET {
                // SAFETY: an AF_INET address is a sockaddr_in.
                let v4 = unsafe { &*entry.ifa_addr.cast::<libc::sockaddr_in>() };
                addresses.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr))));
            } else if family == libc::AF_INET6 {
                // SAFETY: an AF_INET6 address is a sockaddr_in6.
                let v6 = unsafe { &*entry.ifa_addr.cast::<libc::sockaddr_in6>() };
                addresses.push(IpAddr::V6(Ipv6Addr::from(v6.sin6_addr.s6_addr)));
            }
        }
        next = entry.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    addresses
}

#[cfg(not(unix))]
fn local_addresses() -> Vec<IpAddr> {
    Vec::new()
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
    cannot_start(&format!("cannot listen on {listen}"), err, &hint)
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
    limits: Limits,
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
                    if counters.active_connections.load(std::sync::atomic::Ordering::Relaxed) >= limits.max_connections as u64 {
                        counters.refused_connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        // Best effort, never waiting: the socket is closed now.
                        let _ = stream.try_write(refused().as_bytes());
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let connection = Connection::open(&counters);
                    let app = Arc::clone(&app);
                    let shutdown = shutdown_seen.clone();
                    let guarded = Guarded::new(TcpConnection::from(stream), limits.header, limits.idle, Arc::clone(&counters));
                    connections.spawn(async move {
                        let _open = connection;
                        let mut next: Option<pingora_core::protocols::Stream> = Some(Box::new(guarded));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn at(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_upstream_that_is_the_server_is_found_in_any_spelling() {
        let local = [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)), "2001:db8::7".parse().unwrap()];
        for (bound, upstream) in [
            ("127.0.0.1:80", "127.0.0.1:80"),
            ("127.0.0.1:80", "[::ffff:127.0.0.1]:80"),
            ("127.0.0.1:80", "0.0.0.0:80"),
            ("[::1]:80", "[::1]:80"),
            ("0.0.0.0:80", "127.0.0.1:80"),
            ("0.0.0.0:80", "192.0.2.7:80"),
            ("0.0.0.0:80", "[::ffff:192.0.2.7]:80"),
            ("[::]:80", "192.0.2.7:80"),
            ("[::]:80", "[2001:db8::7]:80"),
            ("[::]:80", "[::1]:80"),
            ("192.0.2.7:80", "[::ffff:192.0.2.7]:80"),
        ] {
            assert!(is_self(at(bound), at(upstream), &local), "{bound} <- {upstream}");
        }
        for (bound, upstream) in [
            ("127.0.0.1:80", "127.0.0.1:81"),
            ("0.0.0.0:80", "192.0.2.8:80"),
            ("0.0.0.0:80", "[2001:db8::7]:80"),
            ("192.0.2.7:80", "127.0.0.1:80"),
        ] {
            assert!(!is_self(at(bound), at(upstream), &local), "{bound} <- {upstream}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn this_machine_has_a_loopback_address() {
        assert!(local_addresses().iter().any(IpAddr::is_loopback));
    }
}
