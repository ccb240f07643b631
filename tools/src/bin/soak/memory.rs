//! The gateway's memory as the kernel reports it, read from `/proc/<pid>/status`: the soak's
//! pass/fail bound is on RSS growth, so it must be the resident set the kernel counts, not an
//! allocator's view from inside.

use serde_json::{json, Value};

/// `VmRSS` and `VmHWM` in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mem {
    pub rss_kb: u64,
    pub hwm_kb: u64,
}

pub fn mem(pid: u32) -> Option<Mem> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    Some(Mem {
        rss_kb: field("VmRSS:")?,
        hwm_kb: field("VmHWM:")?,
    })
}

pub fn mem_json(m: Option<Mem>) -> Value {
    match m {
        Some(m) => json!({"rss_kb": m.rss_kb, "hwm_kb": m.hwm_kb}),
        None => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let m = mem(std::process::id()).expect("/proc/self is readable on Linux");
        assert!(m.rss_kb > 0 && m.hwm_kb >= m.rss_kb, "{m:?}");
        assert_eq!(mem_json(Some(m))["rss_kb"], m.rss_kb);
        assert!(mem_json(mem(u32::MAX)).is_null());
    }
}
