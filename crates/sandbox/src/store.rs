//! The sandbox's users and the rules they live by: the seeded accounts, the password policy,
//! the e-mail format, profile updates and forgot-password requests. Pure and synchronous: no
//! I/O, no clock, no randomness (callers pass tokens in), so every rule is unit-tested here.

use std::collections::{HashMap, VecDeque};
use std::fmt;

use serde_json::{json, Map, Value};

/// v4 rejects longer names with `E400_22` rather than as an input-model error.
pub(crate) const NAME_MAX_CHARS: usize = 100;
/// Metadata is merged, so without a bound repeated updates could grow a user without limit.
pub(crate) const METADATA_MAX_BYTES: usize = 64 * 1024;
/// Outstanding forgot-password requests kept; the oldest are forgotten first.
pub(crate) const RESET_CAPACITY: usize = 10_000;
/// The password every seeded user starts with (meets the policy).
pub(crate) const SEED_PASSWORD: &str = "Sandbox123";

/// Why a store operation was refused; `envelope` turns each into its v4 answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreError {
    /// No user with that id (v4: the GetById step fails).
    UnknownUser,
    /// Another user already has the address.
    EmailTaken,
    /// A name too long or metadata too large.
    UpdateRejected,
    /// ForgotPassword for an address no user has.
    UnknownLogin,
    /// ForgotPassword/Finish with an id never issued or already used.
    UnknownRequest,
}

#[derive(Clone)]
pub(crate) struct User {
    pub id: String,
    pub email: String,
    password: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub verified: bool,
    pub metadata: Map<String, Value>,
    pub last_logout_date: Option<String>,
}

impl User {
    fn seed(id: &str, email: &str, first: &str, last: &str) -> Self {
        Self {
            id: id.to_string(),
            email: email.to_string(),
            password: SEED_PASSWORD.to_string(),
            first_name: Some(first.to_string()),
            last_name: Some(last.to_string()),
            verified: true,
            metadata: Map::new(),
            last_logout_date: None,
        }
    }

    /// The user as v4 returns it: camelCase, and never the password.
    pub fn to_json(&self) -> Value {
        json!({
            "customerRegistrationId": self.id,
            "email": self.email,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "verified": self.verified,
            "metadata": self.metadata,
            "lastLogoutDate": self.last_logout_date,
        })
    }
}

/// Hand-written so a stray `{:?}` in a log line cannot print a password.
impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .field("first_name", &self.first_name)
            .field("last_name", &self.last_name)
            .field("verified", &self.verified)
            .field("metadata", &self.metadata)
            .field("last_logout_date", &self.last_logout_date)
            .finish()
    }
}

/// A `PUT /v4/Users/{id}/` body, already shape-checked. `None` leaves a field as it is: v4 has
/// `removeLastLogoutDate` precisely because a null date means "not given", not "clear it".
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct UserUpdate {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Merged key by key into the user's metadata (a key given replaces the old value).
    pub metadata: Option<Map<String, Value>>,
    pub verified: Option<bool>,
    pub last_logout_date: Option<String>,
    /// Wins over `last_logout_date` when both are given.
    pub remove_last_logout_date: bool,
}

/// The sandbox policy, the legacy registry's default rule set: 8–16 characters, an upper-case
/// letter, a lower-case letter and a digit, no white space.
pub(crate) fn meets_password_policy(password: &str) -> bool {
    let len = password.chars().count();
    (8..=16).contains(&len)
        && password.chars().any(char::is_uppercase)
        && password.chars().any(char::is_lowercase)
        && password.chars().any(|c| c.is_ascii_digit())
        && !password.chars().any(char::is_whitespace)
}

/// Deliberately simple (`local@domain.tld`): the sandbox checks shape, not deliverability.
pub(crate) fn is_valid_email(email: &str) -> bool {
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| !label.is_empty())
}

/// Outstanding forgot-password requests, bounded: the oldest is dropped when full.
#[derive(Debug, Default)]
struct Resets {
    user_by_token: HashMap<String, String>,
    /// Issue order; may hold tokens already used (they are skipped when evicting).
    order: VecDeque<String>,
}

impl Resets {
    fn issue(&mut self, token: String, user_id: String, capacity: usize) {
        while self.order.len() >= capacity.max(1) {
            if let Some(old) = self.order.pop_front() {
                self.user_by_token.remove(&old);
            }
        }
        self.order.push_back(token.clone());
        self.user_by_token.insert(token, user_id);
    }
}

/// All users and outstanding forgot-password requests.
#[derive(Debug)]
pub(crate) struct Store {
    users: Vec<User>,
    resets: Resets,
    reset_capacity: usize,
}

