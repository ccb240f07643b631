//! Where a row's calls go now, from the running configuration: a row whose reads were cut
//! over reads `translate`, not a stale "not ready".

use crate::config::Mode;
use crate::runtime::Runtime;

/// `legacy`, `shadow`, `canary N%` or `translate`, for a row's route, part and tenant. Takes
/// the row's parts rather than the report's row type, so the report can use it.
pub fn mode(rt: &Runtime, route: &str, part: &str, tenant: &str) -> String {
    let modes = &rt.config.modes;
    let tenant = (tenant != "other").then_some(tenant);
    let (mode, percent) = match crate::config::modes::rule_for(modes, route, Some(part), tenant) {
        Some(rule) => (rule.mode, rule.translate_percent),
        None => (modes.default, None),
    };
    match (mode, percent) {
        (Mode::Translate, Some(p)) if p < 100 => format!("canary {p}%"),
        (Mode::Translate, _) => "translate".into(),
        (Mode::Shadow, _) => "shadow".into(),
        (Mode::Legacy, _) => "legacy".into(),
    }
}
