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
            Ok(Ok(stream)) => return Ok(stream.into()),
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
