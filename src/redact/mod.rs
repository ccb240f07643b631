//! Keeping secrets out of everything the gateway writes: error texts taken from v4 are
//! scrubbed of the request's secret values before they reach a client, a log or a diff, and
//! the configuration's own secrets ([`known`]) are scrubbed from those and from every log line.
//! Each secret is looked for in every form it could have been written in ([`forms`]): raw,
//! JSON-escaped, percent-encoded.

use std::borrow::Cow;

mod forms;
pub mod known;

/// Replaces each secret, in each of its forms, and each secret of the configuration in
/// `text` with `***` where it stands as a token of its own (not inside a longer word), so a
/// short secret such as `x` cannot mangle `complexity`, while a password echoed back as
/// `… password 'Abc123xyz' …` is removed.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut all: Vec<String> = secrets.iter().flat_map(|s| forms::of(s)).collect();
    all.extend(known::snapshot().forms.iter().cloned());
    all.sort_by_key(|f| std::cmp::Reverse(f.len()));
    let mut out = text.to_string();
    for form in &all {
        if out.contains(form.as_str()) {
            out = mask_standalone(&out, form);
        }
    }
    out
}

/// A log line with the configuration's secrets masked; borrowed (no copy) when it holds none.
pub fn scrub_known(line: &str) -> Cow<'_, str> {
    if !known::any() {
        return Cow::Borrowed(line);
    }
    let known = known::snapshot();
    if !known::may_hold(&known, line) {
        return Cow::Borrowed(line);
    }
    let mut out = line.to_string();
    for form in &known.forms {
        if out.contains(form.as_str()) {
            out = mask_standalone(&out, form);
        }
    }
    Cow::Owned(out)
}

/// Masks a secret of the configuration (the HMAC secret, the admin token) from now on; the
/// configuration names them (`Config::remember_secrets`), this layer only keeps them.
pub fn remember(secret: &str) {
    known::remember(secret);
}

/// An `Authorization`-style value (`Bearer abc` or `abc`): the value, the credential alone and,
/// for a JWT, its signature (what makes it usable).
pub fn remember_credential(value: &str) {
    for s in credential_parts(value) {
        known::remember(s);
    }
}

fn credential_parts(value: &str) -> Vec<&str> {
    let value = value.trim();
    let mut out = vec![value];
    let credential = value
        .split_once(' ')
        .map_or(value, |(_, credential)| credential.trim());
    if credential != value {
        out.push(credential);
    }
    if let [_, _, signature] = credential.split('.').collect::<Vec<_>>()[..] {
        if signature.len() >= 16 {
            out.push(signature);
        }
    }
    out
}

/// `text` with each standalone occurrence of `secret` replaced by `***`.
fn mask_standalone(text: &str, secret: &str) -> String {
    let mut result = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(secret) {
        // The left neighbour may be in what was already written (back-to-back repeats).
        let before = rest[..pos]
            .chars()
            .next_back()
            .or_else(|| result.chars().next_back());
        let after = rest[pos + secret.len()..].chars().next();
        let standalone =
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric);
        result.push_str(&rest[..pos]);
        result.push_str(if standalone { "***" } else { secret });
        rest = &rest[pos + secret.len()..];
    }
    result.push_str(rest);
    result
}

/// The `Authorization` value, its credential alone and a JWT's signature (`Bearer a.b.c`,
/// `a.b.c`, `c`), to scrub.
pub fn authorization_secrets(headers: &http::HeaderMap) -> Vec<&str> {
    match headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(value) => credential_parts(value),
        None => Vec::new(),
    }
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

    #[test]
    fn escaped_and_encoded_forms_are_replaced_too() {
        let pw = "PW-quote\"d-Secret11";
        assert_eq!(
            scrub(
                r#"{"Message":"Password 'PW-quote\"d-Secret11' is weak"}"#,
                &[pw]
            ),
            r#"{"Message":"Password '***' is weak"}"#
        );
        assert_eq!(
            scrub(
                "/reset?pw=PW-quote%22d-Secret11&x=PW%2Dquote%22d%2DSecret11",
                &[pw]
            ),
            "/reset?pw=***&x=***"
        );
    }

    #[test]
    fn a_jwt_is_masked_whole_and_by_its_signature() {
        let parts = super::credential_parts("Bearer aaa.bbb.sig0123456789abcdefgh");
        assert_eq!(
            parts,
            [
                "Bearer aaa.bbb.sig0123456789abcdefgh",
                "aaa.bbb.sig0123456789abcdefgh",
                "sig0123456789abcdefgh"
            ]
        );
    }
}
