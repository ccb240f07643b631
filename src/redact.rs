//! Keeping secrets out of everything the gateway writes: error texts taken from v4 are
//! scrubbed of the request's secret values before they reach a client, a log or a diff.

/// Replaces each secret in `text` with `***` where it stands as a token of its own (not
/// inside a longer word), so a short secret such as `x` cannot mangle `complexity`, while a
/// password echoed back as `… password 'Abc123xyz' …` is removed.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let mut result = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(pos) = rest.find(secret) {
            // The left neighbour may be in what was already written (back-to-back repeats).
            let before = rest[..pos]
                .chars()
                .next_back()
                .or_else(|| result.chars().next_back());
            let after = rest[pos + secret.len()..].chars().next();
            let standalone = !before.is_some_and(char::is_alphanumeric)
                && !after.is_some_and(char::is_alphanumeric);
            result.push_str(&rest[..pos]);
            result.push_str(if standalone { "***" } else { secret });
            rest = &rest[pos + secret.len()..];
        }
        result.push_str(rest);
        out = result;
    }
    out
}

/// The `Authorization` value and its credential alone (`Bearer abc` and `abc`), to scrub.
pub fn authorization_secrets(headers: &http::HeaderMap) -> Vec<&str> {
    let Some(value) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Vec::new();
    };
    let mut out = vec![value.trim()];
    if let Some((_, credential)) = value.trim().split_once(' ') {
        out.push(credential.trim());
    }
    out
}

/// A URL as it may be logged: credentials in it (`https://user:password@host/`) masked as
/// `***`, so a configuration that carries them does not leak them into logs or errors.
pub fn url(u: &url::Url) -> String {
    if u.username().is_empty() && u.password().is_none() {
        return u.to_string();
    }
    let mut masked = u.clone();
    // Both can fail only for URLs that cannot carry credentials, which then have none.
    let _ = masked.set_username("***");
    if u.password().is_some() {
        let _ = masked.set_password(Some("***"));
    }
    masked.to_string()
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn secrets_are_replaced_where_they_stand_alone() {
        assert_eq!(
            scrub("bad password Hunter2x for u", &["Hunter2x", ""]),
            "bad password *** for u"
        );
        assert_eq!(
            scrub("'Hunter2x' and \"Hunter2x\"", &["Hunter2x"]),
            "'***' and \"***\""
        );
        assert_eq!(scrub("complexity x", &["x"]), "complexity ***");
        assert_eq!(scrub("Hunter2x", &["Hunter2x"]), "***");
    }
}
