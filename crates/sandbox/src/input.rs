//! Request bodies → the sandbox's input models. Everything v4 reports as
//! `E400_00 Invalid InputModel - <reason>` is decided here, before any user is looked up: the
//! JSON shape, field types, required fields, unknown fields, the password policy and the
//! e-mail format. Keys are the exact camelCase of the contract, so a caller that forgot to
//! translate a PascalCase key finds out here rather than in production.

use std::sync::LazyLock;

use serde_json::{Map, Value};

use super::store::{is_valid_email, meets_password_policy, UserUpdate};

/// The reason after `Invalid InputModel - `; never contains a field's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InputError(pub String);

const PASSWORD_POLICY: &str = "Password does not meet the complexity requirements.";
const EMAIL_FORMAT: &str = "The Email field is not a valid e-mail address.";
/// Unknown key names are echoed back; a bound keeps a hostile one from filling the answer.
const ECHOED_KEY_MAX_CHARS: usize = 64;

/// `PATCH /v4/Users/{id}/Password`: the new password, policy-checked.
pub(crate) fn password_change(body: &[u8]) -> Result<String, InputError> {
    let mut b = Body::parse(body, &["password"])?;
    policy_checked(b.required_string("password")?)
}

/// `PATCH /v4/Users/{id}/Email`: the new address, format-checked.
pub(crate) fn email_change(body: &[u8]) -> Result<String, InputError> {
    let mut b = Body::parse(body, &["email"])?;
    let email = b.required_string("email")?;
    if !is_valid_email(&email) {
        return Err(InputError(EMAIL_FORMAT.into()));
    }
    Ok(email)
}

/// `PUT /v4/Users/{id}/`: every field optional.
pub(crate) fn user_update(body: &[u8]) -> Result<UserUpdate, InputError> {
    let mut b = Body::parse(
        body,
        &[
            "firstName",
            "lastName",
            "metadata",
            "ignoreProvider",
            "verified",
            "lastLogoutDate",
            "removeLastLogoutDate",
        ],
    )?;
    let update = UserUpdate {
        first_name: b.optional_string("firstName")?,
        last_name: b.optional_string("lastName")?,
        metadata: b.optional_object("metadata")?,
        verified: b.optional_bool("verified")?,
        last_logout_date: b.optional_string("lastLogoutDate")?,
        remove_last_logout_date: b.optional_bool("removeLastLogoutDate")?.unwrap_or(false),
    };
    // Accepted for the contract's sake; the sandbox has no external provider to skip.
    b.optional_bool("ignoreProvider")?;
    if let Some(date) = &update.last_logout_date {
        if !DATE.is_match(date) {
            return Err(InputError(
                "The LastLogoutDate field is not a valid date.".into(),
            ));
        }
    }
    Ok(update)
}

/// `POST /v4/Users/ForgotPassword`: the login name (an e-mail address).
pub(crate) fn forgot_start(body: &[u8]) -> Result<(String, Option<String>), InputError> {
    let mut b = Body::parse(body, &["loginName", "returnUrl"])?;
    let login = b.required_string("loginName")?;
    let return_url = b.optional_string("returnUrl")?;
    Ok((login, return_url))
}

/// `POST /v4/Users/ForgotPassword/Finish`: (encryptedEventId, new password).
pub(crate) fn forgot_finish(body: &[u8]) -> Result<(String, String), InputError> {
    let mut b = Body::parse(body, &["encryptedEventId", "password"])?;
    let id = b.required_string("encryptedEventId")?;
    let password = policy_checked(b.required_string("password")?)?;
    Ok((id, password))
}

fn policy_checked(password: String) -> Result<String, InputError> {
    if meets_password_policy(&password) {
        Ok(password)
    } else {
        Err(InputError(PASSWORD_POLICY.into()))
    }
}

/// A date or an RFC 3339 date-time, as v4 (.NET `DateTime`) would parse it.
static DATE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r"^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2})?)?$",
    )
    .expect("static regex")
});

/// A JSON object body whose fields are taken out one by one.
struct Body(Map<String, Value>);

impl Body {
    fn parse(bytes: &[u8], known: &[&str]) -> Result<Self, InputError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(InputError("A non-empty request body is required.".into()));
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            InputError(format!(
                "The request body is not valid JSON (line {}, column {}).",
                e.line(),
                e.column()
            ))
        })?;
        let Value::Object(map) = value else {
            return Err(InputError("The request body must be a JSON object.".into()));
        };
        if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
            let name: String = unknown.chars().take(ECHOED_KEY_MAX_CHARS).collect();
            return Err(InputError(format!("Unknown field {name}.")));
        }
        Ok(Self(map))
    }

    /// Missing, null and "" all count as not given, as with .NET's `[Required]`.
    fn required_string(&mut self, key: &str) -> Result<String, InputError> {
        match self.optional_string(key)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(InputError(format!(
                "The {} field is required.",
                display(key)
            ))),
        }
    }

    fn optional_string(&mut self, key: &str) -> Result<Option<String>, InputError> {
        match self.0.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(wrong_type(key, "a string")),
        }
    }

    fn optional_object(&mut self, key: &str) -> Result<Option<Map<String, Value>>, InputError> {
        match self.0.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(wrong_type(key, "an object")),
        }
    }

    /// The contract's booleans are not nullable: null is a wrong type, not "not given".
    fn optional_bool(&mut self, key: &str) -> Result<Option<bool>, InputError> {
        match self.0.remove(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(wrong_type(key, "a boolean")),
        }
    }
}

