//! A client connection held to its deadlines.
//!
//! Pingora times each read of a request head on its own, and waits for
//! the next request on a kept-alive connection without end. [`Guarded`]
//! wraps the client's socket and fails a read once the deadline of the
//! connection's phase has passed: the whole request head must arrive
//! within `header` of the connection being opened (or of the next
//! request's first byte), and a kept-alive connection may wait at most
//! `idle` for that byte. The proxy marks a request as read
//! ([`Guarded::busy`]) and as answered ([`Guarded::idle`]); while busy,
//! the body's reads are timed by Pingora's read timeout.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora_core::protocols::l4::stream::Stream;
use pingora_core::protocols::raw_connect::ProxyDigest;
use pingora_core::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, TimingDigest, UniqueID,
    UniqueIDType,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::counters::Counters;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading a request head, due by this instant.
    Head(Instant),
    /// Waiting for the first byte of the next request, until this instant.
    Idle(Instant),
    /// A request is being proxied: Pingora's own timeouts apply.
    Busy,
}

/// A client socket with the deadlines of its phase.
pub struct Guarded {
    inner: Stream,
    phase: Mutex<Phase>,
    header: Duration,
    idle: Duration,
    counters: Arc<Counters>,
    timer: Option<(Instant, Pin<Box<Sleep>>)>,
}

impl fmt::Debug for Guarded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guarded")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl Guarded {
    /// Wraps a just accepted socket: its request head is due within `header`.
    pub fn new(inner: Stream, header: Duration, idle: Duration, counters: Arc<Counters>) -> Self {
        Self {
            inner,
            phase: Mutex::new(Phase::Head(Instant::now() + header)),
            header,
            idle,
            counters,
            timer: None,
        }
    }

    fn enter(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = phase;
    }

    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The request head was read: no deadline of ours until it is answered.
    pub fn busy(&self) {
        self.enter(Phase::Busy);
    }

    /// The request was answered: the connection may now idle for `idle`.
    pub fn idle(&self) {
        self.enter(Phase::Idle(Instant::now() + self.idle));
    }

    /// Whether the deadline `at` has passed; if not, the timer is armed to
    /// wake this task at `at`.
    fn due(&mut self, at: Instant, cx: &mut Context<'_>) -> bool {
        if Instant::now() >= at {
            return true;
        }
        match &mut self.timer {
            Some((armed, sleep)) if *armed == at => sleep.as_mut().poll(cx).is_ready(),
            _ => {
                let mut sleep = Box::pin(tokio::time::sleep_until(at));
                let ready = sleep.as_mut().poll(cx).is_ready();
                self.timer = Some((at, sleep));
                ready
            }
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let phase = self.phase();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if let Phase::Idle(_) = phase
                    && buf.filled().len() > before
                {
                    // The next request's first byte: its head is due in `header`.
                    let header = self.header;
                    self.enter(Phase::Head(Instant::now() + header));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => {
                let (at, idle) = match phase {
                    Phase::Busy => return Poll::Pending,
                    Phase::Head(at) => (at, false),
                    Phase::Idle(at) => (at, true),
                };
                if self.due(at, cx) {
                    let (counter, what) = if idle {
                        (&self.counters.idle_closed, "the connection was idle too long")
                    } else {
                        (&self.counters.timeouts, "the request head took too long")
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    // Once only: the connection is closed after this error.
                    self.enter(Phase::Busy);
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, what)));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for Guarded {
    async fn shutdown(&mut self) {
        Shutdown::shutdown(&mut self.inner).await;
    }
}

impl UniqueID for Guarded {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for Guarded {}

impl GetTimingDigest for Guarded {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }
}

impl GetProxyDigest for Guarded {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
}

impl GetSocketDigest for Guarded {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, socket_digest: SocketDigest) {
        self.inner.set_socket_digest(socket_digest);
    }
}

#[async_trait]
impl Peek for Guarded {}
