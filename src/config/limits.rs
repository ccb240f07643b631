//! `[limits]`: sizes and timeouts. Each must be above zero (a zero would refuse every call or
//! time it out at once), and v4 must time out before the client does, or a slow v4 is answered
//! 408 instead of 504.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::positive;
use crate::source::{Source, SourceError};

#[derive(Debug, Clone)]
pub struct Limits {
    pub body_bytes: usize,
    pub request_timeout: Duration,
    pub upstream_timeout: Duration,
    pub connect_timeout: Duration,
    pub upstream_body_bytes: usize,
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
    /// Idle keep-alive connections kept per upstream. Each holds its buffers (~20 KiB); a
    /// burst above this concurrency reconnects the excess afterwards.
    pub upstream_idle_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            upstream_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            upstream_body_bytes: 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            shutdown_grace: Duration::from_secs(20),
            upstream_idle_connections: 64,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    body_bytes: Option<Spanned<usize>>,
    request_timeout_ms: Option<Spanned<u64>>,
    upstream_timeout_ms: Option<Spanned<u64>>,
    connect_timeout_ms: Option<Spanned<u64>>,
    upstream_body_bytes: Option<Spanned<usize>>,
    header_read_timeout_ms: Option<Spanned<u64>>,
    max_connections: Option<Spanned<usize>>,
    shutdown_grace_ms: Option<Spanned<u64>>,
    upstream_idle_connections: Option<Spanned<usize>>,
}

pub(super) fn check(src: &Source, l: &RawLimits) -> Result<Limits, SourceError> {
    let d = Limits::default();
    let ms = |v: &Option<Spanned<u64>>, field: &str, def: Duration| {
        Ok::<_, SourceError>(positive(src, v, field)?.map_or(def, Duration::from_millis))
    };
    let count = |v: &Option<Spanned<usize>>, field: &str, def: usize| {
        Ok::<_, SourceError>(positive(src, v, field)?.unwrap_or(def))
    };
    let limits = Limits {
        body_bytes: count(&l.body_bytes, "limits.body_bytes", d.body_bytes)?,
        request_timeout: ms(
            &l.request_timeout_ms,
            "limits.request_timeout_ms",
            d.request_timeout,
        )?,
        upstream_timeout: ms(
            &l.upstream_timeout_ms,
            "limits.upstream_timeout_ms",
            d.upstream_timeout,
        )?,
        connect_timeout: ms(
            &l.connect_timeout_ms,
            "limits.connect_timeout_ms",
            d.connect_timeout,
        )?,
        upstream_body_bytes: count(
            &l.upstream_body_bytes,
            "limits.upstream_body_bytes",
            d.upstream_body_bytes,
        )?,
        header_read_timeout: ms(
            &l.header_read_timeout_ms,
            "limits.header_read_timeout_ms",
            d.header_read_timeout,
        )?,
        max_connections: count(
            &l.max_connections,
            "limits.max_connections",
            d.max_connections,
        )?,
        shutdown_grace: ms(
            &l.shutdown_grace_ms,
            "limits.shutdown_grace_ms",
            d.shutdown_grace,
        )?,
        upstream_idle_connections: count(
            &l.upstream_idle_connections,
            "limits.upstream_idle_connections",
            d.upstream_idle_connections,
        )?,
    };
    if limits.upstream_timeout >= limits.request_timeout {
        let span = l
            .upstream_timeout_ms
            .as_ref()
            .map(|s| s.span())
            .unwrap_or(0..0);
        return Err(src.error(
            span,
            "limits.upstream_timeout_ms",
            "must be shorter than limits.request_timeout_ms, or a slow v4 answers 408 instead of 504",
        ));
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Overrides};

    fn load(text: &str) -> Result<Config, crate::source::SourceError> {
        Config::from_toml("c.toml", text, &Overrides::default())
    }

    #[test]
    fn given_values_replace_the_defaults() {
        let c = load("[limits]\nbody_bytes = 10\nrequest_timeout_ms = 900\nupstream_timeout_ms = 800\nmax_connections = 3\n").unwrap();
        assert_eq!(c.limits.body_bytes, 10);
        assert_eq!(c.limits.request_timeout.as_millis(), 900);
        assert_eq!(c.limits.upstream_timeout.as_millis(), 800);
        assert_eq!(c.limits.max_connections, 3);
        assert_eq!(c.limits.upstream_idle_connections, 64);
    }

    #[test]
    fn zero_timeouts_and_counts_are_refused() {
        let e = load("[limits]\n\nshutdown_grace_ms = 0\n").unwrap_err();
        assert_eq!(
            (e.line, e.field.as_str(), e.message.as_str()),
            (3, "limits.shutdown_grace_ms", "must be greater than 0")
        );
        let e = load("[limits]\nupstream_idle_connections = 0\n").unwrap_err();
        assert_eq!(
            (e.line, e.field.as_str()),
            (2, "limits.upstream_idle_connections")
        );
    }

    #[test]
    fn the_upstream_timeout_must_be_shorter_than_the_request_timeout() {
        // The default upstream timeout (5 s) against a shorter request timeout: no line of
        // its own to point at.
        let e = load("[limits]\nrequest_timeout_ms = 5000\n").unwrap_err();
        assert_eq!(
            (e.line, e.field.as_str()),
            (1, "limits.upstream_timeout_ms")
        );
        assert!(e.message.contains("408 instead of 504"), "{}", e.message);
    }
}
