//! `mode` and `[[modes]]`: who answers each call (SPEC 3). Every mode but a full `translate`
//! sends calls to a legacy backend, so a rule is refused when the backend it needs is not set,
//! rather than failing on the first call it matches.

use serde::Deserialize;
use toml::Spanned;

use crate::source::{Source, SourceError};

/// What happens to a call (SPEC 3): answered by v4 through translation, by the legacy backend
/// with a translated copy compared off the request path, or by the legacy backend alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Legacy,
    Shadow,
    Translate,
}

/// The global mode and the per-route, per-tenant overrides (first match wins).
#[derive(Debug, Clone)]
pub struct Modes {
    pub default: Mode,
    pub rules: Vec<ModeRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeRule {
    /// `user-api` (`user-api.read`: `GET`/`HEAD /User/{id}` only, `user-api.update`: `PUT`
    /// only), `registry`, or `registry.<action>`; absent: every route.
    pub route: Option<String>,
    /// `X-ClientCode` for the User API, the Host for the action API; absent: every tenant.
    pub tenant: Option<String>,
    pub mode: Mode,
    /// With `translate`: the canary share of calls translated (the rest go to the legacy
    /// backend), chosen stably per customer registration id.
    pub translate_percent: Option<u8>,
}

/// Which legacy backends are configured, for the rules that need them.
pub(super) struct Backends {
    pub user_api: bool,
    pub registry_api: bool,
}

/// The two legacy APIs, as a rule's `route` names them, and the key of each one's backend.
const FAMILIES: [(&str, &str); 2] = [
    ("user-api", "user_api_url"),
    ("registry", "registry_api_url"),
];

impl Backends {
    fn has(&self, key: &str) -> bool {
        match key {
            "user_api_url" => self.user_api,
            _ => self.registry_api,
        }
    }

    /// The backend a rule for `route` (`None`: every route) needs and lacks, by its key.
    fn missing_for(&self, route: Option<&str>) -> Option<&'static str> {
        FAMILIES
            .iter()
            .find(|(family, key)| route.is_none_or(|r| covers(family, r)) && !self.has(key))
            .map(|(_, key)| *key)
    }
}

/// True when a rule for route `wide` catches every call a rule for `narrow` would:
/// `user-api` catches `user-api.read`, `registry` catches `registry.login`.
fn covers(wide: &str, narrow: &str) -> bool {
    narrow == wide
        || narrow
            .strip_prefix(wide)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// The global mode and where it was set, so an error points at that line or flag.
pub(super) struct DefaultMode {
    mode: Mode,
    span: Option<std::ops::Range<usize>>,
    from_flag: bool,
}

impl DefaultMode {
    fn error(&self, src: &Source, message: String) -> SourceError {
        match &self.span {
            Some(span) if !self.from_flag => src.error(span.clone(), "mode", message),
            _ => SourceError::outside_file("--mode or LEGACY_GATEWAY_MODE", "mode", message),
        }
    }
}

/// `--mode` (or its variable) over the file's `mode`, else `translate`.
pub(super) fn default_mode(raw: Option<&Spanned<Mode>>, flag: Option<Mode>) -> DefaultMode {
    DefaultMode {
        mode: flag
            .or(raw.map(|m| *m.get_ref()))
            .unwrap_or(Mode::Translate),
        span: raw.map(Spanned::span),
        from_flag: flag.is_some(),
    }
}

pub(super) fn check(
    src: &Source,
    default: DefaultMode,
    raw: &[Spanned<ModeRule>],
    backends: &Backends,
) -> Result<Modes, SourceError> {
    let mut rules: Vec<ModeRule> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let rule = rule(src, i, r, backends)?;
        if let Some(earlier) = rules.iter().position(|e| shadows(e, &rule)) {
            return Err(src.error(
                r.span(),
                format!("modes[{i}]"),
                format!(
                    "can never match: modes[{earlier}] comes first and matches every call this \
                     rule would (the first matching rule wins); put the narrower rule first"
                ),
            ));
        }
        rules.push(rule);
    }
    // Only the APIs whose calls can reach the default need its backend: a rule for the whole
    // API and every tenant before it means the default never applies there.
    if default.mode != Mode::Translate {
        for (family, key) in FAMILIES {
            let reached = !rules
                .iter()
                .any(|r| r.tenant.is_none() && r.route.as_deref().is_none_or(|x| x == family));
            if reached && !backends.has(key) {
                return Err(default.error(
                    src,
                    format!(
                        "mode = \"{}\" sends {family} calls to its legacy backend: set {key}, or \
                         add a [[modes]] rule with route = \"{family}\" and mode = \"translate\" \
                         if this migration does not serve that API from a legacy backend",
                        format!("{:?}", default.mode).to_lowercase()
                    ),
                ));
            }
        }
    }
    Ok(Modes {
        default: default.mode,
        rules,
    })
}

