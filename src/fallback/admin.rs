//! The operator's view of the rows (`GET /_gateway/fallback`) and the hand re-arm
//! (`POST /_gateway/fallback/reset`). A reset picks rows by `route`, `part` and `tenant`, from
//! the query or a JSON body; a selector left out matches every row, so an empty reset re-arms
//! them all. The answer lists the rows reset, each with the state it was in.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{Fallback, RowId, PROBE_EVERY};
use crate::runtime::Runtime;

/// Which rows a reset picks.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Select {
    pub route: Option<String>,
    pub part: Option<String>,
    pub tenant: Option<String>,
}

impl Select {
    /// From the query (`?route=user-api&tenant=CA`) or, when the query is empty, the body
    /// (`{"route":"user-api"}`, or nothing). The error says what was wrong, for a 400.
    pub fn parse(query: Option<&str>, body: &[u8]) -> Result<Self, String> {
        let query = query.unwrap_or("");
        let select = if !query.is_empty() {
            let mut s = Select::default();
            for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
                let slot = match k.as_ref() {
                    "route" => &mut s.route,
                    "part" => &mut s.part,
                    "tenant" => &mut s.tenant,
                    _ => return Err("unknown parameter: expected route, part or tenant".into()),
                };
                *slot = Some(v.into_owned());
            }
            s
        } else if body.iter().all(u8::is_ascii_whitespace) {
            Select::default()
        } else {
            serde_json::from_slice(body).map_err(|_| {
                "the body must be a JSON object with route, part and tenant (each optional)"
                    .to_string()
            })?
        };
        if let Some(r) = select.route.as_deref() {
            if r != "user-api" && r != "registry" {
                return Err("route: expected user-api or registry".into());
            }
        }
        Ok(select)
    }

    fn picks(&self, id: &RowId) -> bool {
        self.route.as_deref().is_none_or(|r| r == id.route)
            && self.part.as_deref().is_none_or(|p| p == id.part)
            && self
                .tenant
                .as_deref()
                .is_none_or(|t| t.eq_ignore_ascii_case(&id.tenant))
    }
}

/// `POST /_gateway/fallback/reset`'s answer.
pub fn reset(fb: &Fallback, select: &Select) -> Value {
    let rows: Vec<Value> = fb
        .reset(|id| select.picks(id))
        .into_iter()
        .map(|(id, was)| {
            json!({"route": id.route, "part": id.part, "tenant": id.tenant, "was": was.name()})
        })
        .collect();
    json!({"status": "reset", "rows": rows})
}

/// `GET /_gateway/fallback`: the settings in force and every row seen since start.
pub fn view(fb: &Fallback, rt: &Runtime) -> Value {
    let now = fb.clock();
    let settings = rt.config.fallback.as_ref().map(|c| {
        json!({
            "error_ratio": c.error_ratio,
            "min_calls": c.min_calls,
            "window_seconds": c.window.as_secs_f64(),
            "cooldown_seconds": c.cooldown.as_secs_f64(),
            "probes": c.probes,
            "probe_every": PROBE_EVERY,
            "business_errors": c.business_errors,
        })
    });
    let rows: Vec<Value> = fb
        .rows()
        .into_iter()
        .map(|(id, row, state)| {
            let (calls, failures) = row.counts();
            let switched = row.switched_at.load(std::sync::atomic::Ordering::Relaxed);
            json!({
                "route": id.route,
                "part": id.part,
                "tenant": id.tenant,
                "state": state.name(),
                "window": {"calls": calls, "failures": failures},
                "cooldown_left_seconds": row.cooldown_left(now) as f64 / 1000.0,
                "probe_successes": row.probe_successes(),
                "trips": row.trips.load(std::sync::atomic::Ordering::Relaxed),
                "switched_at": (switched > 0).then(|| rfc3339(switched)),
            })
        })
        .collect();
    json!({"enabled": settings.is_some(), "settings": settings, "rows": rows})
}

fn rfc3339(epoch_millis: u64) -> String {
    let nanos = i128::from(epoch_millis) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_come_from_the_query_or_the_body() {
        let s = Select::parse(Some("route=user-api&tenant=CA"), b"").unwrap();
        assert_eq!(
            s,
            Select {
                route: Some("user-api".into()),
                part: None,
                tenant: Some("CA".into())
            }
        );
        let s = Select::parse(None, br#"{"part":"read"}"#).unwrap();
        assert_eq!(s.part.as_deref(), Some("read"));
        assert_eq!(Select::parse(None, b" ").unwrap(), Select::default());
        assert!(Select::parse(Some("rout=x"), b"").is_err());
        assert!(Select::parse(None, b"{\"route\":\"users\"}").is_err());
        assert!(Select::parse(None, b"[1]").is_err());
    }
}
