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

/// How long connecting to an upstream may take before it counts as down.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects with tokio's `TcpStream::connect`, within [`CONNECT_TIMEOUT`].
#[derive(Debug)]
pub struct PlainConnect;

#[async_trait]
impl L4Connect for PlainConnect {
    async fn connect(&self, addr: &SocketAddr) -> Result<Stream> {
        let Some(inet) = addr.as_inet() else {
            return Err(Error::explain(
                ErrorType::ConnectError,
                format!("{addr} is not an IP address"),
            ));
        };
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(inet)).await;
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
                format!("no connection to {inet} within {} s", CONNECT_TIMEOUT.as_secs()),
            ),
        };
        error.as_up();
        Err(error)
    }
}