/// True when `earlier` catches every call `later` would, so `later` is dead.
fn shadows(earlier: &ModeRule, later: &ModeRule) -> bool {
    // Tenants keep the case they are written in and match without regard to it.
    let tenant = match (earlier.tenant.as_deref(), later.tenant.as_deref()) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
    };
    let route = match (earlier.route.as_deref(), later.route.as_deref()) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(wide), Some(narrow)) => covers(wide, narrow),
    };
    tenant && route
}

/// One `[[modes]]` entry, checked.
fn rule(
    src: &Source,
    i: usize,
    r: &Spanned<ModeRule>,
    backends: &Backends,
) -> Result<ModeRule, SourceError> {
    let rule = r.get_ref();
    if let Some(route) = &rule.route {
        let user_api = matches!(
            route.as_str(),
            "user-api" | "user-api.read" | "user-api.update"
        );
        if !(user_api || route == "registry" || route.starts_with("registry.")) {
            return Err(src.error(
                r.span(),
                format!("modes[{i}].route"),
                "expected user-api, user-api.read, user-api.update, registry or registry.<action>",
            ));
        }
    }
    if let Some(t) = &rule.tenant {
        if t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(src.error(
                r.span(),
                format!("modes[{i}].tenant"),
                format!(
                    "{t:?}: a tenant (X-ClientCode or Host) is never empty and holds no white \
                     space, so this rule would never match"
                ),
            ));
        }
    }
    let partial = matches!(rule.translate_percent, Some(p) if p < 100);
    if rule.translate_percent.is_some_and(|p| p > 100)
        || (rule.translate_percent.is_some() && rule.mode != Mode::Translate)
    {
        return Err(src.error(
            r.span(),
            format!("modes[{i}].translate_percent"),
            "a percentage (0-100), only with mode = \"translate\"",
        ));
    }
    if rule.mode != Mode::Translate || partial {
        if let Some(missing) = backends.missing_for(rule.route.as_deref()) {
            return Err(src.error(
                r.span(),
                format!("modes[{i}].mode"),
                format!("this mode needs the legacy backend: set {missing}"),
            ));
        }
    }
    // The tenant stays as written: it is matched without regard to case, and the shadow
    // report names it as the operator configured it.
    Ok(rule.clone())
}

// Choosing the mode of one call.
//
// Which mode serves a call: the first matching rule for its route and tenant, else the
// global default. A canary rule (`translate_percent`) translates a stable share of users:
// the same customer registration id always lands on the same side, so a user does not flip
// between backends from one call to the next.
/// A stable bucket 0..100 for a key (FNV-1a: fixed across runs, versions and machines,
/// unlike std's hasher).
pub fn bucket(key: &str) -> u8 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % 100) as u8
}

/// The mode for one call. `route` is `user-api` or `registry`, `action` the canonical action
/// name (action API), `tenant` the `X-ClientCode` or the Host, `key` the split key (asked for
/// only when a canary rule matches).
pub fn choose(
    modes: &Modes,
    route: &str,
    action: Option<&str>,
    tenant: Option<&str>,
    key: impl Fn() -> String,
) -> Mode {
    match rule_for(modes, route, action, tenant) {
        Some(rule) => match (rule.mode, rule.translate_percent) {
            (Mode::Translate, Some(p)) if bucket(&key()) >= p => Mode::Legacy,
            (m, _) => m,
        },
        None => modes.default,
    }
}

/// The first rule matching a route, action and tenant; `None` when the global mode applies.
/// The shadow report names it as the row's current mode.
pub fn rule_for<'m>(
    modes: &'m Modes,
    route: &str,
    action: Option<&str>,
    tenant: Option<&str>,
) -> Option<&'m ModeRule> {
    modes.rules.iter().find(|rule| {
        let route_ok = match rule.route.as_deref() {
            None => true,
            Some(r) => match r.split_once('.') {
                Some((base, act)) => base == route && action == Some(act),
                None => r == route,
            },
        };
        let tenant_ok = rule
            .tenant
            .as_deref()
            .is_none_or(|t| tenant.is_some_and(|x| x.eq_ignore_ascii_case(t)));
        route_ok && tenant_ok
    })
}

