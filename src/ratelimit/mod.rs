//! Rate limits on the three action-API calls where abuse costs money or accounts:
//! `registernewpassword` sends a mail (limited per e-mail address and per client IP),
//! `updatechangepassword` and `activatenewpassword` change a password (per user or
//! confirmation id, and per client IP).
//!
//! One keyed GCRA limiter per (action, key kind) ([`table`]); only these calls touch a
//! limiter, so every other request pays nothing. Memory is bounded: past
//! `rate_limits.max_keys` keys in one limiter, keys whose state is back to fresh are dropped;
//! if it is still full, a call with a *new* key is refused (429) rather than let a flood of
//! made-up keys grow the table or slip through unlimited. Keys already counted keep working.
//! IPv6 clients are keyed by their /64 ([`ip_key`]).
//!
//! The client IP is the socket's peer. `X-Forwarded-For` is believed only when that peer is
//! in `trusted_proxies`, and then the right-most address not itself a trusted proxy is the
//! client (the left part of the header is what the client wrote and can be forged).

use std::net::IpAddr;

use crate::config::RateLimitConfig;

mod table;

use table::{Refused, Table};

/// What a limited call is keyed by, for the metric and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Email,
    User,
    Id,
    Ip,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Email => "email",
            KeyKind::User => "user",
            KeyKind::Id => "id",
            KeyKind::Ip => "ip",
        }
    }
}

struct Limiter(Table);

impl Limiter {
    fn new(per_hour: u32, max_keys: usize) -> Option<Self> {
        Table::new(per_hour, max_keys).map(Self)
    }

    /// `Err(seconds to wait)` when over the limit.
    fn check(&self, key: &str) -> Result<(), u64> {
        self.0.check(key).map_err(|r| match r {
            Refused::Spent(secs) => secs,
            Refused::Full(secs) => {
                tracing::warn!(
                    max_keys = self.0.max_keys(),
                    "rate-limit table full: refusing calls with new keys"
                );
                secs
            }
        })
    }
}

/// The limiters of one configuration (rebuilt, and so reset, on reload).
pub struct RateLimits {
    mail_per_email: Option<Limiter>,
    mail_per_ip: Option<Limiter>,
    password_per_user: Option<Limiter>,
    password_per_ip: Option<Limiter>,
    ipv6_prefix_len: u8,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RateLimits")
    }
}

/// Over a limit: which key and how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub kind: KeyKind,
    pub retry_after_secs: u64,
}

impl RateLimits {
    pub fn new(c: &RateLimitConfig) -> Self {
        Self {
            mail_per_email: Limiter::new(c.reset_mail_per_email_per_hour, c.max_keys),
            mail_per_ip: Limiter::new(c.reset_mail_per_ip_per_hour, c.max_keys),
            password_per_user: Limiter::new(c.password_per_user_per_hour, c.max_keys),
            password_per_ip: Limiter::new(c.password_per_ip_per_hour, c.max_keys),
            ipv6_prefix_len: c.ipv6_prefix_len,
        }
    }

    /// Checks `action` (canonical name) for the client `ip` and the action's own key (the
    /// e-mail address, the user, or the confirmation id). Actions that are not limited pass.
    pub fn check(
        &self,
        action: &str,
        ip: Option<IpAddr>,
        key: Option<&str>,
    ) -> Result<(), Limited> {
        let (by_key, by_ip, kind) = match action {
            "registernewpassword" => (&self.mail_per_email, &self.mail_per_ip, KeyKind::Email),
            "updatechangepassword" => (
                &self.password_per_user,
                &self.password_per_ip,
                KeyKind::User,
            ),
            "activatenewpassword" => (&self.password_per_user, &self.password_per_ip, KeyKind::Id),
            _ => return Ok(()),
        };
        let limited = |kind, retry_after_secs| Limited {
            kind,
            retry_after_secs,
        };
        if let (Some(l), Some(ip)) = (by_ip, ip) {
            l.check(&format!("{action}|{}", ip_key(ip, self.ipv6_prefix_len)))
                .map_err(|s| limited(KeyKind::Ip, s))?;
        }
        if let (Some(l), Some(k)) = (by_key, key.filter(|k| !k.is_empty())) {
            // E-mail addresses are case-insensitive in practice: one mailbox, one budget.
            l.check(&format!("{action}|{}", k.to_lowercase()))
                .map_err(|s| limited(kind, s))?;
        }
        Ok(())
    }
}

/// What a client address is counted as. One IPv6 subscriber gets a whole /64 (RFC 6177) and
/// may pick any address in it, so keying the full address would give one attacker 2^64 fresh
/// budgets: an IPv6 address is keyed by its first `ipv6_prefix_len` bits. An IPv4 address
/// written as IPv6 (`::ffff:192.0.2.1`) is the IPv4 address.
pub fn ip_key(ip: IpAddr, ipv6_prefix_len: u8) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let net = ipnet::Ipv6Net::new(v6, ipv6_prefix_len.min(128))
                .map(|n| n.trunc())
                .unwrap_or_else(|_| ipnet::Ipv6Net::from(v6));
            net.to_string()
        }
    }
}

/// The client's address: the socket peer, or, when the peer is a trusted proxy, the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(
    peer: Option<IpAddr>,
    headers: &http::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let chain: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    Some(
        chain
            .iter()
            .rev()
            .find(|ip| !is_trusted(ip))
            .or(chain.first())
            .copied()
            .unwrap_or(peer),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_are_keyed_by_their_prefix() {
        let key = |s: &str, len| ip_key(s.parse().unwrap(), len);
        assert_eq!(key("2001:db8:1:2:aaaa::1", 64), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff:1:2:3", 64), "2001:db8:1:2::/64");
        assert_ne!(key("2001:db8:1:3::1", 64), key("2001:db8:1:2::1", 64));
        assert_eq!(key("2001:db8:1:2:aaaa::1", 48), "2001:db8:1::/48");
        assert_eq!(key("2001:db8::1", 128), "2001:db8::1/128");
        assert_eq!(key("::ffff:192.0.2.1", 64), "192.0.2.1");
        assert_eq!(key("192.0.2.1", 64), "192.0.2.1");
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_peers() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = http::HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 1.2.3.4, 10.0.0.9".parse().unwrap(),
        );
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("1.2.3.4"));
        assert_eq!(client_ip(ip("9.9.9.9"), &h, &trusted), ip("9.9.9.9"));
        assert_eq!(
            client_ip(ip("10.0.0.1"), &http::HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
    }
}
