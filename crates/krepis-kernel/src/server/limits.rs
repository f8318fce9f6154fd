//! Every deadline and the connection cap of one server, read from its
//! start request.

use std::time::Duration;

use crate::proto::ServerStartRequest;
use crate::result::Failure;

/// The most client connections one server may be allowed.
const MAX_CONNECTIONS: u32 = 1 << 20;

/// Every deadline and the connection cap of one server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The whole request head.
    pub header: Duration,
    /// A kept-alive client connection waiting for its next request.
    pub idle: Duration,
    /// Between two reads of a request body.
    pub body: Duration,
    /// Connecting to an upstream.
    pub upstream_connect: Duration,
    /// Between two reads of an upstream's answer.
    pub upstream_read: Duration,
    /// An unused upstream connection kept for reuse.
    pub upstream_idle: Duration,
    /// Client connections open at once.
    pub max_connections: usize,
}

impl Limits {
    /// The limits asked for, 0 meaning the default.
    pub fn from_request(start: &ServerStartRequest) -> Result<Self, Failure> {
        let ms = |asked: u32, default: u64| Duration::from_millis(if asked == 0 { default } else { u64::from(asked) });
        if start.max_connections > MAX_CONNECTIONS {
            return Err(Failure::failed(format!(
                "Cannot start the server: {} connections asked for, at most {MAX_CONNECTIONS}",
                start.max_connections
            ))
            .with_hint("leave maxConnections unset for a quarter of the descriptor limit"));
        }
        Ok(Self {
            header: ms(start.header_timeout_ms, 10_000),
            idle: ms(start.idle_timeout_ms, 60_000),
            body: ms(start.body_timeout_ms, 60_000),
            upstream_connect: ms(start.upstream_connect_timeout_ms, 5_000),
            upstream_read: ms(start.upstream_read_timeout_ms, 60_000),
            upstream_idle: ms(start.upstream_idle_timeout_ms, 60_000),
            max_connections: match start.max_connections {
                0 => default_max_connections(),
                n => n as usize,
            },
        })
    }
}

/// A quarter of the process's soft descriptor limit (each proxied request
/// holds a client and an upstream socket, and the host needs its own), at
/// least 1 and at most 4096.
// rlim_t is u64 here, but not on every target.
#[allow(clippy::useless_conversion)]
pub fn default_max_connections() -> usize {
    const MOST: u64 = 4096;
    #[cfg(unix)]
    let limit = {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit into the struct we own.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } == 0 && limit.rlim_cur != libc::RLIM_INFINITY
        {
            u64::try_from(limit.rlim_cur).unwrap_or(u64::MAX)
        } else {
            u64::MAX
        }
    };
    #[cfg(not(unix))]
    let limit = 4 * MOST;
    usize::try_from((limit / 4).clamp(1, MOST)).unwrap_or(1)
}
