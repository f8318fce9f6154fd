//! The server engine: a Pingora reverse proxy started and stopped through
//! the control plane (feature `server`).
//!
//! [`address`] reads the addresses; [`proxy`] is what Pingora does with a
//! request (round-robin, an unreachable upstream skipped, a 502 that says
//! why); [`connect`] opens upstream connections; [`engine`] owns the
//! threads, the listener and the stop.

pub mod address;
pub mod connect;
pub mod engine;
pub mod proxy;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::control::Failure;
use crate::proto::{ServerStarted, ServerStats};
use crate::result::KrepisResult;
use engine::Engine;

/// The most worker threads one server may ask for.
const MAX_THREADS: u32 = 256;

static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);
static RUNNING: Mutex<Option<HashMap<u64, Arc<Engine>>>> = Mutex::new(None);

fn running() -> MutexGuard<'static, Option<HashMap<u64, Arc<Engine>>>> {
    // Each use is one insert, lookup or remove: a panic cannot leave it half-changed.
    RUNNING.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn unknown(handle: u64) -> Failure {
    (
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

/// Starts a server listening on `listen` that forwards to `upstreams`.
pub fn start(listen: &str, upstreams: &[String], threads: u32) -> Result<ServerStarted, Failure> {
    let listen = address::parse(listen, "listen address")?;
    let upstreams = address::upstreams(upstreams)?;
    if threads > MAX_THREADS {
        return Err((
            KrepisResult::Failed,
            format!(
                "Cannot start the server: {threads} threads asked for, at most {MAX_THREADS}\nHint: leave threads unset for one per CPU"
            ),
        ));
    }
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n as usize,
    };
    let engine = engine::start(listen, &upstreams, threads)?;
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
