//! `[rate_limits]` and `trusted_proxies`: how the gateway tells clients apart (by the address
//! a trusted proxy forwarded, else the peer's) and how often each may call the password and
//! mail routes.

use serde::Deserialize;
use toml::Spanned;

use crate::source::{Source, SourceError};

/// `[rate_limits]`: calls per hour for each key (0: no limit), and the keys kept per limiter.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// `registernewpassword` (sends a mail) per e-mail address.
    pub reset_mail_per_email_per_hour: u32,
    /// `registernewpassword` per client IP.
    pub reset_mail_per_ip_per_hour: u32,
    /// `updatechangepassword` per user and `activatenewpassword` per confirmation id.
    pub password_per_user_per_hour: u32,
    /// `updatechangepassword` and `activatenewpassword` per client IP.
    pub password_per_ip_per_hour: u32,
    pub max_keys: usize,
    /// IPv6 clients are keyed by this prefix of their address (see `ratelimit::ip_key`).
    pub ipv6_prefix_len: u8,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            reset_mail_per_email_per_hour: 5,
            reset_mail_per_ip_per_hour: 30,
            password_per_user_per_hour: 10,
            password_per_ip_per_hour: 60,
            max_keys: 100_000,
            ipv6_prefix_len: 64,
        }
    }
}

/// A limiter that may keep no key could not limit anyone.
pub(super) fn rate_limits(
    src: &Source,
    raw: &Option<Spanned<RateLimitConfig>>,
) -> Result<RateLimitConfig, SourceError> {
    match raw {
        Some(r) if r.get_ref().max_keys == 0 => {
            Err(src.error(r.span(), "rate_limits.max_keys", "must be greater than 0"))
        }
        Some(r) if !(1..=128).contains(&r.get_ref().ipv6_prefix_len) => Err(src.error(
            r.span(),
            "rate_limits.ipv6_prefix_len",
            "must be between 1 and 128 (64: one key per /64, what one subscriber gets)",
        )),
        Some(r) => Ok(r.get_ref().clone()),
        None => Ok(RateLimitConfig::default()),
    }
}

/// Addresses or networks; a bare address is a network of one.
pub(super) fn trusted_proxies(
    src: &Source,
    raw: &[Spanned<String>],
) -> Result<Vec<ipnet::IpNet>, SourceError> {
    raw.iter()
        .enumerate()
        .map(|(i, p)| {
            let text = p.get_ref().trim();
            text.parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    src.error(
                        p.span(),
                        format!("trusted_proxies[{i}]"),
                        "expected an IP address or a network such as 10.0.0.0/8",
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Overrides};

    fn load(text: &str) -> Result<Config, crate::source::SourceError> {
        Config::from_toml("c.toml", text, &Overrides::default())
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let c = load("trusted_proxies = [\"10.0.0.0/8\", \" 192.0.2.1 \", \"::1\"]\n").unwrap();
        let nets: Vec<String> = c.trusted_proxies.iter().map(|n| n.to_string()).collect();
        assert_eq!(nets, ["10.0.0.0/8", "192.0.2.1/32", "::1/128"]);
        let e = load("\ntrusted_proxies = [\"10.0.0.0/8\", \"lb.internal\"]\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (2, "trusted_proxies[1]"));
    }

    #[test]
    fn rate_limits_keep_at_least_one_key() {
        let c = load("[rate_limits]\npassword_per_ip_per_hour = 0\n").unwrap();
        assert_eq!(c.rate_limits.password_per_ip_per_hour, 0);
        assert_eq!(c.rate_limits.max_keys, 100_000);
        assert_eq!(c.rate_limits.ipv6_prefix_len, 64);
        for bad in [0, 129] {
            let e = load(&format!("[rate_limits]\nipv6_prefix_len = {bad}\n")).unwrap_err();
            assert_eq!(e.field, "rate_limits.ipv6_prefix_len");
        }
        let e = load("[rate_limits]\nmax_keys = 0\n").unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("rate_limits.max_keys", "must be greater than 0")
        );
    }
}
