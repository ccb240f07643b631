//! One process per listening address.
//!
//! The workers share the client port through `SO_REUSEPORT`, and the kernel lets any process
//! of the same user join such a group: a second `serve` on the same address would start and
//! take a share of the connections with its own configuration. Two guards keep the port to
//! one process:
//! - a probe: before its own sockets, the process binds the address once *without*
//!   `SO_REUSEPORT`, which fails while anyone listens there (an older gateway, another
//!   server);
//! - a claim: an abstract Unix socket named after the address, held while the workers
//!   listen. Two gateways started at the same instant both pass the probe; only one gets
//!   the claim. Abstract names belong to the network namespace, as ports do, vanish with
//!   the process, and leave no file behind.

use std::io;
use std::net::SocketAddr;

/// The error a second process gets: it names the cause and what to do.
pub(super) fn in_use(addr: SocketAddr) -> io::Error {
    io::Error::new(
        io::ErrorKind::AddrInUse,
        format!(
            "another process already listens on {addr} (a second legacy-gateway, or another \
             server); only the workers of one process share an address: stop the other \
             process or choose another address"
        ),
    )
}

/// Held while this process listens on an address.
pub(super) struct Claim {
    #[cfg(target_os = "linux")]
    _name: Option<std::os::unix::net::UnixListener>,
}

impl Claim {
    /// Claims `addr` for this process, or says who has it. Where abstract sockets are not
    /// available (not Linux, or a sandbox that forbids Unix sockets) the probe is the only
    /// guard, and a debug line says so.
    pub(super) fn take(addr: SocketAddr) -> io::Result<Self> {
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let name = format!("legacy-gateway/listen/{addr}");
            let held = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|a| std::os::unix::net::UnixListener::bind_addr(&a));
            match held {
                Ok(l) => Ok(Self { _name: Some(l) }),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(in_use(addr)),
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "no address claim; the bind probe alone guards it");
                    Ok(Self { _name: None })
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = addr;
            Ok(Self {})
        }
    }
}

/// Fails with [`in_use`] while any socket listens on `addr`. The probe socket is closed
/// again before returning; it never listens.
pub(super) fn probe_free(addr: SocketAddr) -> io::Result<()> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // As the real sockets do: connections of an earlier run in TIME_WAIT are no conflict.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into()).map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => in_use(addr),
        _ => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_address_cannot_be_claimed_twice_until_released() {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let first = Claim::take(addr).unwrap();
        let e = Claim::take(addr)
            .err()
            .expect("the second claim is refused");
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        assert!(e.to_string().contains(&addr.to_string()), "{e}");
        drop(first);
        Claim::take(addr).expect("free again once released");
    }

    #[test]
    fn the_probe_sees_a_listener_and_not_a_free_port() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let e = probe_free(addr).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        assert!(e.to_string().contains("another process"), "{e}");
        drop(l);
        probe_free(addr).expect("free once the listener is gone");
    }
}
