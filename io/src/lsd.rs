//! The local service discovery socket (BEP 14) both runtimes use: UDP on the group's port,
//! joined to the group on one interface, shared with the machine's other clients.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

/// A non-blocking UDP socket on the LSD port, joined to the group
/// ([`shoal_core::lsd::GROUP_V4`]) on the interface of `listen` (any interface for
/// 0.0.0.0 or an IPv6 address), sharing the port with other clients of the machine
/// (`SO_REUSEADDR`), its announces kept to the local network (TTL 1) and looped back to
/// the machine's other clients. Send announces to the group with it, read the group's.
pub fn lsd_socket(listen: IpAddr) -> io::Result<UdpSocket> {
    let group = shoal_core::lsd::GROUP_V4;
    let iface = match listen {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    };
    let opened = (|| {
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_reuse_address(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, group.port())).into())?;
        socket.join_multicast_v4(group.ip(), &iface)?;
        if !iface.is_unspecified() {
            socket.set_multicast_if_v4(&iface)?;
        }
        socket.set_multicast_loop_v4(true)?;
        socket.set_multicast_ttl_v4(1)?;
        Ok::<_, io::Error>(socket)
    })();
    opened.map(UdpSocket::from).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot join the local discovery group {group} on {iface}: {e}"),
        )
    })
}
