//! Reading the addresses a server is started with.

use std::collections::HashSet;
use std::net::SocketAddr;

use crate::result::Failure;

/// Reads `text` as an `ip:port` socket address (`[ip]:port` for IPv6).
/// Host names are refused rather than resolved: resolving could block the
/// caller's thread.
pub fn parse(text: &str, role: &str) -> Result<SocketAddr, Failure> {
    text.parse::<SocketAddr>().map_err(|_| {
        let hint = if text.rsplit_once(':').is_some_and(|(host, _)| {
            !host.is_empty() && !host.starts_with('[') && host.parse::<std::net::IpAddr>().is_err()
        }) {
            "host names are not resolved; give an IP address, such as 127.0.0.1:8080 or [::1]:8080"
        } else {
            "give an IP address and a port, such as 127.0.0.1:8080 or [::1]:8080"
        };
        Failure::failed(format!(
            "Cannot start the server: {role} {text:?} is not an ip:port address"
        ))
        .with_hint(hint)
    })
}

/// Reads the upstream list: at least one, each an `ip:port` with a port,
/// none twice.
pub fn upstreams(texts: &[String]) -> Result<Vec<SocketAddr>, Failure> {
    if texts.is_empty() {
        return Err(Failure::failed("Cannot start the server: no upstreams given")
            .with_hint("pass upstreams: [\"127.0.0.1:8001\", …], the servers requests are forwarded to"));
    }
    let mut seen = HashSet::new();
    let mut addresses = Vec::with_capacity(texts.len());
    for text in texts {
        let address = parse(text, "upstream")?;
        if address.port() == 0 {
            return Err(
                Failure::failed(format!("Cannot start the server: upstream {text} has port 0"))
                    .with_hint("give the port the upstream listens on"),
            );
        }
        if !seen.insert(address) {
            return Err(
                Failure::failed(format!("Cannot start the server: upstream {address} is listed twice"))
                    .with_hint("list each upstream once; requests go to each in turn"),
            );
        }
        addresses.push(address);
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_addresses_are_read() {
        assert_eq!(parse("127.0.0.1:0", "listen").unwrap().port(), 0);
        assert!(parse("[::1]:8080", "listen").unwrap().is_ipv6());
    }

    #[test]
    fn malformed_addresses_are_refused_with_a_hint() {
        for text in [
            "",
            "127.0.0.1",
            "127.0.0.1:99999",
            ":80",
            "1.2.3.4:x",
            "::1:80",
            "127.0.0.1:80 ",
        ] {
            let failure = parse(text, "listen").unwrap_err();
            assert_eq!(failure.code, crate::result::KrepisResult::Failed);
            let message = failure.render();
            assert!(message.starts_with("Cannot start the server: listen"), "{message}");
            assert!(message.contains("\nHint: give an IP address"), "{message}");
        }
        let message = parse("localhost:80", "upstream").unwrap_err().render();
        assert!(message.contains("host names are not resolved"), "{message}");
    }

    #[test]
    fn upstream_lists_are_checked() {
        assert_eq!(
            upstreams(&["127.0.0.1:1".into(), "127.0.0.1:2".into()]).unwrap().len(),
            2
        );
        assert!(upstreams(&[]).unwrap_err().render().contains("no upstreams"));
        assert!(
            upstreams(&["127.0.0.1:0".into()])
                .unwrap_err()
                .render()
                .contains("port 0")
        );
        assert!(
            upstreams(&["127.0.0.1:1".into(), "127.0.0.1:1".into()])
                .unwrap_err()
                .render()
                .contains("twice")
        );
    }
}