impl Store {
    /// The seeded state documented in the module doc of `sandbox`.
    pub fn seeded() -> Self {
        Self {
            users: vec![
                // Alice has every field filled, so a first read shows the whole user,
                // nested metadata included.
                User {
                    metadata:
                        json!({"newsLetter": true, "preferences": {"favouriteSection": "sports"}})
                            .as_object()
                            .cloned()
                            .unwrap_or_default(),
                    last_logout_date: Some("2026-11-01T08:30:00Z".to_string()),
                    ..User::seed("1001", "alice@example.test", "Alice", "Anderson")
                },
                User::seed("1002", "bob@example.test", "Bob", "Brown"),
                User::seed("auth0|abc123", "carol@example.test", "Carol", "Clark"),
            ],
            resets: Resets::default(),
            reset_capacity: RESET_CAPACITY,
        }
    }

    pub fn user(&self, id: &str) -> Result<&User, StoreError> {
        self.users
            .iter()
            .find(|u| u.id == id)
            .ok_or(StoreError::UnknownUser)
    }

    fn user_mut(&mut self, id: &str) -> Result<&mut User, StoreError> {
        self.users
            .iter_mut()
            .find(|u| u.id == id)
            .ok_or(StoreError::UnknownUser)
    }

    /// The caller has checked the policy (a policy failure is an input-model error in v4).
    pub fn set_password(&mut self, id: &str, password: String) -> Result<(), StoreError> {
        self.user_mut(id)?.password = password;
        Ok(())
    }

    /// Addresses are unique across users, compared case-insensitively; a user may re-set
    /// their own address in another case.
    pub fn set_email(&mut self, id: &str, email: String) -> Result<(), StoreError> {
        self.user(id)?;
        let taken = self
            .users
            .iter()
            .any(|u| u.id != id && u.email.eq_ignore_ascii_case(&email));
        if taken {
            return Err(StoreError::EmailTaken);
        }
        self.user_mut(id)?.email = email;
        Ok(())
    }

    /// All checks run before anything changes, so a refused update leaves the user untouched.
    pub fn update(&mut self, id: &str, update: UserUpdate) -> Result<&User, StoreError> {
        let user = self.user_mut(id)?;
        let too_long = |name: &Option<String>| {
            name.as_deref()
                .is_some_and(|n| n.chars().count() > NAME_MAX_CHARS)
        };
        if too_long(&update.first_name) || too_long(&update.last_name) {
            return Err(StoreError::UpdateRejected);
        }
        let mut metadata = user.metadata.clone();
        if let Some(given) = update.metadata {
            metadata.extend(given);
        }
        let size = serde_json::to_vec(&metadata).map_or(usize::MAX, |v| v.len());
        if size > METADATA_MAX_BYTES {
            return Err(StoreError::UpdateRejected);
        }

        user.metadata = metadata;
        if let Some(first) = update.first_name {
            user.first_name = Some(first);
        }
        if let Some(last) = update.last_name {
            user.last_name = Some(last);
        }
        if let Some(verified) = update.verified {
            user.verified = verified;
        }
        if let Some(date) = update.last_logout_date {
            user.last_logout_date = Some(date);
        }
        if update.remove_last_logout_date {
            user.last_logout_date = None;
        }
        Ok(user)
    }

    /// Issues `token` for the user whose address is `login` (case-insensitive) and returns
    /// that user's id.
    pub fn start_reset(&mut self, login: &str, token: String) -> Result<String, StoreError> {
        let user_id = self
            .users
            .iter()
            .find(|u| u.email.eq_ignore_ascii_case(login))
            .map(|u| u.id.clone())
            .ok_or(StoreError::UnknownLogin)?;
        self.resets
            .issue(token, user_id.clone(), self.reset_capacity);
        Ok(user_id)
    }

    /// Sets the password and consumes the token; returns the user's id. The caller has
    /// checked the policy, so a weak password never reaches here and never uses a token up.
    pub fn finish_reset(&mut self, token: &str, password: String) -> Result<String, StoreError> {
        let user_id = self
            .resets
            .user_by_token
            .get(token)
            .cloned()
            .ok_or(StoreError::UnknownRequest)?;
        self.user_mut(&user_id)
            .map_err(|_| StoreError::UnknownRequest)?
            .password = password;
        self.resets.user_by_token.remove(token);
        Ok(user_id)
    }

