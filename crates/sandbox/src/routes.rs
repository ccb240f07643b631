//! Method + path → the sandbox endpoint, or why not (404, 405). Static segments of the v4
//! paths match case-insensitively and one trailing slash is optional, as in the ASP.NET
//! service the sandbox stands in for; `{id}` segments are percent-decoded.

use http::Method;
use percent_encoding::percent_decode_str;

/// One sandbox endpoint; `String`s are decoded customer registration ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    ChangePassword(String),
    ChangeEmail(String),
    GetUser(String),
    UpdateUser(String),
    StartForgotPassword,
    FinishForgotPassword,
    /// `/_sandbox/…` control endpoints: outside the v4 contract, no tenant headers.
    Events,
    Outbox,
    Reset,
    Health,
}

impl Route {
    /// A name for logs that carries no id.
    pub fn name(&self) -> &'static str {
        match self {
            Route::ChangePassword(_) => "change-password",
            Route::ChangeEmail(_) => "change-email",
            Route::GetUser(_) => "get-user",
            Route::UpdateUser(_) => "update-user",
            Route::StartForgotPassword => "forgot-password-start",
            Route::FinishForgotPassword => "forgot-password-finish",
            Route::Events => "sandbox-events",
            Route::Outbox => "sandbox-outbox",
            Route::Reset => "sandbox-reset",
            Route::Health => "sandbox-health",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouteError {
    NotFound,
    /// The path exists; `allow` lists its methods for the `Allow` header.
    MethodNotAllowed {
        allow: &'static str,
    },
}

/// Matches the path (without query) against the sandbox's endpoints.
pub(crate) fn resolve(method: &Method, path: &str) -> Result<Route, RouteError> {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    let is = |seg: &str, name: &str| seg.eq_ignore_ascii_case(name);

    let (allow, route): (&'static str, Option<Route>) = match segments.as_slice() {
        ["", v4, users, rest @ ..] if is(v4, "v4") && is(users, "Users") => match rest {
            [fp] if is(fp, "ForgotPassword") => (
                "POST",
                (method == Method::POST).then_some(Route::StartForgotPassword),
            ),
            [fp, finish] if is(fp, "ForgotPassword") && is(finish, "Finish") => (
                "POST",
                (method == Method::POST).then_some(Route::FinishForgotPassword),
            ),
            [id] if !id.is_empty() => match *method {
                Method::GET => ("GET, PUT", Some(Route::GetUser(decode(id)))),
                Method::PUT => ("GET, PUT", Some(Route::UpdateUser(decode(id)))),
                _ => ("GET, PUT", None),
            },
            [id, what] if !id.is_empty() && is(what, "Password") => (
                "PATCH",
                (method == Method::PATCH).then(|| Route::ChangePassword(decode(id))),
            ),
            [id, what] if !id.is_empty() && is(what, "Email") => (
                "PATCH",
                (method == Method::PATCH).then(|| Route::ChangeEmail(decode(id))),
            ),
            _ => return Err(RouteError::NotFound),
        },
        ["", "_sandbox", "events"] => ("GET", (method == Method::GET).then_some(Route::Events)),
        ["", "_sandbox", "outbox"] => ("GET", (method == Method::GET).then_some(Route::Outbox)),
        ["", "_sandbox", "reset"] => ("POST", (method == Method::POST).then_some(Route::Reset)),
        ["", "_sandbox", "health"] => ("GET", (method == Method::GET).then_some(Route::Health)),
        _ => return Err(RouteError::NotFound),
    };
    route.ok_or(RouteError::MethodNotAllowed { allow })
}

/// Invalid UTF-8 after decoding cannot name a user; the lossy form simply matches none.
fn decode(raw: &str) -> String {
    percent_decode_str(raw).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_paths() {
        let r = |m: Method, p: &str| resolve(&m, p);
        assert_eq!(
            r(Method::PATCH, "/v4/Users/auth0%7Cabc123/Password"),
            Ok(Route::ChangePassword("auth0|abc123".into()))
        );
        assert_eq!(
            r(Method::PATCH, "/v4/users/1001/email/"),
            Ok(Route::ChangeEmail("1001".into()))
        );
        assert_eq!(
            r(Method::GET, "/v4/Users/1001/"),
            Ok(Route::GetUser("1001".into()))
        );
        assert_eq!(
            r(Method::PUT, "/v4/Users/1001"),
            Ok(Route::UpdateUser("1001".into()))
        );
        assert_eq!(
            r(Method::POST, "/v4/Users/ForgotPassword"),
            Ok(Route::StartForgotPassword)
        );
        assert_eq!(
            r(Method::POST, "/v4/Users/ForgotPassword/Finish"),
            Ok(Route::FinishForgotPassword)
        );
        assert_eq!(
            r(Method::GET, "/v4/Users/%FF/"),
            Ok(Route::GetUser("\u{FFFD}".into()))
        );
    }

    #[test]
    fn not_found_and_wrong_method() {
        for p in [
            "/",
            "",
            "/v4",
            "/v4/Users",
            "/v4/Users/",
            "/v4/Users//Password",
            "/v4//Users/1",
            "/x/y/z/w",
        ] {
            assert_eq!(resolve(&Method::GET, p), Err(RouteError::NotFound), "{p}");
        }
        assert_eq!(
            resolve(&Method::POST, "/v4/Users/1001/Password"),
            Err(RouteError::MethodNotAllowed { allow: "PATCH" })
        );
        assert_eq!(
            resolve(&Method::DELETE, "/v4/Users/1001/"),
            Err(RouteError::MethodNotAllowed { allow: "GET, PUT" })
        );
        assert_eq!(
            resolve(&Method::GET, "/_sandbox/reset"),
            Err(RouteError::MethodNotAllowed { allow: "POST" })
        );
    }
}
