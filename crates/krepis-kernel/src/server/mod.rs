//! The server engine: a Pingora reverse proxy started and stopped through
//! the control plane (feature `server`).
//!
//! [`address`] reads the addresses; [`limits`] the deadlines and the
//! connection cap, [`counters`] what is counted; [`proxy`] is what Pingora does with a
//! request (round-robin, an unreachable upstream skipped, a 502 that says
//! why); [`connect`] opens upstream connections; [`guard`] holds each
//! client connection to its deadlines; [`engine`] owns the threads, the
//! listener, the connection cap and the stop.

mod address;
mod connect;
mod counters;
mod engine;
mod guard;
mod limits;
mod proxy;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::proto::{ServerStartRequest, ServerStarted, ServerStats};
use crate::result::{Failure, KrepisResult};
use engine::Engine;
use limits::Limits;

/// The most worker threads one server may ask for.
const MAX_THREADS: u32 = 256;

static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);
static RUNNING: Mutex<Option<HashMap<u64, Arc<Engine>>>> = Mutex::new(None);

fn running() -> MutexGuard<'static, Option<HashMap<u64, Arc<Engine>>>> {
    // Each use is one insert, lookup or remove: a panic cannot leave it half-changed.
    RUNNING.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn unknown(handle: u64) -> Failure {
    Failure::new(
        KrepisResult::UnknownHandle,
        format!("Cannot use server {handle}: it is not running (never started, or closed)"),
    )
}

fn find(handle: u64) -> Result<Arc<Engine>, Failure> {
    running()
        .as_ref()
        .and_then(|map| map.get(&handle).cloned())
        .ok_or_else(|| unknown(handle))
}

/// Starts a server as `start` asks: listening on its `listen`, forwarding
/// to its `upstreams`.
pub fn start(start: &ServerStartRequest) -> Result<ServerStarted, Failure> {
    let listen = address::parse(&start.listen, "listen address")?;
    let upstreams = address::upstreams(&start.upstreams)?;
    let limits = Limits::from_request(start)?;
    let threads = start.threads;
    if threads > MAX_THREADS {
        return Err(Failure::failed(format!(
            "Cannot start the server: {threads} threads asked for, at most {MAX_THREADS}"
        ))
        .with_hint("leave threads unset for one per CPU"));
    }
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n as usize,
    };
    let engine = engine::start(listen, &upstreams, threads, limits)?;
    // The engine's threads (and Pingora's timer thread, which lives on)
    // run kernel code: the library must stay mapped.
    crate::pin::keep_loaded();
    let address = engine.address.to_string();
    let handle = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
    running()
        .get_or_insert_with(HashMap::new)
        .insert(handle, Arc::new(engine));
    Ok(ServerStarted {
        server: handle,
        address,
        max_connections: u32::try_from(limits.max_connections).unwrap_or(u32::MAX),
    })
}

/// What server `handle` counted, and whether its stop finished.
pub fn stats(handle: u64) -> Result<ServerStats, Failure> {
    Ok(snapshot(&*find(handle)?))
}

fn snapshot(engine: &Engine) -> ServerStats {
    let counters = &engine.counters;
    ServerStats {
        requests: counters.requests.load(Ordering::Relaxed),
        upstream_errors: counters.upstream_errors.load(Ordering::Relaxed),
        active_connections: counters.active_connections.load(Ordering::Relaxed),
        stopped: engine.stopped(),
        timeouts: counters.timeouts.load(Ordering::Relaxed),
        refused_connections: counters.refused_connections.load(Ordering::Relaxed),
        idle_closed: counters.idle_closed.load(Ordering::Relaxed),
    }
}

/// Stops server `handle` listening; requests in flight get `grace_ms`.
pub fn stop(handle: u64, grace_ms: u32) -> Result<ServerStats, Failure> {
    let engine = find(handle)?;
    engine.stop(Duration::from_millis(u64::from(grace_ms)));
    Ok(snapshot(&engine))
}

/// Stops server `handle` without grace if it still runs, joins its threads
/// and forgets it.
pub fn close(handle: u64) -> Result<ServerStats, Failure> {
    let engine = running()
        .as_mut()
        .and_then(|map| map.remove(&handle))
        .ok_or_else(|| unknown(handle))?;
    engine.close();
    Ok(snapshot(&engine))
}