fn wrong_type(key: &str, expected: &str) -> InputError {
    InputError(format!("The {} field must be {expected}.", display(key)))
}

/// v4 names fields by their .NET property: `password` → `Password`.
fn display(key: &str) -> String {
    let mut chars = key.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason<T: std::fmt::Debug>(r: Result<T, InputError>) -> String {
        r.unwrap_err().0
    }

    #[test]
    fn password_body() {
        assert_eq!(
            password_change(br#"{"password":"Sandbox123"}"#).unwrap(),
            "Sandbox123"
        );
        assert_eq!(
            reason(password_change(br#"{"password":"short1A"}"#)),
            PASSWORD_POLICY
        );
        for missing in [
            &br#"{}"#[..],
            br#"{"password":null}"#,
            br#"{"password":""}"#,
        ] {
            assert_eq!(
                reason(password_change(missing)),
                "The Password field is required."
            );
        }
        assert_eq!(
            reason(password_change(br#"{"password":12345678}"#)),
            "The Password field must be a string."
        );
        assert_eq!(
            reason(password_change(br#"{"Password":"Sandbox123"}"#)),
            "Unknown field Password."
        );
    }

    #[test]
    fn malformed_bodies() {
        assert_eq!(
            reason(password_change(b"")),
            "A non-empty request body is required."
        );
        assert!(reason(password_change(b"{\"password\":"))
            .starts_with("The request body is not valid JSON"));
        assert!(
            reason(password_change(b"\xff\xfe")).starts_with("The request body is not valid JSON")
        );
        assert_eq!(
            reason(password_change(b"[1]")),
            "The request body must be a JSON object."
        );
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(reason(password_change(deep.as_bytes()))
            .starts_with("The request body is not valid JSON"));
        let long_key = format!("{{\"{}\":1}}", "k".repeat(1000));
        assert_eq!(
            reason(password_change(long_key.as_bytes())).len(),
            "Unknown field .".len() + 64
        );
    }

    #[test]
    fn values_are_never_echoed() {
        let r = reason(password_change(br#"{"password":"Has space1"}"#));
        assert!(!r.contains("Has space1"));
        let r = reason(email_change(br#"{"email":"not-an-address"}"#));
        assert!(!r.contains("not-an-address"));
    }

    #[test]
    fn email_body() {
        assert_eq!(email_change(br#"{"email":"a@b.c"}"#).unwrap(), "a@b.c");
        assert_eq!(reason(email_change(br#"{"email":"a@b"}"#)), EMAIL_FORMAT);
        assert_eq!(
            reason(email_change(br#"{}"#)),
            "The Email field is required."
        );
    }

    #[test]
    fn user_body() {
        let u = user_update(
            br#"{"firstName":"A","lastName":null,"metadata":{"x":1},"ignoreProvider":true,
                "verified":false,"lastLogoutDate":"2024-05-01T10:00:00.123+02:00","removeLastLogoutDate":false}"#,
        )
        .unwrap();
        assert_eq!(u.first_name.as_deref(), Some("A"));
        assert_eq!(u.last_name, None);
        assert_eq!(u.verified, Some(false));
        assert_eq!(user_update(b"{}").unwrap(), UserUpdate::default());
        assert_eq!(
            reason(user_update(br#"{"email":"a@b.c"}"#)),
            "Unknown field email."
        );
        assert_eq!(
            reason(user_update(br#"{"verified":"yes"}"#)),
            "The Verified field must be a boolean."
        );
        assert_eq!(
            reason(user_update(br#"{"metadata":[1]}"#)),
            "The Metadata field must be an object."
        );
        assert_eq!(
            reason(user_update(br#"{"lastLogoutDate":"yesterday"}"#)),
            "The LastLogoutDate field is not a valid date."
        );
        assert!(user_update(br#"{"lastLogoutDate":"2024-05-01"}"#).is_ok());
    }

    #[test]
    fn forgot_bodies() {
        assert_eq!(
            forgot_start(br#"{"loginName":"a@b.c","returnUrl":"https://x"}"#).unwrap(),
            ("a@b.c".to_string(), Some("https://x".to_string()))
        );
        assert_eq!(
            reason(forgot_start(br#"{"returnUrl":"x"}"#)),
            "The LoginName field is required."
        );
        assert_eq!(
            forgot_finish(br#"{"encryptedEventId":"t","password":"Sandbox123"}"#).unwrap(),
            ("t".to_string(), "Sandbox123".to_string())
        );
        assert_eq!(
            reason(forgot_finish(br#"{"password":"Sandbox123"}"#)),
            "The EncryptedEventId field is required."
        );
        assert_eq!(
            reason(forgot_finish(
                br#"{"encryptedEventId":"t","password":"weak"}"#
            )),
            PASSWORD_POLICY
        );
    }
}
