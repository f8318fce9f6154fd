//! What the engine does with a request: Pingora's proxy pipeline, with the
//! upstream chosen round-robin and an unreachable one skipped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use async_trait::async_trait;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::{Error, ErrorSource, ErrorType, Result};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};

use super::connect::PlainConnect;
use super::counters::Counters;
use super::guard::Guarded;
use super::limits::Limits;

/// The proxy logic Pingora runs for each request.
pub struct Proxy {
    upstreams: Vec<SocketAddr>,
    // The turn of the next request: request n starts at upstream n mod len.
    turn: AtomicUsize,
    counters: Arc<Counters>,
    connect: Arc<dyn pingora_core::connectors::L4Connect + Send + Sync>,
    limits: Limits,
    // This server's mark on the requests it forwards: one that comes back
    // with it went round a loop.
    hop: String,
}

/// The header that carries a server's mark on the requests it forwards.
pub const HOP_HEADER: &str = "krepis-hop";

static NEXT_HOP: AtomicU64 = AtomicU64::new(1);

/// One request's attempts: where its turn started, the upstreams tried,
/// and why the last one failed.
#[derive(Default)]
pub struct Attempts {
    start: usize,
    tried: Vec<SocketAddr>,
    // A reused upstream connection failed before any answer: the next
    // attempt goes to the same upstream on a fresh connection.
    again: bool,
    last_error: Option<String>,
    // The last failure was a deadline: the answer is a 504.
    timed_out: bool,
}

impl Proxy {
    /// Balances over `upstreams` (already checked: non-empty, distinct), in
    /// the order given.
    pub fn new(upstreams: &[SocketAddr], counters: Arc<Counters>, limits: Limits) -> Self {
        Self {
            upstreams: upstreams.to_vec(),
            turn: AtomicUsize::new(0),
            counters,
            connect: Arc::new(PlainConnect(limits.upstream_connect)),
            limits,
            hop: format!("{}.{}", std::process::id(), NEXT_HOP.fetch_add(1, Ordering::Relaxed)),
        }
    }

    fn peer(&self, address: SocketAddr) -> Box<HttpPeer> {
        let mut peer = HttpPeer::new(address, false, String::new());
        peer.options.custom_l4 = Some(Arc::clone(&self.connect));
        peer.options.connection_timeout = Some(self.limits.upstream_connect);
        peer.options.read_timeout = Some(self.limits.upstream_read);
        peer.options.write_timeout = Some(self.limits.upstream_read);
        peer.options.idle_timeout = Some(self.limits.upstream_idle);
        Box::new(peer)
    }

    /// Counts a failure of an upstream and remembers why, for the answer.
    fn upstream_failed(&self, ctx: &mut Attempts, e: &Error) {
        self.counters.upstream_errors.fetch_add(1, Ordering::Relaxed);
        ctx.timed_out = is_timeout(e);
        if ctx.timed_out {
            self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
        }
        ctx.last_error = Some(describe(e));
    }
}

fn is_timeout(e: &Error) -> bool {
    matches!(
        e.etype(),
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
    )
}

/// The client socket of `session`, if it is one the engine guards.
fn guarded(session: &Session) -> Option<&Guarded> {
    session.downstream_session.stream()?.as_any().downcast_ref::<Guarded>()
}

#[async_trait]
impl ProxyHttp for Proxy {
    type CTX = Attempts;

    fn new_ctx(&self) -> Attempts {
        Attempts::default()
    }

    async fn early_request_filter(&self, session: &mut Session, _ctx: &mut Attempts) -> Result<()> {
        // The head is read: from here the body's reads are timed one by one.
        if let Some(stream) = guarded(session) {
            stream.busy();
        }
        session.downstream_session.set_read_timeout(Some(self.limits.body));
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, _ctx: &mut Attempts) -> Result<bool> {
        // A request this server forwarded came back to it: a loop that no
        // address check can see (another proxy, a port mapping). Answer it
        // rather than forward it again.
        let looped = session
            .req_header()
            .headers
            .get_all(HOP_HEADER)
            .iter()
            .any(|value| value.as_bytes() == self.hop.as_bytes());
        if looped {
            let body = bytes::Bytes::from_static(
                b"508 Loop Detected: this request was forwarded back to the server that forwarded it\n",
            );
            let _ = session.respond_error_with_body(508, body).await;
            return Ok(true);
        }
        Ok(false)
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut pingora_http::RequestHeader,
        _ctx: &mut Attempts,
    ) -> Result<()> {
        upstream_request.append_header(HOP_HEADER, self.hop.as_str())?;
        Ok(())
    }

