//! `[fallback]`: when v4 fails too often for a route part and tenant that v4 answers, the
//! gateway sends that row's calls to the legacy backend by itself, then probes v4 and returns.
//! Durations are seconds, as a number (`window = 60`, `cooldown = 0.5`): the keys are named by
//! the contract, without a unit suffix, and a fraction lets a test cool down in milliseconds.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::source::{Source, SourceError};

#[derive(Debug, Clone, PartialEq)]
pub struct FallbackConfig {
    /// Failures per v4 call in the window at or above which a row falls back.
    pub error_ratio: f64,
    /// v4 calls a window must hold before its ratio is believed: a handful of calls at night
    /// must not flip a row on one timeout.
    pub min_calls: u64,
    pub window: Duration,
    /// How long a row stays on the legacy backend before v4 is probed again.
    pub cooldown: Duration,
    /// Successful probes in a row that bring a row back to v4.
    pub probes: u32,
    /// v4 5xx codes (without the v4 prefix) that are answers about the user, not v4 failing:
    /// `E500_01` is "the user was not found" and must never send a row to legacy.
    pub business_errors: Vec<String>,
}

impl Default for FallbackConfig {
    fn default() -> Self {
        Self {
            error_ratio: 0.05,
            min_calls: 50,
            window: Duration::from_secs(60),
            cooldown: Duration::from_secs(300),
            probes: 5,
            business_errors: vec!["E500_01".to_string()],
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFallback {
    enabled: Option<bool>,
    error_ratio: Option<Spanned<f64>>,
    min_calls: Option<Spanned<u64>>,
    window: Option<Spanned<f64>>,
    cooldown: Option<Spanned<f64>>,
    probes: Option<Spanned<u32>>,
    business_errors: Option<Vec<String>>,
}

/// `None` when the section is absent or says `enabled = false`: no row is watched.
pub(super) fn check(
    src: &Source,
    raw: Option<&RawFallback>,
) -> Result<Option<FallbackConfig>, SourceError> {
    let Some(raw) = raw else { return Ok(None) };
    let d = FallbackConfig::default();
    let error_ratio = match &raw.error_ratio {
        Some(r) if !(*r.get_ref() > 0.0 && *r.get_ref() <= 1.0) => {
            return Err(src.error(
                r.span(),
                "fallback.error_ratio",
                "a ratio above 0 and at most 1 (0.05 is one failing call in twenty)",
            ))
        }
        Some(r) => *r.get_ref(),
        None => d.error_ratio,
    };
    let seconds = |v: &Option<Spanned<f64>>, key: &str, default: Duration| match v {
        Some(s) if !(s.get_ref().is_finite() && *s.get_ref() > 0.0 && *s.get_ref() < 1e9) => {
            Err(src.error(
                s.span(),
                format!("fallback.{key}"),
                "a number of seconds greater than 0 (fractions allowed: 0.5)",
            ))
        }
        Some(s) => Ok(Duration::from_secs_f64(*s.get_ref())),
        None => Ok(default),
    };
    let window = seconds(&raw.window, "window", d.window)?;
    let cooldown = seconds(&raw.cooldown, "cooldown", d.cooldown)?;
    let min_calls =
        super::positive(src, &raw.min_calls, "fallback.min_calls")?.unwrap_or(d.min_calls);
    let probes = super::positive(src, &raw.probes, "fallback.probes")?.unwrap_or(d.probes);
    if !raw.enabled.unwrap_or(true) {
        return Ok(None);
    }
    Ok(Some(FallbackConfig {
        error_ratio,
        min_calls,
        window,
        cooldown,
        probes,
        business_errors: raw.business_errors.clone().unwrap_or(d.business_errors),
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Overrides};
    use std::time::Duration;

    fn load(text: &str) -> Result<Config, crate::source::SourceError> {
        Config::from_toml("c.toml", text, &Overrides::default())
    }

    #[test]
    fn absent_or_disabled_is_off_and_present_has_the_defaults() {
        assert_eq!(load("").unwrap().fallback, None);
        assert_eq!(
            load("[fallback]\nenabled = false\n").unwrap().fallback,
            None
        );
        let c = load("[fallback]\n").unwrap().fallback.unwrap();
        assert_eq!(c, super::FallbackConfig::default());
        assert_eq!(
            (c.error_ratio, c.min_calls, c.window, c.cooldown),
            (0.05, 50, Duration::from_secs(60), Duration::from_secs(300))
        );
    }

    #[test]
    fn seconds_may_be_fractions_and_bad_values_name_their_line() {
        let c = load("[fallback]\nwindow = 2\ncooldown = 0.05\n")
            .unwrap()
            .fallback
            .unwrap();
        assert_eq!(
            (c.window, c.cooldown),
            (Duration::from_secs(2), Duration::from_millis(50))
        );
        for (text, field) in [
            ("[fallback]\nerror_ratio = 0\n", "fallback.error_ratio"),
            ("[fallback]\nerror_ratio = 1.5\n", "fallback.error_ratio"),
            ("[fallback]\nwindow = 0\n", "fallback.window"),
            ("[fallback]\ncooldown = -1\n", "fallback.cooldown"),
            ("[fallback]\nmin_calls = 0\n", "fallback.min_calls"),
            ("[fallback]\nprobes = 0\n", "fallback.probes"),
        ] {
            let e = load(text).unwrap_err();
            assert_eq!((e.line, e.field.as_str()), (2, field), "{text}");
        }
        assert_eq!(
            load("[fallback]\nwindows = 1\n").unwrap_err().field,
            "fallback.windows"
        );
    }
}
