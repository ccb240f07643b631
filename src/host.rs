//! Host header syntax, `name[:port]` and `[v6][:port]`, read by `http::uri::Authority` (the
//! parser hyper itself applies): the same rules for a configured tenant host (checked at
//! start) and a request's `Host` (matched per request), so the two cannot disagree.

use http::uri::Authority;

/// `name:port` or `[v6]:port` into the lower-cased name and the port (`None` when absent or
/// not a number from 0 to 65535). Text that is not `host[:port]` is kept whole, so it matches
/// no configured tenant.
pub fn split_host_port(raw: &str) -> (String, Option<u16>) {
    match authority(raw) {
        Some(a) => (name(&a).to_ascii_lowercase(), a.port_u16()),
        None => (raw.to_ascii_lowercase(), None),
    }
}

/// `raw` parsed as a URI authority by `http`, the parser hyper itself uses, refused when it
/// carries userinfo (`user@host`): a Host header never does (RFC 9110, 7.2).
fn authority(raw: &str) -> Option<Authority> {
    if raw.contains('@') {
        return None;
    }
    raw.parse().ok()
}

/// The host without the brackets of an IPv6 literal.
fn name(a: &Authority) -> &str {
    let host = a.host();
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// The bytes of a reg-name (RFC 3986 3.2.2), as a table: a search of the punctuation list for
/// each dot of every request's `Host` cost more than the rest of the check.
const REG_NAME: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = (i as u8).is_ascii_alphanumeric();
        i += 1;
    }
    let punctuation = b"-._~%!$&'()*+,;=";
    let mut k = 0;
    while k < punctuation.len() {
        table[punctuation[k] as usize] = true;
        k += 1;
    }
    table
};

/// Why a request's `Host` (or the authority of an absolute-form target) is not one a client
/// may send (RFC 9110 7.2, RFC 3986 3.2.3), if it is not: no name, a port that is empty, not
/// a number from 1 to 65535, or written with a leading zero (`08443` could mean either of two
/// ports to two parsers).
///
/// Read byte by byte rather than through `http::uri::Authority`, which copies the text: this
/// runs on every request.
pub fn request_host_problem(raw: &str) -> Option<&'static str> {
    const NOT_A_HOST: Option<&str> = Some("is not a host name with an optional port");
    let b = raw.as_bytes();
    let (host_len, rest) = if b.first() == Some(&b'[') {
        // An IP literal: hex digits, colons, dots (RFC 3986 3.2.2), in brackets.
        let Some(close) = b.iter().position(|&c| c == b']') else {
            return NOT_A_HOST;
        };
        let inside = &b[1..close];
        if inside.is_empty()
            || !inside
                .iter()
                .all(|c| c.is_ascii_hexdigit() || *c == b':' || *c == b'.')
        {
            return NOT_A_HOST;
        }
        (close + 1, &b[close + 1..])
    } else {
        let end = b.iter().position(|&c| c == b':').unwrap_or(b.len());
        // A reg-name: unreserved, percent-encoded and sub-delims characters.
        let name_ok = b[..end].iter().all(|&c| REG_NAME[c as usize]);
        if !name_ok {
            return NOT_A_HOST;
        }
        (end, &b[end..])
    };
    if host_len == 0 {
        return Some("has no host name");
    }
    match rest {
        [] => None,
        [b':', port @ ..] => {
            let digits = !port.is_empty() && port.len() <= 5 && port.iter().all(u8::is_ascii_digit);
            let value = std::str::from_utf8(port)
                .ok()
                .and_then(|p| p.parse::<u32>().ok());
            if digits && port[0] != b'0' && value.is_some_and(|p| (1..=65535).contains(&p)) {
                None
            } else {
                Some("has a port that is not a number from 1 to 65535")
            }
        }
        _ => NOT_A_HOST,
    }
}

