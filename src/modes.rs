//! Which mode serves a call: the first matching rule for its route and tenant, else the
//! global default. A canary rule (`translate_percent`) translates a stable share of users:
//! the same customer registration id always lands on the same side, so a user does not flip
//! between backends from one call to the next.

use crate::config::{Mode, ModeRule, Modes};

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
mod tests {
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
