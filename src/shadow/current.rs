//! Where a row's calls go now, from the running configuration: a row whose reads were cut
//! over reads `translate`, not a stale "not ready".

use super::report::RowId;
use crate::config::Mode;
use crate::runtime::Runtime;

/// `legacy`, `shadow`, `canary N%` or `translate`.
pub fn mode(rt: &Runtime, id: &RowId) -> String {
    let modes = &rt.config.modes;
    let tenant = (id.tenant != "other").then_some(id.tenant.as_str());
    let (mode, percent) = match crate::modes::rule_for(modes, id.route, Some(&id.part), tenant) {
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