    fn init_downstream_modules(&self, _modules: &mut pingora_core::modules::http::HttpModules) {
        // No modules: responses pass through as the upstream sent them.
        // (Pingora's default adds a disabled compression module.)
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Attempts) -> Result<Box<HttpPeer>> {
        // Round-robin: each request starts one further along; a retry
        // (after an upstream could not be reached) takes the next one.
        if ctx.tried.is_empty() {
            ctx.start = self.turn.fetch_add(1, Ordering::Relaxed);
        }
        if std::mem::take(&mut ctx.again)
            && let Some(&address) = ctx.tried.last()
        {
            return Ok(self.peer(address));
        }
        let attempt = ctx.tried.len();
        if attempt == self.upstreams.len() {
            return Err(Error::create(
                ErrorType::ConnectNoRoute,
                ErrorSource::Upstream,
                Some("every upstream failed".into()),
                None,
            ));
        }
        let address = self.upstreams[ctx.start.wrapping_add(attempt) % self.upstreams.len()];
        ctx.tried.push(address);
        Ok(self.peer(address))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Attempts,
        mut e: Box<Error>,
    ) -> Box<Error> {
        self.upstream_failed(ctx, &e);
        // Another upstream may answer: try it.
        e.set_retry(ctx.tried.len() < self.upstreams.len());
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut Attempts,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("upstream {peer}"));
        // Pingora's rule: only an idempotent request whose body is still
        // whole is sent again, and only after a reused connection failed
        // (it may have been closed while idle in the pool).
        if !session.req_header().method.is_idempotent() || session.as_ref().retry_buffer_truncated() {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        if e.retry() {
            // A stale pooled connection, not an upstream that is down.
            ctx.again = true;
        } else if e.esource() == &ErrorSource::Upstream {
            self.upstream_failed(ctx, &e);
        }
        e
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Attempts) -> FailToProxy {
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream => match e.etype() {
                    // The client is gone: nothing to answer.
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    // The request body stalled.
                    ErrorType::ReadTimedout => {
                        self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                        408
                    }
                    ErrorType::WriteTimedout => {
                        self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                        0
                    }
                    _ => 400,
                },
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        let code = if code == 502 && ctx.timed_out { 504 } else { code };
        if code == 502 || code == 504 {
            let _ = session
                .respond_error_with_body(code, body(code, ctx.tried.len(), ctx.last_error.as_deref(), e))
                .await;
        } else if code > 0 {
            let _ = session.respond_error(code).await;
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, _ctx: &mut Attempts) {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        // Answered: a kept-alive connection now idles until its next request.
        if let Some(stream) = guarded(session) {
            stream.idle();
        }
    }
}

/// What went wrong, without addresses: the 502 body goes to any client.
fn describe(e: &Error) -> String {
    match e.etype() {
        ErrorType::ConnectRefused => "connection refused".to_owned(),
        ErrorType::ConnectTimedout => "connection timed out".to_owned(),
        ErrorType::ConnectError => "cannot connect".to_owned(),
        ErrorType::ConnectionClosed => "the upstream closed the connection".to_owned(),
        ErrorType::InvalidHTTPHeader => "the upstream's answer is not HTTP".to_owned(),
        ErrorType::ReadTimedout => "the upstream did not answer in time".to_owned(),
        ErrorType::WriteTimedout => "the upstream did not take the request in time".to_owned(),
        other => other.as_str().to_owned(),
    }
}

/// The body of a 502 or 504: how many upstreams were tried and what went
/// wrong, without their addresses.
fn body(code: u16, tried: usize, last_error: Option<&str>, e: &Error) -> bytes::Bytes {
    let why = last_error.map_or_else(|| describe(e), str::to_owned);
    let (status, answered) = if code == 504 {
        ("504 Gateway Timeout", "in time")
    } else {
        ("502 Bad Gateway", "this request")
    };
    bytes::Bytes::from(format!(
        "{status}: no upstream answered {answered} ({tried} tried; last error: {why})\n"
    ))
}
