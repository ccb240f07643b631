//! The request's query string, read into the command line's options and limits.

use super::super::{Limits, Options, DEFAULT_MAX_OPEN_GROUPS};

/// The request's query: the command line's options and limits.
pub(super) struct Query {
    pub(super) opts: Options,
    pub(super) limits: Limits,
    pub(super) unmatched: bool,
}

impl Query {
    pub(super) fn parse(query: Option<&str>) -> Result<Self, String> {
        let mut q = Query {
            opts: Options::default(),
            limits: Limits::default(),
            unmatched: false,
        };
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let flag = v == "true" || v == "1";
            match k.as_ref() {
                "strict" => q.opts.strict = flag,
                "skip_invalid" => q.opts.skip_invalid = flag,
                "unmatched" => q.unmatched = flag,
                "max_open_groups" => {
                    q.limits.max_open_groups = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=DEFAULT_MAX_OPEN_GROUPS).contains(n))
                        .ok_or_else(|| {
                            format!(
                            "max_open_groups: a whole number from 1 to {DEFAULT_MAX_OPEN_GROUPS}"
                        )
                        })?
                }
                "max_group_age" => {
                    q.limits.max_group_age = Some(
                        v.parse::<u64>()
                            .ok()
                            .filter(|n| *n >= 1)
                            .ok_or("max_group_age: a whole number of records, at least 1")?,
                    )
                }
                _ => {}
            }
        }
        Ok(q)
    }
}