#[cfg(test)]
mod choice_tests {
    use super::*;

    fn rule(route: Option<&str>, tenant: Option<&str>, mode: Mode, pct: Option<u8>) -> ModeRule {
        ModeRule {
            route: route.map(str::to_string),
            tenant: tenant.map(str::to_string),
            mode,
            translate_percent: pct,
        }
    }

    #[test]
    fn first_matching_rule_wins() {
        let modes = Modes {
            default: Mode::Legacy,
            rules: vec![
                rule(
                    Some("registry.registernewpassword"),
                    None,
                    Mode::Shadow,
                    None,
                ),
                rule(Some("user-api"), Some("ca"), Mode::Translate, None),
                rule(Some("registry"), None, Mode::Translate, None),
            ],
        };
        assert_eq!(
            choose(&modes, "user-api", None, Some("CA"), || "1".to_string()),
            Mode::Translate
        );
        assert_eq!(
            choose(&modes, "user-api", None, Some("CB"), || "1".to_string()),
            Mode::Legacy
        );
        assert_eq!(
            choose(
                &modes,
                "registry",
                Some("registernewpassword"),
                None,
                || "1".to_string()
            ),
            Mode::Shadow
        );
        assert_eq!(
            choose(
                &modes,
                "registry",
                Some("activatenewpassword"),
                None,
                || "1".to_string()
            ),
            Mode::Translate
        );
    }