    #[cfg(test)]
    fn password_is(&self, id: &str, password: &str) -> bool {
        self.user(id).is_ok_and(|u| u.password == password)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_policy() {
        assert!(meets_password_policy(SEED_PASSWORD));
        assert!(meets_password_policy("Abcdefg1"));
        assert!(meets_password_policy("Abcdefghijklmno1"));
        assert!(!meets_password_policy("Abcdef1"), "7 characters");
        assert!(!meets_password_policy("Abcdefghijklmnop1"), "17 characters");
        assert!(!meets_password_policy("abcdefg1"), "no upper case");
        assert!(!meets_password_policy("ABCDEFG1"), "no lower case");
        assert!(!meets_password_policy("Abcdefgh"), "no digit");
        assert!(!meets_password_policy("Abcd efg1"), "white space");
        assert!(!meets_password_policy("Abcdefg1\t"), "tab");
        assert!(!meets_password_policy(""));
    }

    #[test]
    fn email_format() {
        for ok in ["a@b.c", "first.last+tag@mail.example.test"] {
            assert!(is_valid_email(ok), "{ok}");
        }
        for bad in [
            "", "a", "a@b", "@b.c", "a@.c", "a@b.", "a@@b.c", "a b@c.d", "a@b..c",
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
        assert!(!is_valid_email(&format!("{}@b.c", "a".repeat(260))));
    }

    #[test]
    fn seeded_users() {
        let s = Store::seeded();
        assert_eq!(s.user("auth0|abc123").unwrap().email, "carol@example.test");
        assert!(s.password_is("1001", SEED_PASSWORD));
        assert_eq!(s.user("9999").unwrap_err(), StoreError::UnknownUser);
        let json = s.user("1001").unwrap().to_json();
        assert!(json.get("password").is_none());
        assert_eq!(json["customerRegistrationId"], "1001");
        assert!(!format!("{:?}", s.user("1001").unwrap()).contains(SEED_PASSWORD));
    }

    #[test]
    fn email_must_be_unique_case_insensitively() {
        let mut s = Store::seeded();
        assert_eq!(
            s.set_email("1001", "BOB@example.test".into()),
            Err(StoreError::EmailTaken)
        );
        s.set_email("1001", "ALICE@example.test".into()).unwrap();
        s.set_email("1001", "alice2@example.test".into()).unwrap();
        assert_eq!(s.user("1001").unwrap().email, "alice2@example.test");
        assert_eq!(
            s.set_email("nobody", "x@y.z".into()),
            Err(StoreError::UnknownUser)
        );
    }

    #[test]
    fn update_merges_and_refuses_long_names_atomically() {
        let mut s = Store::seeded();
        let mut meta = Map::new();
        meta.insert("newsletter".into(), json!(true));
        let u = s
            .update(
                "1002",
                UserUpdate {
                    first_name: Some("Robert".into()),
                    metadata: Some(meta),
                    verified: Some(false),
                    last_logout_date: Some("2024-01-02T03:04:05Z".into()),
                    ..UserUpdate::default()
                },
            )
            .unwrap();
        assert_eq!(u.first_name.as_deref(), Some("Robert"));
        assert_eq!(
            u.last_name.as_deref(),
            Some("Brown"),
            "not given: unchanged"
        );
        assert_eq!(u.metadata["newsletter"], json!(true));
        assert!(!u.verified);

        let refused = s.update(
            "1002",
            UserUpdate {
                first_name: Some("Bobby".into()),
                last_name: Some("x".repeat(NAME_MAX_CHARS + 1)),
                ..UserUpdate::default()
            },
        );
        assert_eq!(refused.unwrap_err(), StoreError::UpdateRejected);
        assert_eq!(
            s.user("1002").unwrap().first_name.as_deref(),
            Some("Robert")
        );

        let u = s
            .update(
                "1002",
                UserUpdate {
                    last_logout_date: Some("2025-01-01".into()),
                    remove_last_logout_date: true,
                    ..UserUpdate::default()
                },
            )
            .unwrap();
        assert_eq!(u.last_logout_date, None);
        assert_eq!(
            u.metadata["newsletter"],
            json!(true),
            "merge keeps old keys"
        );
    }

    #[test]
    fn metadata_is_bounded() {
        let mut s = Store::seeded();
        let mut meta = Map::new();
        meta.insert("blob".into(), json!("x".repeat(METADATA_MAX_BYTES)));
        let update = UserUpdate {
            metadata: Some(meta),
            ..UserUpdate::default()
        };
        assert_eq!(
            s.update("1001", update).unwrap_err(),
            StoreError::UpdateRejected
        );
    }

    #[test]
    fn forgot_password_tokens_are_single_use() {
        let mut s = Store::seeded();
        assert_eq!(
            s.start_reset("nobody@example.test", "t0".into()),
            Err(StoreError::UnknownLogin)
        );
        assert_eq!(
            s.start_reset("Carol@Example.test", "t1".into()).unwrap(),
            "auth0|abc123"
        );
        assert_eq!(
            s.finish_reset("t1", "Newpass123".into()).unwrap(),
            "auth0|abc123"
        );
        assert!(s.password_is("auth0|abc123", "Newpass123"));
        assert_eq!(
            s.finish_reset("t1", "Other1234".into()),
            Err(StoreError::UnknownRequest)
        );
        assert_eq!(
            s.finish_reset("never", "Other1234".into()),
            Err(StoreError::UnknownRequest)
        );
    }

    #[test]
    fn outstanding_tokens_are_bounded() {
        let mut s = Store::seeded();
        s.reset_capacity = 2;
        for t in ["a", "b", "c"] {
            s.start_reset("alice@example.test", t.into()).unwrap();
        }
        assert_eq!(
            s.finish_reset("a", "Newpass123".into()),
            Err(StoreError::UnknownRequest)
        );
        s.finish_reset("b", "Newpass123".into()).unwrap();
        s.finish_reset("c", "Newpass123".into()).unwrap();
        assert!(s.resets.order.len() <= 2);
    }
}
