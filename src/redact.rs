//! Keeping secrets out of everything the gateway writes: error texts taken from v4 are
//! scrubbed of the request's secret values before they reach a client, a log or a diff.

/// Replaces every occurrence of each secret in `text` with `***`.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        if out.contains(*s) {
            out = out.replace(*s, "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_replaced() {
        assert_eq!(
            super::scrub("bad password Hunter2x for u", &["Hunter2x", ""]),
            "bad password *** for u"
        );
    }
}
