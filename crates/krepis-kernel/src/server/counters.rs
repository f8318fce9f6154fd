//! What a server counts: shared by the engine, the proxy and each guarded
//! connection.

use std::sync::atomic::AtomicU64;

/// What a server counts, read by `ServerStats`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests answered, 502s included.
    pub requests: AtomicU64,
    /// Upstreams that could not be reached or failed mid-request.
    pub upstream_errors: AtomicU64,
    /// Downstream connections open now.
    pub active_connections: AtomicU64,
    /// Deadlines that ended a connection or a request.
    pub timeouts: AtomicU64,
    /// Connections refused because the cap was reached.
    pub refused_connections: AtomicU64,
    /// Kept-alive connections closed after their idle timeout.
    pub idle_closed: AtomicU64,
}
