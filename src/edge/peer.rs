//! The client's address for the log: the peer of the socket on fd 0 (inetd,
//! xinetd, systemd Accept=yes), else `REMOTE_ADDR` (which systemd also sets), else
//! `local` (a pipe or a terminal).

use std::net::IpAddr;

use nix::sys::socket::{getpeername, SockaddrLike, SockaddrStorage};

pub fn client_address() -> String {
    if let Ok(peer) = getpeername::<SockaddrStorage>(0) {
        let ip = if let Some(v4) = peer.as_sockaddr_in() {
            Some(IpAddr::V4(v4.ip()))
        } else {
            peer.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
        };
        if let Some(ip) = ip {
            return ip.to_canonical().to_string();
        }
        if peer.family().is_some() {
            return "local".into();
        }
    }
    // Only a well-formed address is believed: the log line is read by fail2ban.
    std::env::var("REMOTE_ADDR")
        .ok()
        .and_then(|text| text.parse::<IpAddr>().ok())
        .map_or_else(|| "local".into(), |ip| ip.to_canonical().to_string())
}