/// Why a configured tenant `host` can never match a request's `Host`, if it cannot.
pub fn unmatchable(host: &str) -> Option<&'static str> {
    if host.is_empty() {
        return Some("is empty");
    }
    if host.contains("://") || host.contains('/') {
        return Some(
            "is a URL or has a path: give the Host only, e.g. paper.example or paper.example:8443",
        );
    }
    if host.bytes().any(|b| {
        b.is_ascii_whitespace() || b.is_ascii_control() || b == b'@' || b == b'?' || b == b'#'
    }) {
        return Some("holds characters a Host header cannot carry");
    }
    if host.starts_with('[') && !host.contains(']') {
        return Some("has an unclosed [ of an IPv6 address");
    }
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        return Some("is an IPv6 address without brackets: write [address] or [address]:port");
    }
    let Some(a) = authority(host) else {
        // http refuses a second colon outside brackets (`a:1:2`, `::1`) and characters no
        // URI carries.
        return Some(if host.contains(':') {
            "has a port that is not a number from 1 to 65535"
        } else {
            "holds characters a Host header cannot carry"
        });
    };
    if name(&a).is_empty() {
        return Some("has no host name");
    }
    // What follows the host: nothing, or `:` and a port (`port_u16` is `None` for `:`,
    // `:x`, `:99999`, and for text after `]` that is not a port).
    let after_host = &host[a.host().len()..];
    if !after_host.is_empty() && a.port_u16().is_none_or(|p| p == 0) {
        return Some("has a port that is not a number from 1 to 65535");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_hosts_with_broken_ports_are_named() {
        for ok in [
            "paper.test",
            "paper.test:8443",
            "[::1]:8080",
            "[::1]",
            "127.0.0.1:1",
        ] {
            assert_eq!(request_host_problem(ok), None, "{ok}");
        }
        for bad in [
            "paper.test:0",
            "paper.test:99999",
            "paper.test:",
            "paper.test:08443",
            "paper.test:x",
            ":8080",
            "a b",
            "user@paper.test",
        ] {
            assert!(request_host_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn hosts_split_into_name_and_port() {
        let cases = [
            ("Paper.Test:8443", ("paper.test", Some(8443))),
            ("paper.test", ("paper.test", None)),
            ("[::1]:8080", ("::1", Some(8080))),
            ("[2001:DB8::1]", ("2001:db8::1", None)),
            ("127.0.0.1:80", ("127.0.0.1", Some(80))),
            // A port that is no u16 is no port; the name still matches a portless tenant.
            ("paper.test:99999", ("paper.test", None)),
            ("paper.test:", ("paper.test", None)),
            // Not `host[:port]`: kept whole, so it matches no configured tenant.
            ("user@paper.test", ("user@paper.test", None)),
            ("paper.test:1:2", ("paper.test:1:2", None)),
            ("[::1", ("[::1", None)),
        ];
        for (raw, (name, port)) in cases {
            assert_eq!(split_host_port(raw), (name.to_string(), port), "{raw}");
        }
    }

    #[test]
    fn unmatchable_hosts_are_refused_with_the_reason() {
        let port = "has a port that is not a number from 1 to 65535";
        let cases = [
            ("", "is empty"),
            ("https://paper.test", "is a URL or has a path"),
            ("paper.test/x", "is a URL or has a path"),
            ("paper test", "holds characters a Host header cannot carry"),
            (
                "user@paper.test",
                "holds characters a Host header cannot carry",
            ),
            ("pa<per.test", "holds characters a Host header cannot carry"),
            ("[::1", "has an unclosed [ of an IPv6 address"),
            ("::1", "is an IPv6 address without brackets"),
            (":8080", "has no host name"),
            ("[]:8080", "has no host name"),
            ("paper.test:0", port),
            ("paper.test:65536", port),
            ("paper.test:x", port),
            ("paper.test:", port),
            ("paper.test:1:2", port),
            ("[::1]x", port),
            ("[::1]:0", port),
        ];
        for (host, why) in cases {
            let got = unmatchable(host);
            assert!(got.is_some_and(|g| g.starts_with(why)), "{host:?}: {got:?}");
        }
        for host in [
            "paper.test",
            "paper.test:8443",
            "[::1]",
            "[::1]:65535",
            "10.0.0.1:1",
        ] {
            assert_eq!(unmatchable(host), None, "{host}");
        }
    }
}
