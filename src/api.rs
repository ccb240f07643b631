//! The two legacy APIs the gateway stands in front of. Every layer names them (routing,
//! errors, answers, metrics), so they live at the bottom, with nothing to import.

/// Which legacy API a request belongs to, and so which shape its answers take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// PascalCase `{Code, Errors, Result, SessionId, RequestId}`.
    UserApi,
    /// `{status, error, messages, trace, action}`.
    Registry,
}

impl Family {
    /// Both APIs, for what is reported per API (kill switches, the shadow page).
    pub const ALL: [Family; 2] = [Family::UserApi, Family::Registry];

    /// The API's name in configuration (`[[modes]] route`, `[shadow.routes.*]`), metric
    /// labels and reports.
    pub fn name(self) -> &'static str {
        match self {
            Family::UserApi => "user-api",
            Family::Registry => "registry",
        }
    }
}
