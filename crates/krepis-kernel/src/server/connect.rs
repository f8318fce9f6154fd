//! How the engine connects to an upstream: a plain TCP connect.
//!
//! Pingora's own connector sets `IP_BIND_ADDRESS_NO_PORT` on every socket
//! on Linux and fails when the option is unknown: on kernels before 4.2
//! (our glibc 2.17 floor reaches machines that old) and under qemu-user.
//! The option only matters when binding a source address, which the engine
//! never does, so it connects without it.

use std::io::ErrorKind;
use std::time::Duration;

use async_trait::async_trait;
use pingora_core::connectors::L4Connect;
use pingora_core::protocols::l4::socket::SocketAddr;
use pingora_core::protocols::l4::stream::Stream;
use pingora_core::{Error, ErrorType, Result};

/// Connects with tokio's `TcpStream::connect`, within its timeout (after
/// which the upstream counts as down).
#[derive(Debug)]
pub struct PlainConnect(pub Duration);

#[async_trait]
impl L4Connect for PlainConnect {
    async fn connect(&self, addr: &SocketAddr) -> Result<Stream> {
        let Some(inet) = addr.as_inet() else {
            return Err(Error::explain(
                ErrorType::ConnectError,
                format!("{addr} is not an IP address"),
            ));
        };
        let connected = tokio::time::timeout(self.0, tokio::net::TcpStream::connect(inet)).await;
        let mut error = match connected {
            Ok(Ok(stream)) => {
                // Requests go out as soon as they are written, as answers
                // do to clients (Nagle's wait would add to each one).
                let _ = stream.set_nodelay(true);
                return Ok(stream.into());
            }
            Ok(Err(err)) => {
                let kind = match err.kind() {
                    ErrorKind::ConnectionRefused => ErrorType::ConnectRefused,
                    ErrorKind::TimedOut => ErrorType::ConnectTimedout,
                    _ => ErrorType::ConnectError,
                };
                Error::because(kind, format!("cannot connect to {inet}"), err)
            }
            Err(_) => Error::explain(
                ErrorType::ConnectTimedout,
                format!("no connection to {inet} within {} ms", self.0.as_millis()),
            ),
        };
        error.as_up();
        Err(error)
    }
}

// Its tests need a full accept queue, which only Linux makes on demand.
#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A loopback listener whose accept queue is full: the kernel drops
    /// further SYNs, so a connect to it never completes.
    #[cfg(target_os = "linux")]
    fn full_listener() -> (std::net::TcpListener, Vec<std::net::TcpStream>) {
        use std::os::fd::FromRawFd;
        // SAFETY: plain socket calls on a descriptor this function owns; it
        // is handed to a TcpListener, which closes it.
        let listener = unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            assert!(fd >= 0);
            let address = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
                },
                sin_zero: [0; 8],
            };
            let size = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            assert_eq!(libc::bind(fd, (&raw const address).cast(), size), 0);
            assert_eq!(libc::listen(fd, 0), 0);
            std::net::TcpListener::from_raw_fd(fd)
        };
        let at = listener.local_addr().unwrap();
        let mut queued = Vec::new();
        // Fill the queue (never accepted); stop at the first connect that hangs.
        for _ in 0..8 {
            match std::net::TcpStream::connect_timeout(&at, Duration::from_millis(200)) {
                Ok(stream) => queued.push(stream),
                Err(_) => break,
            }
        }
        (listener, queued)
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_connect_that_never_completes_times_out() {
        let (listener, _queued) = full_listener();
        let at = listener.local_addr().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let started = std::time::Instant::now();
        let result = runtime.block_on(PlainConnect(Duration::from_millis(300)).connect(&SocketAddr::Inet(at)));
        let error = result.expect_err("a full accept queue was connected to");
        assert_eq!(error.etype(), &ErrorType::ConnectTimedout);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
