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

/// Which row a call belongs to, in the shadow report, the fallback and capture: the API, the part of it (`read`, `update`, an action name as
/// the mapping spells it), the tenant as configured.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RowId {
    pub route: &'static str,
    pub part: String,
    pub tenant: String,
}

impl RowId {
    /// `user-api.read`, `registry.registernewpassword`: what `[[modes]] route` accepts.
    pub fn name(&self) -> String {
        format!("{}.{}", self.route, self.part)
    }
}