    #[test]
    fn the_split_is_stable_and_close_to_its_share() {
        let modes = Modes {
            default: Mode::Legacy,
            rules: vec![rule(None, None, Mode::Translate, Some(30))],
        };
        let translated = (0..10_000)
            .filter(|i| {
                choose(&modes, "user-api", None, None, || format!("user-{i}")) == Mode::Translate
            })
            .count();
        assert!((2_500..3_500).contains(&translated), "{translated}");
        for i in 0..100 {
            let k = format!("user-{i}");
            assert_eq!(
                choose(&modes, "user-api", None, None, || k.clone()),
                choose(&modes, "user-api", None, None, || k.clone())
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Mode;
    use crate::config::{Config, Overrides};

    fn load(text: &str, o: &Overrides) -> Result<Config, crate::source::SourceError> {
        Config::from_toml("c.toml", text, o)
    }

    const BACKENDS: &str =
        "user_api_url = \"http://127.0.0.1:1\"\nregistry_api_url = \"http://127.0.0.1:2\"\n";

    #[test]
    fn a_legacy_mode_needs_its_backend() {
        let e = load("\nmode = \"shadow\"\n", &Overrides::default()).unwrap_err();
        assert_eq!(
            (e.file.as_str(), e.line, e.field.as_str()),
            ("c.toml", 2, "mode")
        );
        assert!(
            e.message.starts_with(
                "mode = \"shadow\" sends user-api calls to its legacy backend: set user_api_url"
            ),
            "{}",
            e.message
        );
        let o = Overrides {
            mode: Some(Mode::Legacy),
            user_api: Some("http://127.0.0.1:1".into()),
            ..Default::default()
        };
        let e = load("", &o).unwrap_err();
        assert_eq!(
            (e.file.as_str(), e.line),
            ("--mode or LEGACY_GATEWAY_MODE", 0)
        );
        assert!(
            e.message.contains(
                "set registry_api_url, or add a [[modes]] rule with route = \"registry\""
            ),
            "{}",
            e.message
        );
        // A User-API-only migration: the action API translates, so no registry URL is needed.
        let text = "mode = \"legacy\"\nuser_api_url = \"http://127.0.0.1:1\"\n\n[[modes]]\nroute = \"registry\"\nmode = \"translate\"\n";
        let c = load(text, &Overrides::default()).unwrap();
        assert!(c.registry_api_url.is_none());
        // ...but a rule for one tenant leaves the others on the default.
        let e = load(
            &text.replace(
                "mode = \"translate\"",
                "tenant = \"paper.test\"\nmode = \"translate\"",
            ),
            &Overrides::default(),
        )
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (1, "mode"));
        // A rule for the User API only needs the User API's backend.
        let text = "user_api_url = \"http://127.0.0.1:1\"\n\n[[modes]]\nroute = \"user-api.read\"\nmode = \"legacy\"\n\n[[modes]]\nroute = \"registry\"\nmode = \"translate\"\ntranslate_percent = 50\n";
        let e = load(text, &Overrides::default()).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            (
                "modes[1].mode",
                "this mode needs the legacy backend: set registry_api_url"
            )
        );
    }

    #[test]
    fn routes_and_percentages_are_checked() {
        let e = load(
            &format!("{BACKENDS}[[modes]]\nroute = \"users\"\nmode = \"legacy\"\n"),
            &Overrides::default(),
        )
        .unwrap_err();
        assert_eq!(e.field, "modes[0].route");
        for rule in [
            "mode = \"translate\"\ntranslate_percent = 101\n",
            "mode = \"legacy\"\ntranslate_percent = 10\n",
        ] {
            let e = load(
                &format!("{BACKENDS}[[modes]]\n{rule}"),
                &Overrides::default(),
            )
            .unwrap_err();
            assert_eq!(e.field, "modes[0].translate_percent", "{rule}");
        }
    }

    #[test]
    fn a_rule_behind_a_broader_one_is_refused() {
        let rules = |first: &str, second: &str| {
            format!("{BACKENDS}\n[[modes]]\n{first}mode = \"translate\"\n\n[[modes]]\n{second}mode = \"legacy\"\n")
        };
        for (first, second) in [
            (
                "route = \"user-api\"\ntenant = \"CA\"\n",
                "route = \"user-api.read\"\ntenant = \"ca\"\n",
            ),
            (
                "route = \"registry\"\n",
                "route = \"registry.login\"\ntenant = \"paper.test\"\n",
            ),
            ("", "route = \"user-api\"\n"),
            (
                "tenant = \"CA\"\n",
                "route = \"user-api.update\"\ntenant = \"CA\"\n",
            ),
        ] {
            let e = load(&rules(first, second), &Overrides::default()).unwrap_err();
            // The second `[[modes]]` header: after the backends, a blank line, the first rule.
            let line = 7 + first.matches('\n').count();
            assert_eq!(
                (e.line, e.field.as_str()),
                (line, "modes[1]"),
                "{first} / {second}"
            );
            assert!(
                e.message
                    .starts_with("can never match: modes[0] comes first"),
                "{}",
                e.message
            );
        }
        // Narrower first, another tenant, another route: each can match.
        for (first, second) in [
            (
                "route = \"user-api.read\"\ntenant = \"CA\"\n",
                "route = \"user-api\"\ntenant = \"CA\"\n",
            ),
            (
                "route = \"user-api\"\ntenant = \"CA\"\n",
                "route = \"user-api\"\ntenant = \"CB\"\n",
            ),
            (
                "route = \"registry.login\"\n",
                "route = \"registry.loginx\"\n",
            ),
            (
                "route = \"user-api\"\ntenant = \"CA\"\n",
                "route = \"user-api\"\n",
            ),
        ] {
            load(&rules(first, second), &Overrides::default()).unwrap();
        }
    }

    #[test]
    fn a_tenant_with_white_space_is_refused() {
        for tenant in ["ca ", " ca", "", "c a"] {
            let text = format!("{BACKENDS}[[modes]]\ntenant = {tenant:?}\nmode = \"legacy\"\n");
            let e = load(&text, &Overrides::default()).unwrap_err();
            assert_eq!(e.field, "modes[0].tenant", "{tenant:?}");
            assert!(e.message.contains("never match"), "{}", e.message);
        }
    }

    #[test]
    fn rules_keep_their_order_and_tenants_as_written() {
        let text = format!(
            "{BACKENDS}mode = \"legacy\"\n[[modes]]\nroute = \"registry.login\"\ntenant = \"Paper.Test\"\nmode = \"translate\"\n[[modes]]\nmode = \"shadow\"\n"
        );
        let c = load(&text, &Overrides::default()).unwrap();
        assert_eq!(c.modes.default, Mode::Legacy);
        assert_eq!(c.modes.rules.len(), 2);
        assert_eq!(c.modes.rules[0].tenant.as_deref(), Some("Paper.Test"));
        assert_eq!(c.modes.rules[1].mode, Mode::Shadow);
    }
}
