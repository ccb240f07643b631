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

impl Backends {
    /// The backend a rule for `route` (`None`: every route) needs and lacks, by its key.
    fn missing_for(&self, route: Option<&str>) -> Option<&'static str> {
        let user = route.is_none_or(|r| r == "user-api" || r.starts_with("user-api."));
        let registry = route.is_none_or(|r| r == "registry" || r.starts_with("registry."));
        if user && !self.user_api {
            Some("user_api_url")
        } else if registry && !self.registry_api {
            Some("registry_api_url")
        } else {
            None
        }
    }
}

pub(super) fn check(
    src: &Source,
    default: Mode,
    raw: &[Spanned<ModeRule>],
    backends: &Backends,
) -> Result<Modes, SourceError> {
    if default != Mode::Translate {
        if let Some(missing) = backends.missing_for(None) {
            return Err(SourceError::outside_file(
                src.name.clone(),
                "mode",
                format!("mode {default:?} needs the legacy backends: set {missing}"),
            ));
        }
    }
    let mut rules = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        rules.push(rule(src, i, r, backends)?);
    }
    Ok(Modes { default, rules })
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
        let e = load("mode = \"shadow\"\n", &Overrides::default()).unwrap_err();
        assert_eq!(
            (e.line, e.field.as_str(), e.message.as_str()),
            (
                0,
                "mode",
                "mode Shadow needs the legacy backends: set user_api_url"
            )
        );
        let o = Overrides {
            mode: Some(Mode::Legacy),
            user_api: Some("http://127.0.0.1:1".into()),
            ..Default::default()
        };
        let e = load("", &o).unwrap_err();
        assert!(e.message.ends_with("set registry_api_url"), "{}", e.message);
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
